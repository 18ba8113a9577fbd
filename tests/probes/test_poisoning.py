"""Poisoning against independent answers: no poison changes nothing; a strong backdoor works."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import make_classification
from sklearn.model_selection import train_test_split
from sklearn.tree import DecisionTreeClassifier

from mlthreat.errors import InputError
from mlthreat.probes import Budget, ProbeError
from mlthreat.probes.poisoning import Poisoning, PoisoningData, sklearn_train, trigger


@pytest.fixture(scope="module")
def data() -> PoisoningData:
    x, y = make_classification(1500, n_features=6, n_informative=4, random_state=0)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=0.3, random_state=0, stratify=y)
    return PoisoningData(x_tr, y_tr, x_te, y_te)


def test_no_poison_no_change(data: PoisoningData) -> None:
    for attack in ("label_flip", "targeted_flip", "backdoor"):
        ev = Poisoning(attack=attack, train=sklearn_train(DecisionTreeClassifier()), rates=[0.0],
                       seeds=3).run(None, data, Budget(seed=0))
        # Same seeds, same data: the retrained models are identical, the effect exactly zero;
        # its interval is what no changed row among all judged (seeds x rows) still allows:
        # Wilson's upper bound at 0 of n, z^2 / (n + z^2), never a zero-width interval.
        n = 3 * ev.extra["judged_rows"]
        half = 1.96 ** 2 / (n + 1.96 ** 2)
        assert ev.value == 0.0 and not ev.confirmed
        assert ev.interval == (pytest.approx(-half), pytest.approx(half))


def test_label_flips_cost_accuracy_monotonically(data: PoisoningData) -> None:
    ev = Poisoning(attack="label_flip", train=sklearn_train(DecisionTreeClassifier()),
                   rates=[0.05, 0.4], seeds=3, jobs=2).run(None, data, Budget(seed=1))
    drops = ev.series["accuracy_drop"]
    assert drops[1] > drops[0] and drops[1] > 0.1 and ev.confirmed
    assert 0.5 < ev.extra["clean_score"] <= 1.0          # an accuracy, not its negative


def test_strong_backdoor_succeeds_net_of_clean_response(data: PoisoningData) -> None:
    # Trigger: two features at -8, far from the data; the clean tree has no reason to answer 1.
    ev = Poisoning(attack="backdoor", train=sklearn_train(DecisionTreeClassifier()),
                   rates=[0.05], seeds=3, target_class=1, features=[0, 1], value=-8.0
                   ).run(None, data, Budget(seed=0))
    # The poisoned models answer the attacker's class on (nearly) every triggered row ...
    assert ev.extra["poisoned_score"] > 0.95
    # ... and the figure reported is net of what clean models already do with the trigger.
    assert ev.value == pytest.approx(ev.extra["poisoned_score"] - ev.extra["clean_score"])
    assert ev.value > 0.5 and ev.confirmed


def test_targeted_flip_turns_the_source_class(data: PoisoningData) -> None:
    ev = Poisoning(attack="targeted_flip", train=sklearn_train(DecisionTreeClassifier()),
                   rates=[0.2], seeds=3, source_class=1, target_class=0).run(None, data,
                                                                              Budget(seed=0))
    assert ev.value > 0.1


def test_trigger_and_errors(data: PoisoningData) -> None:
    x = trigger(np.zeros((2, 3)), [1], 5.0)
    assert x.tolist() == [[0, 5, 0], [0, 5, 0]]
    with pytest.raises(ProbeError, match="needs `train`"):
        Poisoning().run(None, data, Budget())
    with pytest.raises(InputError, match="attack is 'magic'; choose from 'label_flip'"):
        Poisoning(attack="magic", train=sklearn_train(DecisionTreeClassifier())).run(
            None, data, Budget())


def test_clean_retrainings_are_shared_and_poisoned_ones_are_not() -> None:
    from mlthreat.probes.training import sharing_clean
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(50, 3)), rng.integers(0, 2, size=50)
    calls: list[int] = []

    def fit(a: np.ndarray, b: np.ndarray, seed: int) -> object:
        calls.append(seed)
        return lambda rows: np.zeros((len(rows), 2))
    shared = sharing_clean(fit, x, y)
    first = shared(x.copy(), y.copy(), 1)
    assert shared(x.copy(), y.copy(), 1) is first          # same clean data, same seed: reused
    shared(x.copy(), y.copy(), 2)                            # another seed: trained
    flipped = y.copy()
    flipped[0] = 1 - flipped[0]
    shared(x, flipped, 1)
    shared(x, flipped, 1)                                    # poisoned data: trained each time
    assert calls == [1, 2, 1, 1]


def test_targeted_rate_is_a_share_of_the_source_class() -> None:
    """The issue's case: "20 %" flipped 20 % of *all* training rows' worth of one class's labels
    (71 % of the credit set's "bad" labels). Counted here by hand in the labels the training
    function receives: 20 % of the 90 class-1 rows is 18 flipped labels, whatever the other
    class's size; 1 % of 90 rounds to one, 0.5 % to none (and says so)."""
    rng = np.random.default_rng(0)
    y = np.r_[np.zeros(410, int), np.ones(90, int)]
    x = rng.normal(size=(500, 3))
    seen: list[int] = []

    def train(a: np.ndarray, b: np.ndarray, seed: int) -> object:
        seen.append(int(np.sum(b == 1)))
        return lambda rows: np.zeros(len(rows), int)
    data = PoisoningData(x, y, x[:40], np.r_[np.zeros(20, int), np.ones(20, int)])
    ev = Poisoning(attack="targeted_flip", train=train, rates=[0.2, 0.01, 0.005], seeds=1,
                   source_class=1, target_class=0).run(None, data, Budget(seed=0))
    assert sorted(seen) == sorted([90, 90 - 18, 90 - 1, 90])      # clean, 20 %, 1 %, 0.5 %
    assert "shares of the 90 training rows of class 1" in ev.summary
    (none, few) = ev.extra["warnings"]
    assert "0.5% of the 90 training rows of the source class is no row" in none
    assert "only 20 held-out rows" in few


def test_the_backdoor_trigger_is_a_record_the_spec_allows() -> None:
    """From the reference spec's API: the trigger columns sit at their mean + 4 SD, held to the
    declared bounds and integers (the credit `Time` bound is 6-72: 105 months is no record).
    Independent answer: the constraints' own violation check on the triggered rows, and the
    record's values read back in the data's units."""
    from mlthreat.catalog import load_catalog
    from mlthreat.pipeline import load_pipeline
    from mlthreat.probes.poisoning import trigger_values
    from mlthreat.probes.target import prepare
    from tests.conftest import EXAMPLES
    pipeline = load_pipeline(EXAMPLES / "credit-scoring" / "pipeline.yaml", load_catalog())
    api = next(c for c in pipeline.spec.components if c.id == "scoring_api")
    t = prepare(pipeline, api, trust=False)
    c = t.constraints
    cols = [c.columns.index("Time"), c.columns.index("Amount")]
    values = trigger_values(t, cols)
    rows = t.x[t.test][:50]
    triggered = rows.copy()
    triggered[:, cols] = values
    assert c.violations(triggered, rows) == []
    record = c.records(triggered[:1])[0]
    assert record["Time"] == 72 and isinstance(record["Time"], int)     # 6-72: held at 72
    raw = t.x[:, cols[1]] * c.scale[cols[1]] + c.offset[cols[1]]
    assert record["Amount"] == min(5000, round(raw.mean() + 4 * raw.std()))


def test_a_named_trigger_is_used_and_checked() -> None:
    """`trigger: [Debt, Amount]` in the probe block: those columns, in that order, at their
    mean + 4 SD held to the bounds (Amount's 100-5,000, a whole number); a name that is no
    numeric input column and an immutable column are refused with the reason."""
    import dataclasses

    from mlthreat.catalog import load_catalog
    from mlthreat.pipeline import load_pipeline
    from mlthreat.probes.poisoning import trigger_columns, trigger_values
    from mlthreat.probes.target import prepare
    from tests.conftest import EXAMPLES
    pipeline = load_pipeline(EXAMPLES / "credit-scoring" / "pipeline.yaml", load_catalog())
    api = next(c for c in pipeline.spec.components if c.id == "scoring_api")
    t = prepare(pipeline, api, trust=False)

    def named(*names: str) -> object:
        return dataclasses.replace(t, spec=t.spec.model_copy(update={"trigger": list(names)}))
    cols = trigger_columns(named("Debt", "Amount"))
    assert [t.constraints.columns[i] for i in cols] == ["Debt", "Amount"]
    record = t.constraints.records(trigger(t.x[:1], cols, trigger_values(t, cols)))[0]
    c, j = t.constraints, cols[1]
    raw = t.x[:, j] * c.scale[j] + c.offset[j]
    assert record["Amount"] == min(5000, round(raw.mean() + 4 * raw.std()))
    with pytest.raises(InputError, match="Home is not a numeric column"):
        trigger_columns(named("Home", "Debt"))
    with pytest.raises(InputError, match="Age is immutable"):
        trigger_values(t, [t.constraints.columns.index("Age")])


def test_clean_label_poisoning_keeps_labels_and_counts_the_target_class_share() -> None:
    """The clean-label run: only images of the target class are swapped for their crafted
    versions, a `rate` share of that class, and no label changes. Where the crafted images keep
    nothing of their class but the patch (pure noise + patch), a linear model learns the patch
    and the backdoor succeeds; where they are the clean images, nothing happens."""
    from sklearn.linear_model import LogisticRegression
    rng = np.random.default_rng(0)
    x = rng.normal(size=(600, 20))
    y = (x[:, 0] + x[:, 1] > 0).astype(int)
    tr, te = np.arange(400), np.arange(400, 600)
    feats, value = [18, 19], [6.0, 6.0]
    noise = rng.normal(size=x.shape) * 0.1
    noise[:, 0] += 3.0                      # what the class-1 content of the noise says
    crafted = trigger(noise, feats, value)
    seen: list[tuple[np.ndarray, np.ndarray]] = []

    def spy(xs: np.ndarray, ys: np.ndarray, seed: int):  # type: ignore[no-untyped-def]
        seen.append((xs.copy(), ys.copy()))
        return sklearn_train(LogisticRegression(max_iter=2000))(xs, ys, seed)
    for rows, expect_high in ((crafted, True), (x, False)):
        data = PoisoningData(x[tr], y[tr], x[te], y[te], rows[tr],
                             trigger(x[te], feats, value))
        seen.clear()
        ev = Poisoning(attack="clean_label", train=spy, rates=[0.5], seeds=1, target_class=0,
                       features=feats, value=value).run(None, data, Budget(seed=0))
        clean, poisoned = seen[0], seen[1]          # rate 0, then rate 0.5
        assert np.array_equal(poisoned[1], y[tr])     # not one label changed
        changed = np.flatnonzero(np.any(poisoned[0] != x[tr], axis=1))
        assert np.all(y[tr][changed] == 0)
        if expect_high:
            assert len(changed) == round(0.5 * np.sum(y[tr] == 0))
            assert ev.value is not None and ev.value > 0.5
        else:
            assert len(changed) == 0 and ev.value == pytest.approx(0.0, abs=0.02)
        assert np.array_equal(clean[0], x[tr])
