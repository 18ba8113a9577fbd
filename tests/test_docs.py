"""The documentation says what the code does: numbers, examples and lists are checked here."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from mlthreat.analysis import Assessment, assess
from mlthreat.analysis.risk import (
    CLEAN_SCAN_STEP,
    CONTROL_STEP,
    CRITICALITY_STEP,
    EVIDENCE_STEP,
    LEVEL_BOUNDS,
    NETWORK_EXPOSURE_STEP,
    PARTNER_ONLY_STEP,
)
from mlthreat.catalog import Catalog, Threat
from mlthreat.errors import SpecError
from mlthreat.pipeline import Pipeline, parse_pipeline
from mlthreat.vocabulary import Family
from tests.conftest import ROOT

DOCS = ROOT / "docs"


def _rows(text: str) -> dict[str, str]:
    """First and last cell of every table row."""
    rows = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and len(cells) >= 2:
            rows[cells[0]] = cells[-1]
    return rows


def _num(cell: str) -> float:
    return float(cell.replace("≥", "").replace("+", "").strip())


def _section(text: str, heading: str) -> str:
    return text.split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]


def test_risk_doc_matches_code() -> None:
    text = (DOCS / "risk.md").read_text()
    rows = _rows(_section(text, "Likelihood"))
    for strength, step in CONTROL_STEP.items():
        assert _num(rows[f"control present, strength {strength.value}"]) == step
    for exposure, step in NETWORK_EXPOSURE_STEP.items():
        assert _num(rows[f"network attacker, component exposure {exposure.value}"]) == step
    assert _num(rows["external attacker whose approach crosses no public component "
                     "(partner only)"]) == PARTNER_ONLY_STEP
    assert _num(rows["a scanner or probe confirmed the threat at this component"]) == EVIDENCE_STEP
    assert _num(rows["a scanner read all of the component's code for the threat and found "
                     "nothing"]) == CLEAN_SCAN_STEP
    rows = _rows(_section(text, "Impact"))
    for criticality, step in CRITICALITY_STEP.items():
        key = "medium (default)" if criticality.value == "medium" else criticality.value
        assert _num(rows[key]) == step
    rows = _rows(_section(text, "Levels"))
    assert rows["low"] == f"below {LEVEL_BOUNDS[-2][0]:g}"
    for bound, level in LEVEL_BOUNDS:
        if bound > 0:
            assert _num(rows[level.value]) == bound


def test_risk_doc_worked_example(model_of: Callable[[str], Assessment]) -> None:
    a = model_of("""\
    name: worked
    assets: {model_behaviour: {criticality: high}}
    components:
      - {id: api, kind: serving, exposure: public, controls: [rate_limiting, authentication]}
    """)
    (f,) = [f for f in a.findings if f.threat_id == "aml-evasion-blackbox"]
    assert (f.likelihood, f.impact, f.score, f.level.value) == (2.5, 5, 12.5, "high")
    assert "likelihood 4 − 1 − 0.5 = 2.5; impact 4 + 1 = 5; score 12.5" in (
        DOCS / "risk.md").read_text()


def _yaml_block(path: Path) -> str:
    match = re.search(r"```yaml\n(.*?)```", path.read_text(), re.S)
    assert match
    return match.group(1)


def test_spec_doc_example_is_valid(catalog: Catalog) -> None:
    pipeline = parse_pipeline(_yaml_block(DOCS / "spec.md"), "spec.md", catalog)
    assert len(pipeline.spec.components) == 5 and len(pipeline.spec.flows) == 6


def test_spec_doc_error_examples_are_real(catalog: Catalog) -> None:
    text = """\
name: tiny
components:
  - id: api
    kind: servng
    exposure: public
    controls: [rate_limting]
  - id: train
    kind: training
flows:
  - {from: train, to: apj}
"""
    with pytest.raises(SpecError) as info:
        parse_pipeline(text, "pipeline.yaml", catalog)
    first = str(info.value.problems[0])
    assert first.startswith("pipeline.yaml:4:11: 'servng' is not a valid kind "
                            "(at component #1, field 'kind')")
    assert first in (DOCS / "spec.md").read_text().replace("…", "") or \
        first.split("\n")[0] in (DOCS / "spec.md").read_text()
    fixed = text.replace("servng", "serving")
    with pytest.raises(SpecError) as info:
        parse_pipeline(fixed, "pipeline.yaml", catalog)
    doc = (DOCS / "spec.md").read_text()
    for problem in info.value.problems:
        assert str(problem).split("\n")[0] in doc


def catalog_rows(catalog: Catalog) -> dict[str, list[str]]:
    """docs/catalog.md's table rows as the catalog gives them, per table heading."""
    def where(t: Threat) -> str:
        a = t.acts_at
        notes = [f"{'/'.join(a.exposure)} only"] if a.exposure else []
        notes += a.facts
        notes += [f"not {f}" for f in a.unless]
        if a.controls:
            notes.append(f"needs {' or '.join(a.controls)}")
        if t.ruled_out_by:
            notes.append(f"not with {' or '.join(t.ruled_out_by)}")
        return ", ".join(a.kinds) + (f" ({'; '.join(notes)})" if notes else "")

    def refs(t: Threat) -> str:
        r = t.references
        return ", ".join([*r.atlas, *r.owasp_ml, *r.owasp_llm, *r.cwe])

    def threats(family: Family) -> list[str]:
        return [f"| `{t.id}` | {t.name} | {t.goal} · {t.asset} | {where(t)} | {refs(t)} |"
                for t in catalog.by_family(family)]
    return {
        f"Adversarial-ML threats ({len(catalog.by_family(Family.aml))})": threats(Family.aml),
        f"Classical security threats ({len(catalog.by_family(Family.classical))})":
            threats(Family.classical),
        f"Controls ({len(catalog.controls)})": [
            f"| `{c.id}` | {c.name} | {c.family} | {'yes' if c.incidental else ''} | {c.scope} | "
            f"{', '.join(c.aliases)} |" for c in catalog.controls],
    }


def test_catalog_doc_shows_the_catalog_as_it_is(catalog: Catalog) -> None:
    doc = (DOCS / "catalog.md").read_text()
    for heading, rows in catalog_rows(catalog).items():
        table = [line for line in _section(doc, heading).splitlines() if line.startswith("| `")]
        assert table == rows, heading


def test_readme_starts_with_the_two_commands() -> None:
    head = (ROOT / "README.md").read_text().splitlines()[:6]
    assert any(line.startswith("make demo") for line in head)
    assert any(line.startswith("make test") for line in head)


def _python_blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


@pytest.mark.parametrize("page", ["api.md", "contributing.md", "board.md"])
def test_every_python_example_in_the_docs_runs(page: str, capsys: pytest.CaptureFixture[str]
                                               ) -> None:
    """The page's examples run one after the other, as a reader would paste them into one
    session; their own asserts must hold."""
    blocks = _python_blocks((DOCS / page).read_text())
    assert blocks, page
    session: dict[str, object] = {"__name__": f"docs_{page}"}
    for n, block in enumerate(blocks):
        exec(compile(block, f"{page} example {n + 1}", "exec"), session)  # noqa: S102
    assert capsys.readouterr().out          # the examples print what they show


def test_spec_doc_rag_agent_table_is_what_mlthreat_places(
        example_pipeline: Callable[[str], Pipeline], catalog: Catalog) -> None:
    a = assess(example_pipeline("rag-agent"), catalog)
    found = {(f.threat_id, f.component): f for f in a.findings}
    table = _section((DOCS / "spec.md").read_text(), "A generative-AI example: a RAG support agent")
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in table.splitlines()
            if line.startswith("| ") and "`" in line]
    assert len(rows) >= 10
    for _, threats, places, path in rows:
        for threat in re.findall(r"`([^`]+)`", threats):
            for place in re.findall(r"`([^`]+)`", places):
                assert (threat, place) in found, (threat, place)
        if path:
            first = re.findall(r"`([^`]+)`", places)[0]
            threat = re.findall(r"`([^`]+)`", threats)[0]
            assert " → ".join(found[(threat, first)].path) == path
    training = {"aml-membership-inference", "aml-poisoning-label-flip", "aml-backdoor-data"}
    assert not training & {f.threat_id for f in a.findings}
