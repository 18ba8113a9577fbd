"""The regulation views' data: the reference table of clauses is complete (counted against the
published frameworks), and the mapping names only clauses of that table and threats of the
catalog, leaving no threat out."""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

import pytest

from mlthreat.catalog import Catalog
from mlthreat.catalog import views as views_module
from mlthreat.catalog.schema import NIST_CLASSES
from mlthreat.catalog.views import VIEWS, frameworks, load_view
from mlthreat.cli.args import VIEWS as CLI_VIEWS
from mlthreat.errors import CatalogError


def test_the_nist_ai_rmf_table_has_all_72_subcategories() -> None:
    # NIST AI 100-1 (AI RMF 1.0), its tables 1-4: GOVERN has 19 subcategories, MAP 18,
    # MEASURE 22 and MANAGE 13
    ids = list(frameworks()["nist-ai-rmf"].clauses)
    assert len(ids) == len(set(ids)) == 72
    assert all(re.fullmatch(r"(GOVERN|MAP|MEASURE|MANAGE) \d\.\d{1,2}", i) for i in ids)
    assert Counter(i.split()[0] for i in ids) == {"GOVERN": 19, "MAP": 18, "MEASURE": 22,
                                                  "MANAGE": 13}
    # categories per function: GOVERN 1-6, MAP 1-5, MEASURE 1-4, MANAGE 1-4, numbered without gaps
    for function in ("GOVERN", "MAP", "MEASURE", "MANAGE"):
        numbers = sorted({tuple(map(int, i.split()[1].split("."))) for i in ids
                          if i.startswith(function + " ")})
        for category in {c for c, _ in numbers}:
            subs = [s for c, s in numbers if c == category]
            assert subs == list(range(1, len(subs) + 1)), (function, category)
    assert frameworks()["nist-ai-rmf"].clauses["MEASURE 2.7"].title.startswith("security and "
                                                                                 "resilience")


def test_the_eu_ai_act_table_has_article_15_and_each_attack_class_of_paragraph_5() -> None:
    clauses = frameworks()["eu-ai-act"].clauses
    refs = [c.ref for c in clauses.values()]
    for paragraph in range(1, 6):
        assert any(r.startswith(f"Art. 15({paragraph})") for r in refs), paragraph
    # Art. 15(5), third subparagraph, names these five (Regulation (EU) 2024/1689)
    named = {"data poisoning", "model poisoning", "adversarial examples or model evasion",
             "confidentiality attacks", "model flaws"}
    assert {r.split(": ", 1)[1] for r in refs if "third subparagraph:" in r} == named


def test_the_nist_ai_100_2_table_is_the_catalogs_class_list() -> None:
    assert set(frameworks()["nist-ai-100-2"].clauses) == set(NIST_CLASSES)


@pytest.mark.parametrize("name", VIEWS)
def test_every_mapped_clause_is_in_the_table_and_every_threat_is_mapped(
        name: str, catalog: Catalog) -> None:
    view = load_view(name, catalog)
    table = frameworks()[name].clauses
    assert all(row.clause.id in table and row.clause.title for row in view.rows)
    known = {t.id for t in catalog.threats}
    mapped = {t for row in view.rows for t in row.threats}
    assert mapped == known                          # every threat somewhere, nothing unknown
    assert len({row.clause.id for row in view.rows}) == len(view.rows)
    if name == "eu-ai-act":        # each attack class of Art. 15(5) has a row
        assert {r.clause.id for r in view.rows} >= {
            "art15-5-data-poisoning", "art15-5-model-poisoning", "art15-5-adversarial-examples",
            "art15-5-confidentiality", "art15-5-model-flaws"}
        evasion = next(r for r in view.rows if r.clause.id == "art15-5-adversarial-examples")
        assert {t.id for t in catalog.threats if t.references.nist == "evasion"} \
            <= set(evasion.threats)


def test_the_command_line_offers_the_views_there_are() -> None:
    assert CLI_VIEWS == VIEWS


@pytest.mark.parametrize(("change", "problem"), [
    ({"clause": "MEASURE 9.9"}, "clause 'MEASURE 9.9' is not in regulations.yaml"),
    ({"threats": ["aml-no-such-threat"]}, "unknown threat aml-no-such-threat"),
    ({"clause": "GOVERN 1.1"}, "GOVERN 1.1: mapped, so regulations.yaml needs its title"),
])
def test_a_wrong_mapping_is_a_catalog_error(
        change: dict[str, Any], problem: str, catalog: Catalog,
        monkeypatch: pytest.MonkeyPatch) -> None:
    real = views_module._read

    def read(name: str) -> Any:
        data = real(name)
        if name == "views.yaml":
            data["nist-ai-rmf"][0] = {**data["nist-ai-rmf"][0], **change}
        return data
    monkeypatch.setattr(views_module, "_read", read)
    with pytest.raises(CatalogError, match=re.escape(problem)):
        load_view("nist-ai-rmf", catalog)


@pytest.mark.parametrize("name", VIEWS)
def test_the_compliance_doc_shows_the_mapping_as_it_is(name: str, catalog: Catalog) -> None:
    from tests.conftest import ROOT
    text = (ROOT / "docs" / "compliance.md").read_text()
    table = text.split(f"<!-- mapping:{name} -->\n", 1)[1].split("\n\n", 1)[0]
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in table.splitlines()[2:]]
    view = load_view(name, catalog)
    assert [r[0] for r in rows] == [m.clause.ref for m in view.rows]
    for row, m in zip(rows, view.rows, strict=True):
        every = len(m.threats) == len(catalog.threats)
        if every:
            assert row[1] == f"all {len(catalog.threats)}"
        else:
            assert re.findall(r"`([^`]+)`", row[1]) == list(m.threats)
        tools = sorted({x for t in m.threats for x in catalog.threat(t).measured_by})
        assert row[2].split(", ") == (tools or ["-"])
        assert row[3] == m.why
