"""axe-core (4.14.1, vendored in tests/web/vendor) on the board and on every static HTML report,
at 1280 and at 375 pixels: no serious or critical violation, and nothing wider than the screen."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from mlthreat.catalog import Catalog
from mlthreat.cli import main
from mlthreat.web.app import Board
from mlthreat.web.serve import running
from tests.conftest import EXAMPLES

AXE = (Path(__file__).parent / "vendor" / "axe.min.js").read_text()
RUN = """async () => {
  const r = await axe.run(document, {resultTypes: ['violations']});
  return r.violations.filter(v => ['serious', 'critical'].includes(v.impact))
    .map(v => v.id + ' (' + v.impact + '): ' + v.nodes.slice(0, 3).map(n => n.target.join(' ')).join(', '));
}"""
CREDIT = EXAMPLES / "credit-scoring"


def violations(page: Any) -> list[str]:
    page.add_script_tag(content=AXE)
    return list(page.evaluate(RUN))


@pytest.fixture(scope="module")
def reports(tmp_path_factory: Any) -> dict[str, Path]:
    """Every kind of HTML report mlthreat writes, made through the command line."""
    out = tmp_path_factory.mktemp("reports")
    people = sorted((CREDIT / "perceptions").glob("*.yaml"))[:3]
    spec = str(CREDIT / "pipeline.yaml")
    files = {name: out / f"{name}.html" for name in
             ("threat-model", "team", "codes", "scan", "eu-ai-act")}
    commands = {
        "threat-model": ["model", spec, *[x for p in people for x in ("--perception", str(p))]],
        "team": ["team", spec, *map(str, people)],
        "codes": ["codes", str(EXAMPLES / "interview-codes" / "codes.csv")],
        "scan": ["scan", str(CREDIT)],
        "eu-ai-act": ["model", spec, "--view", "eu-ai-act"],
    }
    for name, args in commands.items():
        assert main([*args, "-f", "html", "-o", str(files[name])]) in (0, 1), name
    return files


@pytest.mark.parametrize("width", [1280, 375])
@pytest.mark.parametrize("name", ["threat-model", "team", "codes", "scan", "eu-ai-act"])
def test_every_report_passes_axe_and_fits_the_screen(browser: Any, reports: dict[str, Path],
                                                     name: str, width: int) -> None:
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    page.goto(reports[name].as_uri())
    if name == "threat-model":
        page.wait_for_selector("#pipeline-diagram[data-rendered]", state="attached",
                               timeout=30000)
    assert violations(page) == []
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    if name == "threat-model":            # the contents lead to every section with a heading
        links = page.locator("nav.toc a").evaluate_all("els => els.map(a => a.hash.slice(1))")
        sections = page.locator("main section[id]").evaluate_all(
            "els => els.filter(s => s.querySelector('h2')).map(s => s.id)")
        assert links == sections and {"diagram", "lead", "findings-aml"} <= set(links)
    context.close()


@pytest.mark.parametrize("width", [1280, 375])
def test_the_board_passes_axe(browser: Any, tmp_path: Path, catalog: Catalog,
                              width: int) -> None:
    shutil.copy(CREDIT / "pipeline.yaml", tmp_path / "pipeline.yaml")
    # the page's own CSP forbids the injected checker; its CSP is tested in test_board_api
    context = browser.new_context(viewport={"width": width, "height": 900}, bypass_csp=True)
    page = context.new_page()
    with running(Board(tmp_path, tmp_path / "pipeline.yaml", catalog)) as served:
        page.goto(served.url + "&as=Alice")              # workshop mode: every part shown
        page.wait_for_selector("body[data-dirty='0']", state="attached", timeout=15000)
        page.locator('.node[data-id="scoring_api"]').click()
        page.click("#team-toggle")
        page.wait_for_selector("#team-body p", state="attached")
        assert violations(page) == []
    context.close()
