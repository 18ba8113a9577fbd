"""Transfer evasion: changes crafted on the attacker's own copy of the model, sent to the real
one (Papernot et al., 2017).

The attacker labels rows they hold by querying the model (up to `queries` rows; or uses the
labels they already have, with `labels="own"`, spending nothing), trains a surrogate (a
scikit-learn multilayer perceptron), and runs PGD on the surrogate at each budget of a grid,
every step projected onto realisable records. Each adversarial example is then submitted once
to the real model. Reported: the share that flips the real model at each budget (the transfer
robustness curve, Wilson intervals), the queries spent, and per point the size of the smallest
submitted change that flipped it (`minimal`; infinite where none did).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from sklearn.neural_network import MLPClassifier

from mlthreat.adapters.interface import ModelAdapter
from mlthreat.adapters.sklearn import SklearnAdapter
from mlthreat.errors import ProbeError
from mlthreat.probes.copies import balanced
from mlthreat.probes.evasion import (
    ROWS_ONLY,
    EvasionData,
    WhiteBoxEvasion,
    points_to_attack,
    robustness_curves,
)
from mlthreat.probes.interface import Budget, Measurement, Meter, Param, Prepared, Probe
from mlthreat.probes.stats import robustness
from mlthreat.results import Curve

if TYPE_CHECKING:
    from mlthreat.probes.target import Target

SUCCESS_RATE = 0.5
EPSILONS = (0.25, 0.5, 1.0, 2.0)


class TransferEvasion(Probe):
    """Parameters: queries (rows labelled by the model to train the surrogate, 1000), labels
    ("queried" or "own"), norm ("l2" or "linf"), epsilons, steps (PGD steps, 40)."""

    name = "evasion-transfer"
    # a copy needs only queries; one trained on look-alike data is a proxy
    threat_ids = ("aml-evasion-transfer", "aml-evasion-blackbox", "aml-proxy-evasion")
    requires = ROWS_ONLY

    parameters = {
        "queries": Param(1000, 1, 10_000_000, doc="rows labelled by the model for the copy"),
        "labels": Param("queried", choices=("queried", "own"),
                        doc="the model's answers, or the attacker's own labels (no queries)"),
        "norm": Param("l2", choices=("l2", "linf")),
        "epsilons": Param(list(EPSILONS), 0.0, 1e6, doc="budgets of the robustness curve"),
        "steps": Param(40, 1, 10_000, doc="PGD steps on the copy"),
    }

    @classmethod
    def configure(cls, target: Target, settings: dict[str, int], fixed: dict[str, Any],
                  seed: int, jobs: int) -> Prepared:
        data = points_to_attack(target, settings)
        queries = target.spec.queries
        params: dict[str, Any] = {"queries": queries}
        if target.spec.images is not None:      # the field's L-infinity budgets in pixel units
            from mlthreat.probes.images import image_epsilons
            params.update(norm="linf", epsilons=image_epsilons(target.spec.images, "linf"))
        probe = cls(**{**params, **fixed})
        checks = len(probe.param("epsilons")) + 1     # each budget's changes tried on the model
        return Prepared(probe, target.adapter, data,
                        Budget(queries=queries + len(data.x) * max(5, checks), seed=seed))

    def curves(self, m: Measurement) -> tuple[Curve, ...]:
        return robustness_curves(m)

    def _measure(self, model: ModelAdapter, data: EvasionData, rng: np.random.Generator,
                 meter: Meter) -> Measurement:
        if data.pool is None or not len(data.pool):
            raise ProbeError("transfer evasion needs rows the attacker holds (a pool)")
        surrogate, spent = self._surrogate(model, data, rng)
        x = np.asarray(data.x, dtype=float)
        start = model.predict(x)
        norm = self.param("norm")
        epsilons = [float(e) for e in self.param("epsilons")]
        pgd = WhiteBoxEvasion(steps=int(self.param("steps")))
        rates, agree = [], float(np.mean(surrogate.predict(x) == start))
        smallest = np.full(len(x), np.inf)      # per point, the smallest change that flipped
        for eps in epsilons:
            _, adv = pgd.pgd(surrogate, x, start, np.full(len(x), eps), norm, data, early=False)
            now = model.predict(adv)
            hit = (now != start) if data.target is None else (now == data.target)
            rates.append(float(hit.mean()))
            size = np.linalg.norm(adv - x, ord=np.inf if norm == "linf" else 2, axis=1)
            smallest = np.where(hit, np.minimum(smallest, size), smallest)
        curve = robustness(epsilons, rates, len(x))
        at = epsilons.index(1.0) if 1.0 in epsilons else len(epsilons) // 2
        summary = (f"transfer evasion from a copy trained on {spent} answers: "
                   f"{rates[at]:.0%} of {len(x)} points flipped within "
                   f"{'L∞' if norm == 'linf' else 'L2'} {epsilons[at]:.4g} "
                   f"(copy agrees with the model on {agree:.0%} of them)")
        return Measurement(
            "success_rate", rates[at], (curve["success_low"][at], curve["success_high"][at]),
            rates[at] >= SUCCESS_RATE, summary, curve,
            {"norm": norm, "points": len(x), "surrogate_queries": spent,
             "minimal": [float(d) for d in smallest],
             "surrogate_agreement": agree, "warnings": data.warnings()})

    def _surrogate(self, model: ModelAdapter, data: EvasionData, rng: np.random.Generator
                   ) -> tuple[SklearnAdapter, int]:
        assert data.pool is not None
        pool = np.asarray(data.pool, dtype=float)
        if self.param("labels") == "own":
            if data.pool_y is None:
                raise ProbeError("labels='own' needs the attacker's labels of the pool")
            rows, labels, spent = pool, np.asarray(data.pool_y), 0
        else:
            n = min(int(self.param("queries")), len(pool))
            rows = pool[rng.choice(len(pool), n, replace=False)]
            labels, spent = model.predict(rows), n
        if len(np.unique(labels)) < 2:
            raise ProbeError("the surrogate's training rows all got one label; no copy to learn")
        net: Any = MLPClassifier((64, 64), max_iter=400, early_stopping=True,
                                 random_state=int(rng.integers(2**31)))
        return SklearnAdapter(net.fit(rows, labels, sample_weight=balanced(labels))), spent
