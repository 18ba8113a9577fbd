"""Regulation views of an assessment: each clause holds exactly the findings of its threats, the
controls those findings have and lack, what probes measured of them and what nobody measured,
and what a baseline accepted; in Markdown, JSON and HTML, and from the command line."""

from __future__ import annotations

import dataclasses
import json
from html.parser import HTMLParser
from pathlib import Path

import pytest

from mlthreat import cli
from mlthreat.catalog import Catalog
from mlthreat.catalog.views import load_view
from mlthreat.report.regulation import evaluate, render
from mlthreat.results import Assessment, Evidence, Suppression, Triage
from tests.conftest import EXAMPLES

EVASION = {"aml-evasion-blackbox", "aml-evasion-whitebox", "aml-evasion-transfer",
           "aml-monitor-evasion", "aml-proxy-evasion", "aml-insider-evasion", "aml-capture-spoofing",
           "aml-physical-adversarial", "aml-llm-direct-prompt-injection", "aml-llm-jailbreak",
           "aml-llm-indirect-prompt-injection", "aml-rag-poisoning", "aml-agent-memory-poisoning",
           "aml-llm-prompt-self-replication"}


def _measured(a: Assessment) -> tuple[Assessment, str]:
    """`a` with a probe's measurement attached to its first black-box evasion finding."""
    target = next(f for f in a.findings if f.threat_id == "aml-evasion-blackbox")
    e = Evidence(source="probe:evasion-blackbox", threat_ids=("aml-evasion-blackbox",),
                 metric="success_rate", value=0.88, interval=(0.81, 0.93), confirmed=True,
                 summary="88 % of rejected applicants approved within L2 0.5",
                 component=target.component, id="ev-test")
    findings = tuple(dataclasses.replace(f, evidence=("ev-test",)) if f.id == target.id else f
                     for f in a.findings)
    return dataclasses.replace(a, findings=findings, evidence=(*a.evidence, e)), target.id


def test_a_clause_holds_its_threats_findings_controls_and_measurements(
        credit: Assessment, catalog: Catalog) -> None:
    a, measured_id = _measured(credit)
    rows = {r.mapped.clause.id: r for r in evaluate(a, load_view("eu-ai-act", catalog), catalog)}
    evasion = rows["art15-5-adversarial-examples"]
    mine = [f for f in a.findings if f.threat_id in EVASION]
    assert sorted(f.id for f in evasion.findings) == sorted(f.id for f in mine) and mine
    assert evasion.worst is not None and evasion.worst.value == "critical"
    assert {c.control for c in evasion.in_place} == {u.control for f in mine
                                                     for u in f.controls_present}
    assert {c.control for c in evasion.missing} == {u.control for f in mine
                                                    for u in f.controls_missing}
    assert [e.id for e in evasion.measured] == ["ev-test"]
    assert evasion.measured_findings == 1
    # scanner evidence measures what a scanner can: the model-file scanner's finding
    model = rows["art15-5-model-poisoning"]
    scanned = [f for f in model.findings if a.evidence_of(f)
               and any(e.source in f.measured_by for e in a.evidence_of(f))]
    assert {fid for fid, _ in model.unmeasured}.isdisjoint(f.id for f in scanned)
    unmeasured = {fid for fid, _ in evasion.unmeasured}
    assert measured_id not in unmeasured
    assert unmeasured == {f.id for f in mine if f.measured_by and f.id != measured_id}
    assert evasion.measured_findings == sum(bool(f.measured_by) for f in mine) - len(unmeasured)
    assert set(evasion.not_placed) == EVASION - {f.threat_id for f in mine}
    # a clause none of whose threats is placed says so
    empty = evaluate(dataclasses.replace(a, findings=()), load_view("eu-ai-act", catalog),
                     catalog)
    assert all(r.status == "none of its threats applies to this pipeline" for r in empty)


def test_an_accepted_finding_is_not_open_and_names_who_accepted_it(
        credit: Assessment, catalog: Catalog) -> None:
    view = load_view("eu-ai-act", catalog)
    before = next(r for r in evaluate(credit, view, catalog)
                  if r.mapped.clause.id == "art15-5-adversarial-examples")
    top = before.open_high[0]
    accepted = Suppression("baseline", "Ada", "rate limited by the gateway", "b.yaml",
                           "2027-06-30")
    a = dataclasses.replace(credit, triage=(Triage(top.id, "fp", "unchanged", accepted),))
    after = next(r for r in evaluate(a, view, catalog)
                 if r.mapped.clause.id == "art15-5-adversarial-examples")
    assert [f.id for f in after.open_high] == [f.id for f in before.open_high[1:]]
    data = json.loads(render(a, "eu-ai-act", "json"))
    row = next(c for c in data["clauses"] if c["clause"] == "art15-5-adversarial-examples")
    assert next(f for f in row["findings"] if f["id"] == top.id)["accepted"] == {
        "by": "Ada", "reason": "rate limited by the gateway", "until": "2027-06-30",
        "where": "b.yaml"}
    assert "by Ada: rate limited by the gateway" in render(a, "eu-ai-act", "md")


class _Sections(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.ids: list[str] = []
        self.classes: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "section" and found.get("class") == "clause":
            self.ids.append(str(found.get("id")))
        if found.get("class"):
            self.classes.append(str(found["class"]))


@pytest.mark.parametrize("name", ["eu-ai-act", "nist-ai-rmf"])
def test_every_format_has_every_clause_with_the_same_counts(
        name: str, credit: Assessment, catalog: Catalog) -> None:
    a, _ = _measured(credit)
    rows = evaluate(a, load_view(name, catalog), catalog)
    data = json.loads(render(a, name, "json"))
    assert [c["clause"] for c in data["clauses"]] == [r.mapped.clause.id for r in rows]
    for c, r in zip(data["clauses"], rows, strict=True):
        assert len(c["findings"]) == len(r.findings)
        assert len(c["missing"]["not_measured"]) == len(r.unmeasured)
    assert "not a conformity assessment" in data["note"]
    md = render(a, name, "md")
    assert all(f"## {r.mapped.clause.ref}\n" in md for r in rows)
    parser = _Sections()
    parser.feed(render(a, name, "html"))
    assert parser.ids == [r.mapped.clause.id.replace(" ", "-") for r in rows]
    assert parser.classes.count("measured") == sum(len(r.measured) for r in rows)


@pytest.mark.parametrize("example", sorted(p.name for p in EXAMPLES.iterdir()
                                           if (p / "pipeline.yaml").is_file()))
def test_the_views_render_for_every_example(example: str, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    spec = str(EXAMPLES / example / "pipeline.yaml")
    out = tmp_path / "reports"
    code = cli.main(["model", spec, "--out-dir", str(out), "--view", "eu-ai-act",
                     "--view", "nist-ai-rmf", "--no-scan"])
    assert code == 0, capsys.readouterr().err
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted([f"{v}.{x}" for v in ("eu-ai-act", "nist-ai-rmf")
                            for x in ("html", "json", "md")]
                           + [f"threat-model.{x}" for x in ("html", "json", "md", "sarif")])
    findings = json.loads((out / "threat-model.json").read_text())["findings"]
    view = json.loads((out / "nist-ai-rmf.json").read_text())
    measure = next(c for c in view["clauses"] if c["clause"] == "MEASURE 2.7")
    assert len(measure["findings"]) == len(findings)       # it maps every threat


def test_view_errors_come_before_any_work(capsys: pytest.CaptureFixture[str]) -> None:
    spec = str(EXAMPLES / "credit-scoring" / "pipeline.yaml")
    assert cli.main(["model", spec, "--view", "eu-ai-act", "-f", "sarif"]) == 2
    assert "--view has no SARIF form" in capsys.readouterr().err
    assert cli.main(["model", spec, "--view", "eu-ai-act", "--view", "nist-ai-rmf",
                     "-f", "md"]) == 2
    assert "give one --view" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        cli.main(["model", spec, "--view", "eu-ai-ac"])
    assert exc.value.code == 2
    assert "invalid choice: 'eu-ai-ac'" in capsys.readouterr().err
    assert cli.main(["model", spec, "--view", "eu-ai-act", "--no-scan"]) == 0
    out = capsys.readouterr().out
    assert "Art. 15(5) data poisoning" in out and "not a conformity assessment" in " ".join(
        out.split())
