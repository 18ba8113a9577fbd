"""Small inline SVG charts of probe measurements for the HTML report (no script, no external
loads): robustness curves of evasion, ROC of membership inference on log axes, fidelity of an
extracted copy against queries, accuracy against poison rate and backdoor success against poison
rate, each with its interval band where the probe measured one."""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape
from typing import Any

from mlthreat.probes.stats import wilson

W, H = 340, 210
LEFT, RIGHT, TOP, BOTTOM = 46, 12, 12, 38
LINE = "#1d4ed8"
BAND = "#bfdbfe"


def _scale(lo: float, hi: float, log: bool, size: float, flip: bool) -> Any:
    if log:
        lo, hi = math.log10(lo), math.log10(hi)
    span = (hi - lo) or 1.0

    def to(v: float) -> float:
        v = math.log10(max(v, 10 ** lo)) if log else v
        frac = (v - lo) / span
        return (1 - frac) * size if flip else frac * size
    return to


def _ticks(lo: float, hi: float, log: bool) -> list[float]:
    if log:
        return [10.0 ** e for e in range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1)
                if lo <= 10.0 ** e <= hi * 1.0001]
    step = (hi - lo) / 4 or 1.0
    return [lo + i * step for i in range(5)]


def _label(v: float) -> str:
    if v and (abs(v) < 0.01 or abs(v) >= 10000):
        return f"{v:.0e}"
    return f"{v:g}" if abs(v) >= 1 else f"{v:.2g}"


def line_svg(xs: Sequence[float], ys: Sequence[float], x_label: str, y_label: str, *,
             lo: Sequence[float] | None = None, hi: Sequence[float] | None = None,
             log_x: bool = False, log_y: bool = False, x_range: tuple[float, float] | None = None,
             y_range: tuple[float, float] = (0.0, 1.0), diagonal: bool = False) -> str:
    """One series (with an optional interval band) as an SVG element."""
    pw, ph = W - LEFT - RIGHT, H - TOP - BOTTOM
    x0, x1 = x_range or (min(xs), max(xs))
    sx = _scale(x0, x1, log_x, pw, False)
    sy = _scale(y_range[0], y_range[1], log_y, ph, True)

    def pt(x: float, y: float) -> str:
        return f"{LEFT + sx(x):.1f},{TOP + sy(min(max(y, y_range[0]), y_range[1])):.1f}"
    parts = [f'<svg class="chart" width="{W}" height="{H}" viewBox="0 0 {W} {H}" '
             f'role="img" aria-label="{escape(y_label)} against {escape(x_label)}">',
             f'<rect x="{LEFT}" y="{TOP}" width="{pw}" height="{ph}" fill="#fff" '
             'stroke="#cbd5e1"/>']
    for t in _ticks(x0, x1, log_x):
        x = LEFT + sx(t)
        parts.append(f'<line x1="{x:.1f}" y1="{TOP}" x2="{x:.1f}" y2="{TOP + ph}" '
                     f'stroke="#eef2f7"/><text x="{x:.1f}" y="{TOP + ph + 13}" font-size="10" '
                     f'text-anchor="middle">{_label(t)}</text>')
    for t in _ticks(y_range[0], y_range[1], log_y):
        y = TOP + sy(t)
        parts.append(f'<line x1="{LEFT}" y1="{y:.1f}" x2="{LEFT + pw}" y2="{y:.1f}" '
                     f'stroke="#eef2f7"/><text x="{LEFT - 4}" y="{y + 3:.1f}" font-size="10" '
                     f'text-anchor="end">{_label(t)}</text>')
    if diagonal:
        grid = [x0 * (x1 / x0) ** (i / 40) for i in range(41)] if log_x else [x0, x1]
        parts.append(f'<polyline fill="none" stroke="#94a3b8" stroke-dasharray="4 3" '
                     f'points="{" ".join(pt(v, v) for v in grid)}"/>')
    if lo is not None and hi is not None:
        ring = [pt(x, y) for x, y in zip(xs, hi, strict=True)] + \
               [pt(x, y) for x, y in reversed(list(zip(xs, lo, strict=True)))]
        parts.append(f'<polygon class="band" fill="{BAND}" fill-opacity="0.7" '
                     f'points="{" ".join(ring)}"/>')
    points = " ".join(pt(x, y) for x, y in zip(xs, ys, strict=True))
    parts.append(f'<polyline class="series" fill="none" stroke="{LINE}" stroke-width="2" '
                 f'points="{points}"/>')
    parts += [f'<circle cx="{p.split(",")[0]}" cy="{p.split(",")[1]}" r="2.5" fill="{LINE}"/>'
              for p in points.split()] if len(xs) <= 30 else []
    parts.append(f'<text x="{LEFT + pw / 2}" y="{H - 6}" font-size="11" text-anchor="middle">'
                 f'{escape(x_label)}</text>')
    parts.append(f'<text x="12" y="{TOP + ph / 2}" font-size="11" text-anchor="middle" '
                 f'transform="rotate(-90 12 {TOP + ph / 2})">{escape(y_label)}</text></svg>')
    return "".join(parts)


def chart_for(item: dict[str, Any]) -> str | None:
    """The chart that fits a piece of probe evidence (an `Evidence.as_item()`), if any."""
    curves = item.get("curves") or {}
    extra = item.get("extra") or {}
    probe = str(item.get("source", "")).removeprefix("probe:")
    if probe.startswith("evasion") and curves.get("epsilon"):
        eps, rate = curves["epsilon"], curves["success_rate"]
        n = int(extra.get("points") or 0)
        lo, hi = curves.get("success_low"), curves.get("success_high")
        if lo is None and n:
            lo, hi = zip(*(wilson(r, n) for r in rate), strict=True)
        norm = str(extra.get("norm", "l2")).upper()
        return line_svg(eps, rate, f"perturbation budget ({norm})", "success rate", lo=lo, hi=hi,
                        x_range=(0.0, max(eps)))
    if probe == "membership" and curves.get("fpr"):
        pairs = [(f, t) for f, t in zip(curves["fpr"], curves["tpr"], strict=True) if f > 0]
        if not pairs:
            return None
        fpr, tpr = zip(*pairs, strict=True)
        low = max(min(fpr), 1e-4)
        return line_svg(fpr, [max(t, low) for t in tpr], "false positive rate (log)",
                        "true positive rate (log)", log_x=True, log_y=True,
                        x_range=(low, 1.0), y_range=(low, 1.0), diagonal=True)
    if probe == "extraction" and curves.get("queries"):
        return line_svg(curves["queries"], curves["fidelity"], "queries", "fidelity",
                        x_range=(0.0, max(curves["queries"])), y_range=(0.5, 1.0))
    if probe == "poisoning" and curves.get("rates"):
        return _poisoning(curves, extra)
    return None


def _poisoning(curves: dict[str, Any], extra: dict[str, Any]) -> str | None:
    bounds = extra.get("intervals") or []
    known = bool(bounds) and all(bounds)
    if "accuracy_drop" in curves:        # accuracy against the share of labels flipped
        clean = float(extra.get("clean_score", 0.0))
        rates = [0.0, *curves["rates"]]
        acc = [clean, *[clean - d for d in curves["accuracy_drop"]]]
        lo = [clean] + [clean - b[1] for b in bounds] if known else None
        hi = [clean] + [clean - b[0] for b in bounds] if known else None
        bottom = max(0.0, math.floor((min(lo or acc) - 0.05) * 10) / 10)
        return line_svg(rates, acc, "share of training labels flipped", "test accuracy",
                        lo=lo, hi=hi, y_range=(bottom, 1.0))
    if "targeted_shift" in curves:
        return line_svg([0.0, *curves["rates"]], [0.0, *curves["targeted_shift"]],
                        "share of the slice's labels flipped", "more rows turned",
                        lo=[0.0, *[b[0] for b in bounds]] if known else None,
                        hi=[0.0, *[b[1] for b in bounds]] if known else None,
                        y_range=(min(0.0, *curves["targeted_shift"]), 1.0))
    if "backdoor_success" in curves:
        return line_svg(curves["rates"], curves["backdoor_success"],
                        "share of training rows poisoned", "backdoor success (net)",
                        lo=[b[0] for b in bounds] if known else None,
                        hi=[b[1] for b in bounds] if known else None,
                        x_range=(0.0, max(curves["rates"])))
    return None
