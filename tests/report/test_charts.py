"""Probe charts: points land where the axes say (log axes included), bands enclose the line,
and the HTML report draws one chart per probe's evidence."""

from __future__ import annotations

import re

import pytest

from mlthreat.probes.blackbox import BlackBoxEvasion
from mlthreat.probes.extraction import ModelExtraction
from mlthreat.probes.interface import Measurement
from mlthreat.probes.membership import MembershipInference
from mlthreat.probes.poisoning import Poisoning
from mlthreat.report.charts import BOTTOM, LEFT, RIGHT, TOP, H, W, line_svg, svg


def _points(svg: str, cls: str) -> list[tuple[float, float]]:
    m = re.search(rf'class="{cls}"[^>]*points="([^"]+)"', svg)
    assert m, svg
    return [tuple(map(float, p.split(","))) for p in m.group(1).split()]  # type: ignore[misc]


def test_log_axes_put_decades_at_equal_distances() -> None:
    svg = line_svg([1e-3, 1e-2, 1e-1, 1.0], [1e-3, 1e-2, 1e-1, 1.0], "fpr", "tpr", log_x=True,
                   log_y=True, x_range=(1e-3, 1.0), y_range=(1e-3, 1.0))
    pts = _points(svg, "series")
    pw, ph = W - LEFT - RIGHT, H - TOP - BOTTOM
    # three decades over the plot width: each a third of it, by hand
    assert [round(x - LEFT, 6) for x, _ in pts] == pytest.approx([0, pw / 3, 2 * pw / 3, pw],
                                                                 abs=0.1)
    assert [round(TOP + ph - y, 6) for _, y in pts] == pytest.approx(
        [0, ph / 3, 2 * ph / 3, ph], abs=0.1)


def test_band_encloses_the_series() -> None:
    svg = line_svg([0, 1, 2], [0.2, 0.5, 0.9], "eps", "rate", lo=[0.1, 0.4, 0.8],
                   hi=[0.3, 0.6, 1.0])
    line = _points(svg, "series")
    band = _points(svg, "band")
    upper, lower = band[:3], list(reversed(band[3:]))
    for (_, y), (_, yu), (_, yl) in zip(line, upper, lower, strict=True):
        assert yu <= y <= yl          # SVG y grows downwards


def _m(series: dict[str, list[float]], **extra: object) -> Measurement:
    return Measurement("m", 0.5, None, True, "", series, dict(extra))


def test_each_probe_draws_its_own_curves_and_charts_know_no_probe() -> None:
    evasion = BlackBoxEvasion().curves(_m({
        "epsilon": [0.5, 1.0], "success_rate": [0.2, 0.6], "success_low": [0.1, 0.5],
        "success_high": [0.3, 0.7]}, norm="l2"))
    assert "perturbation budget (L2)" in svg(evasion[0])
    assert evasion[0].low == (0.1, 0.5) and evasion[0].high == (0.3, 0.7)
    (roc,) = MembershipInference().curves(_m({"fpr": [0.0, 0.01, 1.0], "tpr": [0.0, 0.1, 1.0]}))
    assert roc.x == (0.01, 1.0) and roc.log_x and roc.log_y and roc.diagonal   # fpr 0 dropped
    assert "(log)" in svg(roc)
    (copy,) = ModelExtraction().curves(_m({"queries": [200, 1000], "fidelity": [0.8, 0.9]}))
    assert "fidelity" in svg(copy)
    (flips,) = Poisoning(attack="label_flip").curves(
        _m({"rates": [0.1], "accuracy_drop": [0.05]}, clean_score=0.8, intervals=[[0.03, 0.07]]))
    # accuracy 0.8 clean, 0.75 at 10 %: the second point sits lower than the first
    assert flips.y == pytest.approx((0.8, 0.75)) and flips.low == pytest.approx((0.8, 0.73))
    (x0, y0), (x1, y1) = _points(svg(flips), "series")
    assert x1 > x0 and y1 > y0
    (door,) = Poisoning(attack="backdoor").curves(
        _m({"rates": [0.01, 0.1], "backdoor_success": [0.3, 0.9]}))
    assert "backdoor success" in svg(door)
    (turned,) = Poisoning(attack="targeted_flip").curves(
        _m({"rates": [0.1, 0.2], "targeted_shift": [0.2, 0.4]}))
    assert "more rows turned" in svg(turned)
    assert Poisoning().curves(_m({})) == ()
