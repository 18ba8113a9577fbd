"""Small inline SVG charts of measured curves for the HTML report (no script, no external loads):
one series on linear or log axes, with its interval band and a chance diagonal where the curve
has them. What to draw is the probe's choice (`Evidence.curves`); this module knows no probe."""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape
from typing import Any

from mlthreat.results import Curve

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


def svg(curve: Curve) -> str:
    """A measured curve as an inline SVG chart; nothing here knows which probe measured it."""
    return line_svg(curve.x, curve.y, curve.x_label, curve.y_label, lo=curve.low, hi=curve.high,
                    log_x=curve.log_x, log_y=curve.log_y, x_range=curve.x_range,
                    y_range=curve.y_range, diagonal=curve.diagonal)
