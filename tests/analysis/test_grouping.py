"""Groups (one threat reaching one component) and the lead (the few threats to act on first):
hand-built findings with known answers, and the bundled examples."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable

import pytest

from mlthreat.analysis import assess
from mlthreat.analysis.grouping import LEAD_SIZE, group_findings, lead
from mlthreat.catalog import Catalog
from mlthreat.pipeline import Pipeline
from mlthreat.report import markdown, sarif
from mlthreat.report.common import lead_rows
from mlthreat.results import Finding
from mlthreat.vocabulary import Family, RiskLevel

LEVEL = {20.0: RiskLevel.critical, 15.0: RiskLevel.high, 12.0: RiskLevel.high,
         10.0: RiskLevel.high, 8.0: RiskLevel.medium, 4.0: RiskLevel.low}


def _finding(threat: str, component: str, harm: str, score: float,
             family: Family = Family.aml) -> Finding:
    return Finding(
        id=f"{threat}@{component}", threat_id=threat, name=threat.replace("-", " "), family=family,
        goal="integrity", asset="model", attacker="external", component=component,
        entry=component, path=(component, harm) if component != harm else (component,),
        harm_at=harm, base_likelihood=3.0, likelihood=3.0, adjustments=(), base_impact=4,
        impact=4, impact_reason="", score=score, level=LEVEL[score], controls_present=(),
        controls_missing=(), references=(), description="", recommendation="", measured_by=(),
        spec_line=1, spec_column=1)


def test_one_threat_reaching_one_component_is_one_group() -> None:
    fs = [_finding("poison", "portal", "api", 15.0), _finding("poison", "partner", "api", 10.0),
          _finding("poison", "registry", "registry", 12.0),    # same threat, other harm
          _finding("extract", "api", "api", 20.0)]
    groups = group_findings(fs, confirmed={"poison@partner"})
    assert [g.id for g in groups] == ["extract>api", "poison>api", "poison>registry"]
    two = groups[1]
    assert two.findings == ("poison@portal", "poison@partner")      # worst first
    assert two.components == ("portal", "partner")
    assert (two.score, two.level, two.confirmed) == (15.0, RiskLevel.high, True)
    assert not groups[0].confirmed and not groups[2].confirmed
    assert sum(len(g.findings) for g in groups) == len(fs)          # nothing dropped


def test_lead_takes_high_and_confirmed_medium_one_row_per_threat() -> None:
    fs = [_finding("tool-misuse", "crm", "crm", 20.0), _finding("tool-misuse", "mail", "mail", 20.0),
          _finding("inject", "forum", "crm", 15.0),
          _finding("measured", "api", "api", 8.0),        # medium, but a probe confirmed it
          _finding("guess", "api", "api", 8.0),           # medium, unconfirmed: not in the lead
          _finding("minor", "api", "api", 4.0)]
    groups = group_findings(fs, confirmed={"measured@api"})
    got = lead(groups)
    # confirmed first; the tool misuse at two tools is one thing to act on
    assert got.threats == (("measured>api",), ("tool-misuse>crm", "tool-misuse>mail"),
                           ("inject>crm",))
    assert (got.more_groups, got.more_findings) == (2, 2)           # guess and minor
    # a group whose every finding the gate suppressed does not lead
    quiet = lead(groups, suppressed={"measured@api"})
    assert quiet.threats[0] == ("tool-misuse>crm", "tool-misuse>mail")
    assert (quiet.more_groups, quiet.more_findings) == (3, 3)


def test_lead_is_short_and_keeps_both_families() -> None:
    fs = [_finding(f"aml-{i}", "api", "api", 20.0) for i in range(LEAD_SIZE + 2)]
    fs.append(_finding("cls-breach", "db", "db", 10.0, Family.classical))
    got = lead(group_findings(fs))
    assert len(got.threats) == LEAD_SIZE
    assert got.threats[-1] == ("cls-breach>db",)        # the other family's best, last place
    assert got.more_findings == len(fs) - LEAD_SIZE
    only_aml = lead(group_findings(fs[:-1]))
    assert ("cls-breach>db",) not in only_aml.threats and len(only_aml.threats) == LEAD_SIZE


def test_nothing_high_means_an_empty_lead_that_says_so(
        example_pipeline: Callable[[str], Pipeline], catalog: Catalog) -> None:
    fs = [_finding("guess", "api", "api", 8.0), _finding("minor", "db", "db", 4.0)]
    got = lead(group_findings(fs))
    assert got.threats == () and (got.more_groups, got.more_findings) == (2, 2)
    a = assess(example_pipeline("credit-scoring"), catalog)
    empty = dataclasses.replace(a, lead=got)
    text = markdown.render(empty)
    assert (f"Nothing at high or critical risk and nothing confirmed by a measurement: "
            f"{len(a.findings)} findings in {len(a.groups)} groups") in text


@pytest.mark.parametrize("name", ["credit-scoring", "rag-agent"])
def test_examples_lead_with_few_and_count_the_rest(
        name: str, example_pipeline: Callable[[str], Pipeline], catalog: Catalog) -> None:
    a = assess(example_pipeline(name), catalog)
    led = {i for ids in a.lead.threats for i in ids}
    assert 0 < len(a.lead.threats) <= LEAD_SIZE
    in_lead = [f for f in a.findings if f"{f.threat_id}>{f.harm_at}" in led]
    assert a.lead.more_findings == len(a.findings) - len(in_lead)
    assert {g.family for gs in a.lead_groups() for g in gs} == set(Family)
    assert all(g.level in (RiskLevel.high, RiskLevel.critical)
               for gs in a.lead_groups() for g in gs)
    results = json.loads(sarif.render(a))["runs"][0]["results"]
    assert sorted(r["properties"]["group"] for r in results if r["properties"]["lead"]) == \
        sorted(f"{f.threat_id}>{f.harm_at}" for f in in_lead)
    text = markdown.render(a)
    assert (f"{len(a.lead.threats)} threats ({len(in_lead)} of {len(a.findings)} findings); "
            f"{a.lead.more_findings} more findings in {a.lead.more_groups} groups below.") in text


def test_credit_each_model_is_harmed_where_it_sits_and_one_harm_is_one_group(
        example_pipeline: Callable[[str], Pipeline], catalog: Catalog) -> None:
    # the mobile app runs its own on-device model before it calls the scoring API: extraction
    # acting at the app copies the app's model, not the API's forest (a group each); feedback
    # manipulated at the portal or at the corrections desk lands on the one served model
    a = assess(example_pipeline("credit-scoring"), catalog)
    assert a.group("aml-model-extraction>mobile_app").components == ("mobile_app",)
    assert a.group("aml-model-extraction>scoring_api").components == ("scoring_api",)
    assert [f.path for f in a.findings if f.threat_id == "aml-model-extraction"
            and f.component == "mobile_app"] == [("mobile_app",)]
    g = a.group("aml-feedback-loop-manipulation>scoring_api")
    assert set(g.components) == {"applicant_portal", "corrections"}
    rows = {row[0].threat_id: row[1] for row in lead_rows(a)}
    assert rows["aml-model-extraction"] == "at mobile_app, scoring_api, partner_prescreen"
    assert rows["aml-feedback-loop-manipulation"] == "applicant_portal, corrections → scoring_api"


def test_rag_tool_misuse_at_three_tools_leads_once(
        example_pipeline: Callable[[str], Pipeline], catalog: Catalog) -> None:
    a = assess(example_pipeline("rag-agent"), catalog)
    misuse = [ids for ids in a.lead.threats if ids[0].startswith("aml-agent-tool-misuse>")]
    assert len(misuse) == 1
    tools = sorted(c.id for c in a.components if c.kind == "agent_tool")
    assert sorted(i.split(">")[1] for i in misuse[0]) == tools
