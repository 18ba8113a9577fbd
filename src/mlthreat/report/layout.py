"""Where each kind of component sits in a pipeline, left to right: the order the diagram renderer
(static/diagram.js, shared by the HTML report and the board) gives its layout, so that a flow
against it is drawn as a feedback flow.
"""

from __future__ import annotations

from mlthreat.vocabulary import Kind

# Where each kind usually sits, left to right; flows against this order are drawn as feedback.
STAGE = {
    Kind.data_source: 0, Kind.feedback: 0, Kind.code_repository: 0, Kind.labeling: 1,
    Kind.pretrained_model: 1, Kind.data_store: 2, Kind.ci_cd: 2, Kind.preprocessing: 3,
    Kind.feature_store: 4, Kind.training: 5, Kind.validation: 6, Kind.model_registry: 7,
    Kind.serving: 8, Kind.edge_deployment: 8, Kind.client: 9, Kind.monitoring: 9,
    Kind.system_prompt: 1, Kind.retrieval_index: 4, Kind.memory: 4, Kind.hosted_model: 8,
    Kind.llm: 8, Kind.agent_tool: 9,
}
