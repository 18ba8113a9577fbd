"""The shared vocabulary of specs and catalog: component kinds, exposures, facts, assets, goals.

Kept in one module so that the spec schema, the catalog schema and the analysis agree on the same
words, and so that `docs/spec.md` and `docs/catalog.md` can be checked against them in tests.
"""

from __future__ import annotations

from enum import StrEnum


class Kind(StrEnum):
    data_source = "data_source"
    labeling = "labeling"
    data_store = "data_store"
    preprocessing = "preprocessing"
    feature_store = "feature_store"
    pretrained_model = "pretrained_model"
    training = "training"
    validation = "validation"
    model_registry = "model_registry"
    serving = "serving"
    edge_deployment = "edge_deployment"
    client = "client"
    monitoring = "monitoring"
    feedback = "feedback"
    code_repository = "code_repository"
    ci_cd = "ci_cd"
    # generative AI (docs/catalog.md): models that read a context, and what feeds that context
    hosted_model = "hosted_model"        # a model behind a vendor's API (the weights are not ours)
    llm = "llm"                          # a generative model the team runs itself
    retrieval_index = "retrieval_index"  # a vector store or search index whose hits enter a context
    agent_tool = "agent_tool"            # a tool, plugin or MCP server a model can call
    system_prompt = "system_prompt"      # system prompts, rules files, agent configuration
    memory = "memory"                    # conversation memory and chat history kept across turns


class Exposure(StrEnum):
    public = "public"
    partner = "partner"
    internal = "internal"
    offline = "offline"


UNTRUSTED_EXPOSURES = frozenset({Exposure.public, Exposure.partner})


class Family(StrEnum):
    aml = "aml"
    classical = "classical"


class Goal(StrEnum):
    confidentiality = "confidentiality"
    integrity = "integrity"
    availability = "availability"
    privacy = "privacy"


class Asset(StrEnum):
    model = "model"                      # the model as intellectual property: weights, architecture
    model_behaviour = "model_behaviour"  # the decisions the model makes
    training_data = "training_data"      # the data it was trained on, and the people in it
    inference_data = "inference_data"    # requests and predictions in flight and in logs
    service = "service"                  # the ability to serve predictions at reasonable cost
    infrastructure = "infrastructure"    # hosts and processes that run the pipeline
    credentials = "credentials"          # keys, tokens, passwords


class Attacker(StrEnum):
    external = "external"  # comes in through a public or partner component and moves along flows
    network = "network"    # attacks the component's own interface; its exposure sets the odds
    supplier = "supplier"  # controls something the pipeline takes in (a model, data set, package)
    insider = "insider"    # already has legitimate access to the component


GENERATIVE_KINDS = frozenset({Kind.hosted_model, Kind.llm})


class Fact(StrEnum):
    """Properties of a component derived from the spec and its graph (docs/catalog.md)."""

    exposed = "exposed"
    untrusted_input = "untrusted_input"
    feeds_training = "feeds_training"
    feedback_loop = "feedback_loop"
    holds_model = "holds_model"
    personal_data_upstream = "personal_data_upstream"
    downstream_of_pretrained = "downstream_of_pretrained"
    pickle_model_artifact = "pickle_model_artifact"
    has_code = "has_code"
    queryable = "queryable"
    trained_on_personal = "trained_on_personal"
    feeds_context = "feeds_context"
    downstream_of_llm = "downstream_of_llm"
    prompted = "prompted"
    captures_media = "captures_media"
    third_party = "third_party"


class Strength(StrEnum):
    weak = "weak"
    medium = "medium"
    strong = "strong"


class Criticality(StrEnum):
    low = "low"
    medium = "medium"
    high = "high"
    critical = "critical"


class RiskLevel(StrEnum):
    info = "info"
    low = "low"
    medium = "medium"
    high = "high"
    critical = "critical"


RISK_ORDER = [RiskLevel.info, RiskLevel.low, RiskLevel.medium, RiskLevel.high, RiskLevel.critical]
