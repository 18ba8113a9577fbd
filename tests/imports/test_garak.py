"""garak reports as evidence (issue #16, part 6), on a real report: garak 0.17.1 run offline
against its `test.Repeat` generator (a model that repeats the prompt) with the config beside the
report (`python -m garak --config tests/imports/data/garak-config.yaml`)."""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from scipy.stats import binomtest

from mlthreat.assessor import Assessor
from mlthreat.catalog import Catalog
from mlthreat.cli import main
from mlthreat.errors import DataError, InputError
from mlthreat.imports import garak_map, load
from mlthreat.imports.garak import SOURCE, read_report
from mlthreat.pipeline import Pipeline
from tests.conftest import EXAMPLES

DATA = Path(__file__).parent / "data"
REPORT = DATA / "garak-0.17.1-test.Repeat.report.jsonl.gz"
RAG = EXAMPLES / "rag-agent" / "pipeline.yaml"
# garak 0.17.1's probe modules (`python -m garak --list_probes`)
GARAK_MODULES = {
    "adaptive_attacks", "agent_breaker", "ansiescape", "apikey", "atkgen", "audio",
    "av_spam_scanning", "badchars", "continuation", "dan", "divergence", "doctor", "donotanswer",
    "dra", "encoding", "exploitation", "fileformats", "fitd", "glitch", "goat", "goodside",
    "grandma", "latentinjection", "leakreplay", "lmrc", "malwaregen", "misleading",
    "packagehallucination", "phrasing", "promptinject", "propile", "realtoxicityprompts", "sata",
    "smuggling", "snowball", "suffix", "sysprompt_extraction", "tap", "test", "topic",
    "visual_jailbreak", "web_injection"}


def test_the_real_report_is_read_as_garak_counted_it() -> None:
    results, run = read_report(REPORT)
    # (fails, evaluated) of each probe's worst detector, from the report's eval lines; the
    # repeating model echoes every injected instruction, and never writes a Markdown image
    assert {r.probe: (r.fails, r.evaluated) for r in results} == {
        "dan.DanInTheWild": (3, 6), "encoding.InjectBase64": (0, 6),
        "exploitation.SQLInjectionEcho": (10, 10),
        "latentinjection.LatentInjectionReport": (6, 6),
        "promptinject.HijackHateHumans": (6, 6), "web_injection.MarkdownImageExfil": (0, 12)}
    assert run["garak_version"] == "0.17.1" and run["target"] == "test.Repeat"


def test_the_plain_report_reads_the_same(tmp_path: Path) -> None:
    plain = tmp_path / "run.report.jsonl"
    plain.write_bytes(gzip.decompress(REPORT.read_bytes()))
    assert read_report(plain) == read_report(REPORT)


def test_every_mapped_probe_and_threat_exists(catalog: Catalog) -> None:
    ids = {t.id for t in catalog.threats}
    for probe, threats in garak_map().items():
        assert probe.split(".")[0] in GARAK_MODULES, probe
        for t in threats:
            assert t in ids, (probe, t)
            assert SOURCE in catalog.threat(t).measured_by, t


def test_evidence_lands_on_the_findings_garak_measured(example_pipeline: Callable[[str], Pipeline],
                                                      catalog: Catalog) -> None:
    pipeline = example_pipeline("rag-agent")
    evidence, notes = load(pipeline, [str(REPORT)])   # the spec's only generative model
    assert notes == []
    by_probe = {e.parameters["probe"]: e for e in evidence}
    dan = by_probe["dan.DanInTheWild"]
    assert dan.component == "vendor_llm" and dan.threat_ids == ("aml-llm-jailbreak",)
    assert dan.value == 0.5 and dan.confirmed
    # the interval is Wilson's (scipy's binomial test computes it independently)
    ci = binomtest(3, 6).proportion_ci(confidence_level=0.95, method="wilson")
    assert dan.interval == pytest.approx((ci.low, ci.high), abs=1e-9)
    assert not by_probe["encoding.InjectBase64"].confirmed

    before = Assessor(catalog, scan=False).assess(pipeline)
    after = Assessor(catalog, scan=False, evidence=[f"{REPORT}@vendor_llm"]).assess(pipeline)
    old = {f.id: f for f in before.findings}
    new = {f.id: f for f in after.findings}
    direct = new["aml-llm-direct-prompt-injection@vendor_llm"]
    measured = after.evidence_of(direct)
    assert {e.parameters["probe"] for e in measured} == {"promptinject.HijackHateHumans",
                                                         "encoding.InjectBase64"}
    assert direct.likelihood == min(5.0, old[direct.id].likelihood + 1)   # confirmed: one step
    # the injection placed at the forum travels through the model garak tested
    indirect = new["aml-llm-indirect-prompt-injection@forum"]
    assert [e.parameters["probe"] for e in after.evidence_of(indirect)] == [
        "latentinjection.LatentInjectionReport"]
    # a threat garak did not test keeps no evidence
    assert new["aml-rag-poisoning@kb_index"].evidence == ()


def test_probes_that_measure_no_threat_are_named_not_attached(tmp_path: Path,
                                                             example_pipeline: Callable[[str], Pipeline]
                                                             ) -> None:
    lines = [json.dumps(x) for x in (
        {"entry_type": "init", "garak_version": "0.17.1", "run": "r"},
        {"entry_type": "eval", "probe": "lmrc.Profanity", "detector": "d", "passed": 4,
         "fails": 1, "total_evaluated": 5},
        {"entry_type": "eval", "probe": "promptinject.HijackKillHumans", "detector": "d",
         "passed": 5, "fails": 0, "total_evaluated": 5})]
    report = tmp_path / "r.report.jsonl"
    report.write_text("\n".join(lines) + "\n")
    evidence, notes = load(example_pipeline("rag-agent"), [f"{report}@vendor_llm"])
    assert [e.parameters["probe"] for e in evidence] == ["promptinject.HijackKillHumans"]
    assert notes == ["vendor_llm: garak probes that measure no catalog threat, not attached to a "
                     "finding: lmrc.Profanity"]


@pytest.mark.parametrize("text, message", [
    ('{"entry_type": "init", "garak_version": "0.17.1"}\nnot json\n', "r.jsonl:2: not a JSON line"),
    ('{"probe": "x"}\n', "r.jsonl:1: no `entry_type`"),
    ('{"entry_type": "eval", "probe": "dan.X", "detector": "d", "fails": 1, '
     '"total_evaluated": 2}\n', "no `init` entry: not a garak report"),
    ('{"entry_type": "init", "garak_version": "0.17.1"}\n', "no `eval` entry"),
    ('{"entry_type": "init", "garak_version": "0.17.1"}\n{"entry_type": "eval", "probe": "dan.X"}\n',
     "r.jsonl:2: an eval entry without probe"),
])
def test_a_broken_report_is_a_clear_error(tmp_path: Path, text: str, message: str) -> None:
    report = tmp_path / "r.jsonl"
    report.write_text(text)
    with pytest.raises(DataError, match=re.escape(message)):
        read_report(report)


def test_the_component_must_be_clear(tmp_path: Path, write_spec: Callable[[str], Path],
                                     catalog: Catalog) -> None:
    from mlthreat.pipeline import load_pipeline
    two = load_pipeline(write_spec("""\
    name: two
    components:
      - {id: a, kind: llm}
      - {id: b, kind: hosted_model}
    flows:
      - {from: a, to: b}
    """), catalog)
    with pytest.raises(InputError, match=r"say which component garak tested.*2 generative models"):
        load(two, [str(REPORT)])
    with pytest.raises(InputError, match=r"no component 'c'.*components: a, b"):
        load(two, [f"{REPORT}@c"])
    assert {e.component for e in load(two, [f"{REPORT}@b"])[0]} == {"b"}


def test_command_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    out = tmp_path / "tm.json"
    code = main(["model", str(RAG), "--no-scan", "--evidence", f"{REPORT}@vendor_llm",
                 "-f", "json", "-o", str(out)])
    assert code == 0
    data = json.loads(out.read_text())
    sources = {e["source"] for e in data["evidence"]}
    assert sources == {SOURCE}
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{oops\n")
    code = main(["model", str(RAG), "--no-scan", "--evidence", str(bad)])
    err = capsys.readouterr().err
    assert code == 2 and "bad.jsonl:1: not a JSON line" in err and "Traceback" not in err
