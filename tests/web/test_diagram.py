"""The one diagram renderer (report/static/diagram.js with ELK) as drawn in a real browser, in
the HTML report and on the board: checked from the rendered geometry, not from the markup."""

from __future__ import annotations

import io
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from benchmarks.analysis_scale import synthetic
from PIL import Image

from mlthreat.analysis import assess
from mlthreat.catalog import Catalog
from mlthreat.pipeline import load_pipeline
from mlthreat.report import html
from mlthreat.web.app import Board
from mlthreat.web.serve import running
from tests.conftest import EXAMPLES
from tests.web.conftest import open_board

GEOMETRY = """svg => {
  const nodes = [...svg.querySelectorAll('.node')].map(g => {
    const t = /translate\\(([-\\d.]+),\\s*([-\\d.]+)\\)/.exec(g.getAttribute('transform'));
    const rect = g.querySelector('rect.box');
    const box = rect.getBoundingClientRect();
    return {id: g.dataset.id, x: +t[1], y: +t[2], w: +rect.getAttribute('width'),
            h: +rect.getAttribute('height'), box: [box.left, box.top, box.right, box.bottom],
            texts: [...g.querySelectorAll('text, .badge')]     // a badge as one piece
              .filter(x => x.textContent && !(x.tagName === 'text' && x.closest('.badge')))
              .map(x => { const b = x.getBoundingClientRect();
                          return [b.left, b.top, b.right, b.bottom]; })};
  });
  const edges = [...svg.querySelectorAll('.edge')].map(g => ({
    from: g.dataset.from, to: g.dataset.to, d: g.querySelector('path.line').getAttribute('d')}));
  return {nodes, edges};
}"""


def _overlap(a: list[float], b: list[float], slack: float = 0.0) -> bool:
    return (a[0] < b[2] - slack and b[0] < a[2] - slack and a[1] < b[3] - slack
            and b[1] < a[3] - slack)


def _segments(d: str) -> list[tuple[float, float, float, float]] | None:
    """An ELK route's straight segments; None for a curve."""
    if "C" in d:
        return None
    points = [(float(x), float(y)) for x, y in re.findall(r"[ML]([-\d.]+),([-\d.]+)", d)]
    return [(*p, *q) for p, q in zip(points, points[1:], strict=False)]


def check_legible(geo: dict[str, Any], components: int, flows: int) -> None:
    nodes = geo["nodes"]
    assert len(nodes) == components and len(geo["edges"]) == flows
    for i, a in enumerate(nodes):
        for t in a["texts"]:                       # every label inside its own box
            assert a["box"][0] - 0.5 <= t[0] and t[2] <= a["box"][2] + 0.5, (a["id"], t)
            assert a["box"][1] - 0.5 <= t[1] and t[3] <= a["box"][3] + 0.5, (a["id"], t)
        for j, t in enumerate(a["texts"]):          # name, kind and badges do not cover each other
            for u in a["texts"][j + 1:]:
                assert not _overlap(t, u, slack=0.5), (a["id"], t, u)
        for b in nodes[i + 1:]:                    # no two boxes (so no two labels) overlap
            assert not _overlap(a["box"], b["box"]), (a["id"], b["id"])
    by_id = {n["id"]: n for n in nodes}
    for e in geo["edges"]:                         # no flow runs through another component
        segments = _segments(e["d"])
        assert segments is not None, e
        for x1, y1, x2, y2 in segments:
            assert x1 == pytest.approx(x2, abs=0.2) or y1 == pytest.approx(y2, abs=0.2)  # orthogonal
            seg = [min(x1, x2), min(y1, y2), max(x1, x2), max(y1, y2)]
            for n in nodes:
                if n["id"] in (e["from"], e["to"]):
                    continue
                inner = [n["x"] + 1, n["y"] + 1, n["x"] + n["w"] - 1, n["y"] + n["h"] - 1]
                hit = seg[0] <= inner[2] and inner[0] <= seg[2] and seg[1] <= inner[3] \
                    and inner[1] <= seg[3]
                assert not hit, (e["from"], e["to"], n["id"])
        assert by_id[e["from"]] and by_id[e["to"]]


def _report_page(browser: Any, path: Path) -> Any:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(path.as_uri())
    page.wait_for_selector("#pipeline-diagram[data-rendered]", state="attached", timeout=30000)
    assert errors == []
    return page


@pytest.mark.parametrize("size", [None, 50])
def test_the_report_draws_every_component_legibly(browser: Any, tmp_path: Path,
                                                  catalog: Catalog, size: int | None) -> None:
    if size is None:
        spec = EXAMPLES / "credit-scoring" / "pipeline.yaml"
    else:
        spec = tmp_path / "big.yaml"
        spec.write_text(synthetic(size))
    a = assess(load_pipeline(spec, catalog), catalog)
    report = tmp_path / "tm.html"
    report.write_text(html.render(a))
    page = _report_page(browser, report)
    geo = page.locator("#pipeline-diagram").evaluate(GEOMETRY)
    check_legible(geo, len(a.components), len(a.flows))
    back = {(e["from"], e["to"]) for e in geo["edges"]} & {
        (e["from"], e["to"]) for e in page.locator("#pipeline-diagram .edge.back").evaluate_all(
            "els => els.map(g => ({from: g.dataset.from, to: g.dataset.to}))")}
    if size is None:
        assert ("scoring_api", "loan_db") in back          # the feedback flow, dashed
    page.context.close()


def test_the_board_draws_fifty_components_legibly_and_exports(browser: Any,
                                                             tmp_path: Path,
                                                             catalog: Catalog) -> None:
    spec = tmp_path / "big.yaml"
    spec.write_text(synthetic(50))
    pipeline = load_pipeline(spec, catalog)
    context = browser.new_context(viewport={"width": 1600, "height": 1000}, accept_downloads=True)
    page = context.new_page()
    with running(Board(tmp_path, spec, catalog)) as served:
        open_board(page, served)
        geo = page.locator("#canvas").evaluate(GEOMETRY)
        check_legible(geo, len(pipeline.spec.components), len(pipeline.spec.flows))
        with page.expect_download() as got:
            page.click("#export-svg")
        svg = Path(got.value.path()).read_text()
        assert svg.startswith("<svg") and svg.count('class="node component') == 50
        assert 'class="handle"' not in svg                         # the drawing, not the controls
        with page.expect_download() as got:
            page.click("#export-png")
        png = Image.open(io.BytesIO(Path(got.value.path()).read_bytes()))
        width = float(page.locator("#canvas").get_attribute("width"))
        assert png.format == "PNG" and png.width == pytest.approx(2 * width, abs=2)
    context.close()


def test_the_board_and_the_report_draw_with_the_same_renderer(browser: Any,
                                                              tmp_path: Path,
                                                              catalog: Catalog) -> None:
    shutil.copy(EXAMPLES / "credit-scoring" / "pipeline.yaml", tmp_path / "pipeline.yaml")
    a = assess(load_pipeline(tmp_path / "pipeline.yaml", catalog), catalog)
    report = tmp_path / "tm.html"
    report.write_text(html.render(a))
    page = _report_page(browser, report)
    in_report = page.locator("#pipeline-diagram").evaluate(GEOMETRY)
    page.context.close()
    context = browser.new_context(viewport={"width": 1600, "height": 1000})
    board_page = context.new_page()
    with running(Board(tmp_path, tmp_path / "pipeline.yaml", catalog)) as served:
        open_board(board_page, served)
        on_board = board_page.locator("#canvas").evaluate(GEOMETRY)
    context.close()
    # same layout (drawing units) and same routes: one renderer, one layout
    assert {n["id"]: (n["x"], n["y"]) for n in in_report["nodes"]} == \
        {n["id"]: (n["x"], n["y"]) for n in on_board["nodes"]}
    assert sorted((e["from"], e["to"], e["d"]) for e in in_report["edges"]) == \
        sorted((e["from"], e["to"], e["d"]) for e in on_board["edges"])
