"""The risk scale: likelihood adjustments, impact from asset criticality, and risk levels.

Documented in docs/risk.md; the numbers here and there must agree (a test reads both).
Likelihood and impact are on 1-5 scales; risk score = likelihood x impact (1-25).
"""

from __future__ import annotations

from mlthreat.vocabulary import Criticality, Exposure, RiskLevel, Strength

CONTROL_STEP: dict[Strength, float] = {
    Strength.weak: -0.5, Strength.medium: -1.0, Strength.strong: -2.0,
}
NETWORK_EXPOSURE_STEP: dict[Exposure, float] = {
    Exposure.public: 1.0, Exposure.partner: 0.5, Exposure.internal: 0.0, Exposure.offline: -1.0,
}
PARTNER_ONLY_STEP = -0.5
EVIDENCE_STEP = 1.0   # a scanner or probe confirmed the threat at this component
CLEAN_SCAN_STEP = -2.0  # a scanner read all of the component's code for it and found nothing
CRITICALITY_STEP: dict[Criticality, int] = {
    Criticality.low: -1, Criticality.medium: 0, Criticality.high: 1, Criticality.critical: 2,
}
# Lower bounds of each level on the 1-25 score scale.
LEVEL_BOUNDS: tuple[tuple[float, RiskLevel], ...] = (
    (16.0, RiskLevel.critical), (10.0, RiskLevel.high), (5.0, RiskLevel.medium),
    (0.0, RiskLevel.low),
)
MIN_LIKELIHOOD = 1.0
MAX_LIKELIHOOD = 5.0


def clamp_likelihood(value: float) -> float:
    return min(MAX_LIKELIHOOD, max(MIN_LIKELIHOOD, value))


def impact_for(base: int, criticality: Criticality) -> int:
    return min(5, max(1, base + CRITICALITY_STEP[criticality]))


def level_for(score: float) -> RiskLevel:
    for bound, level in LEVEL_BOUNDS:
        if score >= bound:
            return level
    return RiskLevel.low  # pragma: no cover - the last bound is 0


def score_for(likelihood: float, impact: int) -> float:
    return round(likelihood * impact, 2)
