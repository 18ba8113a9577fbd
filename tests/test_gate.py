"""The CI gate's memory (mlthreat.gate): fingerprints that survive moved lines and other
checkouts, baselines with who/why/until, what counts as worse, and inline suppressions that
need a reason. Expected states are worked out by hand from the SARIF 2.1.0 definitions of
baselineState (new / unchanged / updated)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from mlthreat.errors import InputError
from mlthreat.gate import (
    Accepted,
    Baseline,
    InlineComments,
    Item,
    accept,
    dump_baseline,
    gated,
    load_baseline,
    sarif_items,
    scan_fingerprint,
    scan_items,
    triage,
    worse,
)
from mlthreat.report.scan import render
from mlthreat.scanners import ScanReport
from mlthreat.scanners.interface import ScanFinding
from mlthreat.vocabulary import RiskLevel

TODAY = dt.date(2026, 12, 2)


def _scan(file: str = "src/app.py", line: int = 3, rule: str = "SEC-AWS-ACCESS-KEY"
          ) -> ScanFinding:
    return ScanFinding("secrets", rule, "cls-secrets-in-code", "classical", "high", file, line,
                       "AWS Access Key in the file")


def _item(fp: str, level: str = "high", measured: dict[str, tuple[float, float | None]]
          | None = None) -> Item:
    return Item(fp, fp, ("aml-evasion-blackbox",), "p.yaml:3", level, measured=measured or {})


def _accepted(fp: str, level: str = "high", until: str | None = None,
              measured: dict[str, tuple[float, float | None]] | None = None) -> Accepted:
    return Accepted(fp, "aml-evasion-blackbox", "p.yaml:3", level, "alice", "reviewed", until,
                    None, measured or {})


def test_a_scan_fingerprint_ignores_the_line_and_where_the_tree_lies(tmp_path: Path) -> None:
    assert scan_fingerprint(_scan(line=3)) == scan_fingerprint(_scan(line=40))
    assert scan_fingerprint(_scan()) != scan_fingerprint(_scan(file="src/other.py"))
    assert scan_fingerprint(_scan()) != scan_fingerprint(_scan(rule="SEC-OTHER"))
    one, two = tmp_path / "one", tmp_path / "two"
    assert scan_fingerprint(_scan(str(one / "src/app.py")), one) == \
        scan_fingerprint(_scan(str(two / "src/app.py")), two) == scan_fingerprint(_scan())


def test_worse_means_a_higher_risk_or_an_attack_easier_than_its_interval() -> None:
    old = _accepted("f", "medium", measured={"evasion-blackbox/success_rate": (0.40, 0.52)})
    assert worse(_item("f", "medium", {"evasion-blackbox/success_rate": (0.50, 0.6)}), old) == ""
    assert worse(_item("f", "low"), old) == ""                          # better is not worse
    assert "medium to high" in worse(_item("f", "high"), old)
    easier = worse(_item("f", "medium", {"evasion-blackbox/success_rate": (0.53, 0.7)}), old)
    assert "0.4 to 0.53" in easier and "easier" in easier
    no_interval = _accepted("f", measured={"extraction/fidelity": (0.90, None)})
    assert worse(_item("f", measured={"extraction/fidelity": (0.90, None)}), no_interval) == ""
    assert worse(_item("f", measured={"extraction/fidelity": (0.91, None)}), no_interval)
    # a metric that shrinks as the attack gets easier (a distance) is not judged upside down
    distance = _accepted("f", measured={"evasion-exact/median_radius": (0.10, 0.12)})
    assert worse(_item("f", measured={"evasion-exact/median_radius": (0.30, 0.4)}), distance) == ""


def test_triage_states_suppressions_and_expiry() -> None:
    base = Baseline(Path("b.yaml"), {"kept": _accepted("kept"), "old": _accepted("old",
                    until="2026-12-01"), "today": _accepted("today", until="2026-12-02"),
                    "worse": _accepted("worse", "medium")})
    items = [_item("kept"), _item("old"), _item("today"), _item("worse"), _item("fresh")]
    by = {t.finding: t for t in triage(items, base, today=TODAY)}
    assert by["kept"].state == "unchanged" and by["kept"].suppression is not None
    assert by["kept"].suppression.by == "alice" and by["kept"].suppression.kind == "baseline"
    assert by["old"].suppression is None and "passed" in by["old"].note    # expired yesterday
    assert by["today"].suppression is not None                         # valid through its day
    assert by["worse"].state == "updated" and by["worse"].suppression is None
    assert by["fresh"].state == "new" and by["fresh"].suppression is None
    failing = gated(items, list(by.values()), RiskLevel.high, only_new=False)
    assert {i.fingerprint for i in failing} == {"old", "worse", "fresh"}
    assert gated(items, list(by.values()), RiskLevel.critical, only_new=False) == []


def test_new_since_gates_only_new_or_worse_and_suppresses_nothing() -> None:
    since = Baseline(Path("earlier.sarif"), {"a": _accepted("a"), "b": _accepted("b", "low")})
    items = [_item("a"), _item("b"), _item("c")]
    verdicts = triage(items, None, since, today=TODAY)
    assert [t.state for t in verdicts] == ["unchanged", "updated", "new"]
    assert all(t.suppression is None for t in verdicts)
    assert [i.fingerprint for i in gated(items, verdicts, RiskLevel.low, True)] == ["b", "c"]
    assert len(gated(items, verdicts, RiskLevel.low, False)) == 3


def test_baseline_files_round_trip_and_keep_earlier_acceptances(tmp_path: Path) -> None:
    path = tmp_path / "b.yaml"
    first = accept([_item("x", measured={"m/success_rate": (0.5, 0.6)})], "alice", "why",
                   "2027-01-31")
    path.write_text(dump_baseline(first))
    loaded = load_baseline(path)
    assert loaded.accepted["x"] == first[0]
    again = accept([_item("x"), _item("y")], "bob", "later", None, keep=loaded)
    assert [(a.fingerprint, a.by, a.until) for a in again] == [("x", "alice", "2027-01-31"),
                                                               ("y", "bob", None)]


@pytest.mark.parametrize("text, wrong", [
    ("version: 1\naccepted:\n  - {fingerprint: a, rule: r, level: high, by: x}\n", "reason"),
    ("version: 1\naccepted:\n  - {fingerprint: a, rule: r, level: high, by: x, reason: y, "
     "until: soon}\n", "not a date"),
    ("accepted: []\n", "not an mlthreat baseline"),
    ("version: 1\naccepted: [\n", "not valid YAML"),
])
def test_a_wrong_baseline_says_what_is_wrong(tmp_path: Path, text: str, wrong: str) -> None:
    path = tmp_path / "b.yaml"
    path.write_text(text)
    with pytest.raises(InputError, match=wrong):
        load_baseline(path)


def test_sarif_of_a_scan_gives_the_same_fingerprints(tmp_path: Path) -> None:
    report = ScanReport(["."], ["secrets"], [_scan(), _scan("src/b.py", 7)], files=2)
    sarif = tmp_path / "scan.sarif"
    sarif.write_text(render(report, "sarif"))
    read = sarif_items(sarif)
    assert [i.fingerprint for i in read] == [i.fingerprint for i in scan_items(report.findings)]
    assert [i.level for i in read] == ["high", "high"]
    bad = tmp_path / "other.sarif"
    bad.write_text(json.dumps({"runs": [{"results": [{"ruleId": "x"}]}]}))
    with pytest.raises(InputError, match="no mlthreat fingerprint"):
        sarif_items(bad)


def test_inline_comments_need_the_rule_and_a_reason(tmp_path: Path) -> None:
    code = tmp_path / "app.py"
    code.write_text("a = 1  # mlthreat: ignore[SEC-AWS-ACCESS-KEY] test key, revoked\n"
                    "# mlthreat: ignore[cls-secrets-in-code, other] fixture for the scanner\n"
                    "b = 2\n"
                    "c = 3  # mlthreat: ignore[SEC-AWS-ACCESS-KEY]\n"
                    "d = 4  # mlthreat: ignore[SEC-OTHER] wrong rule\n"
                    "\n\n"
                    "e = 5\n")
    comments = InlineComments()
    found = [comments(i) for i in scan_items([_scan(str(code), n) for n in (1, 3, 4, 5, 8)])]
    assert found[0] is not None and found[0].reason == "test key, revoked"
    assert found[0].where == f"{code}:1" and found[0].kind == "inline"
    assert found[1] is not None and found[1].reason == "fixture for the scanner"   # line above
    assert found[2] is None and "has no reason" in comments.problems[0]
    assert found[3] is None and found[4] is None          # another rule; nothing near line 8
    assert found[0].by == "unknown (not in a git repository)"
