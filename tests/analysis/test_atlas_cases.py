"""The ATLAS case encodings of benchmarks/atlas (issue #16, part 7) stay valid specs, and each
case's main attack (read from the case's summary) stays found where the attacker acts. The
recall figures themselves are a benchmark (benchmarks/atlas_recall.py), not a test."""

from __future__ import annotations

import pytest
import yaml

from mlthreat.analysis import assess
from mlthreat.catalog import Catalog
from mlthreat.pipeline import load_pipeline
from tests.conftest import ROOT

CASES = ROOT / "benchmarks" / "atlas"
ALL = yaml.safe_load((CASES / "cases.yaml").read_text(encoding="utf-8"))["cases"]
# The third hold-out's token theft from a desktop client: no threat acts at a client for
# credentials it holds (a local attacker; the vendors called it out of scope).
KNOWN_MISSES = {"AML.CS0036": "no threat for a session token read from a client's memory"}


def _case(c: dict[str, object]) -> object:
    why = KNOWN_MISSES.get(str(c["case"]))
    return pytest.param(c, id=str(c["case"]), marks=[pytest.mark.xfail(strict=True, reason=why)]
                        if why else [])


def test_the_set_is_what_the_issue_asks_for() -> None:
    assert len(ALL) >= 25 and sum(c["set"] == "genai" for c in ALL) >= 8
    assert {c["spec"] for c in ALL} == {p.name for p in CASES.glob("CS*.yaml")}


@pytest.mark.parametrize("case", [_case(c) for c in ALL])
def test_main_attack_found_where_the_attacker_acts(case: dict[str, object],
                                                   catalog: Catalog) -> None:
    a = assess(load_pipeline(CASES / str(case["spec"]), catalog), catalog)
    main = case["main"]
    assert isinstance(main, dict)
    # where the attacker acts or comes in: the distillation case's main attack was written at the
    # API front end, and extraction acts at the model behind it (entry api, path api -> claude)
    cited = {r.id.split(".")[0] + "." + r.id.split(".")[1] for f in a.findings
             if main["component"] in (f.component, f.entry) for r in f.references
             if r.scheme == "atlas"}
    assert main["technique"] in cited
