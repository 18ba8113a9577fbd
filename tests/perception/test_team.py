"""Agreement statistics against hand computations and published examples, and the team view."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from mlthreat.analysis import Assessment
from mlthreat.catalog import Catalog
from mlthreat.perception import Mappers, load_perception
from mlthreat.perception.agreement import alpha as _alpha
from mlthreat.perception.agreement import cohen as _kappa
from mlthreat.perception.agreement import fleiss as _fleiss
from mlthreat.perception.team import team_view
from mlthreat.pipeline import Pipeline
from tests.conftest import EXAMPLES


def test_cohen_kappa_by_hand() -> None:
    # p_o = 6/8, both raters say yes half the time: p_e = 0.5, kappa = (0.75 - 0.5) / 0.5.
    a = np.array([1, 1, 0, 0, 1, 0, 1, 0], dtype=float)
    b = np.array([1, 0, 0, 0, 1, 0, 1, 1], dtype=float)
    assert _kappa(a, b) == (0.5, 8)
    a[0] = np.nan  # an item one rater was not asked about is left out
    kappa, items = _kappa(a, b)
    # p_o = 5/7; both say yes 3/7 of the time: p_e = 2 (3/7)(4/7) ... = 25/49; kappa = 5/12.
    assert items == 7 and kappa == pytest.approx(5 / 12, abs=1e-4)


def test_fleiss_kappa_by_hand() -> None:
    # Three raters, four items; yes-counts 3, 0, 2, 1. P_i = 1, 1, 1/3, 1/3 -> P = 2/3;
    # yes share 1/2 -> P_e = 1/2; kappa = (2/3 - 1/2) / (1 - 1/2) = 1/3.
    m = np.array([[1, 0, 1, 1], [1, 0, 1, 0], [1, 0, 0, 0]], dtype=float)
    kappa, items = _fleiss(m)
    assert items == 4 and kappa == pytest.approx(1 / 3, abs=1e-4)


def test_krippendorff_alpha_published_example() -> None:
    # Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability": 4 observers, 12 units,
    # nominal alpha = 0.743.
    nan = np.nan
    data = np.array([
        [1, 2, 3, 3, 2, 1, 4, 1, 2, nan, nan, nan],
        [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, nan, 3],
        [nan, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, nan],
        [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, nan],
    ])
    assert _alpha(data) == pytest.approx(0.743, abs=1e-3)


def test_undefined_agreement_is_none() -> None:
    same = np.ones(5)
    assert _kappa(same, same)[0] is None          # no variation: kappa undefined
    assert _alpha(np.ones((3, 4))) is None


@pytest.fixture(scope="module")
def view(example_pipeline: Callable[[str], Pipeline], catalog: Catalog,
         credit: Assessment, tmp_path_factory: pytest.TempPathFactory) -> object:
    folder: Path = tmp_path_factory.mktemp("team")
    views = {  # three people, same two components; scoring_api threats differ
        "a": ["aml-model-extraction", "aml-evasion-blackbox"],
        "b": ["aml-model-extraction"],
        "c": ["aml-model-extraction", "aml-evasion-blackbox", "code breach"],
    }
    files = []
    for name, threats in views.items():
        path = folder / f"{name}.yaml"
        path.write_text(f"respondent: {name}\nviews:\n  - component: scoring_api\n"
                        f"    threats: {threats}\n  - component: loan_db\n    threats: []\n")
        files.append(path)
    pipeline = example_pipeline("credit-scoring")
    mappers = Mappers.for_catalog(catalog)
    people = [load_perception(f, pipeline, catalog, mappers) for f in files]
    return team_view(people, credit, catalog)


def test_team_view_matches_library_on_its_own_ratings(view: object) -> None:
    from sklearn.metrics import cohen_kappa_score
    from statsmodels.stats.inter_rater import aggregate_raters, fleiss_kappa
    v = view  # type: ignore[assignment]
    full = np.array(v.ratings)  # type: ignore[attr-defined]
    m = full[:, ~np.isnan(full).any(axis=0)]   # the items all three were asked about
    assert m.shape[1] == v.fleiss_items > 0  # type: ignore[attr-defined]
    ab = [p for p in v.pairs if (p.a, p.b) == ("a", "b")][0]  # type: ignore[attr-defined]
    assert ab.kappa == pytest.approx(cohen_kappa_score(m[0], m[1]), abs=1e-4)
    table, _ = aggregate_raters(m.T.astype(int), n_cat=2)
    assert v.fleiss_kappa == pytest.approx(fleiss_kappa(table), abs=1e-4)  # type: ignore[attr-defined]


def test_team_view_disagreement_and_cooccurrence(view: object) -> None:
    v = view  # type: ignore[assignment]
    top = v.disagreements[0]  # type: ignore[attr-defined]
    assert (top.component, top.threat_id) == ("scoring_api", "aml-evasion-blackbox")
    assert set(top.yes) == {"a", "c"} and top.no == ("b",)
    co = dict(zip(v.aml_concepts, v.cooccurrence, strict=True))  # type: ignore[attr-defined]
    cls = list(v.classical_concepts)  # type: ignore[attr-defined]
    # only c names code breach (mapped from free text), with extraction and evasion
    assert co["aml-model-extraction"][cls.index("cls-code-breach")] == 1
    assert co["aml-evasion-blackbox"][cls.index("cls-code-breach")] == 1


def test_example_perceptions_team(example_pipeline: Callable[[str], Pipeline],
                                  catalog: Catalog, credit: Assessment) -> None:
    pipeline = example_pipeline("credit-scoring")
    mappers = Mappers.for_catalog(catalog)
    people = [load_perception(f, pipeline, catalog, mappers)
              for f in sorted((EXAMPLES / "credit-scoring" / "perceptions").glob("*.yaml"))]
    v = team_view(people, credit, catalog)
    calibrated = [p for p in v.model_agreement if p.a == "p07"][0]
    assert calibrated.kappa == 1.0     # p07 names exactly what mlthreat rates medium or above
    assert all(p.kappa is None or p.kappa < 0.5 for p in v.model_agreement if p.a != "p07")
