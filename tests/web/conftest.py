"""The board's browser tests: Debian's chromium driven by Playwright (never a downloaded
browser; `make test` installs chromium). Servers run in a thread on 127.0.0.1, a free port."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mlthreat.web.serve import Served

# What ../shared/DESIGN.md expects of the reference case (credit scoring), where the attacker acts
DESIGN_EXPECTED = [("aml-poisoning-label-flip", "corrections"),
                   ("aml-evasion-blackbox", "scoring_api"),
                   ("aml-model-extraction", "scoring_api"),
                   ("aml-membership-inference", "scoring_api"),
                   ("cls-unauthenticated-api", "scoring_api"),
                   ("cls-data-store-breach", "loan_db"),
                   ("cls-unsafe-deserialization", "scoring_api")]

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium "
                    "(apt-get install chromium chromium-driver)")
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
        yield b
        b.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1600, "height": 1000})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    # the browser logs every 4xx answer; 409 (replace?) and 422 (problems) are the API's own
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" and not re.search(
        r"status of (409|422) ", m.text) else None)
    yield page
    context.close()
    assert errors == []          # no script error, no CSP violation, no refused request


def shot(page: Any, name: str) -> None:
    """docs/board.md's screenshots: taken when MLTHREAT_SCREENSHOTS names a folder."""
    folder = os.environ.get("MLTHREAT_SCREENSHOTS")
    if folder:
        page.screenshot(path=str(Path(folder) / f"{name}.png"))


def settle(page: Any) -> None:
    """Wait until the findings shown are those of the spec as drawn, and its layout is done."""
    page.wait_for_selector("body[data-dirty='0'][data-laid-out='1']", state="attached",
                           timeout=15000)


def open_board(page: Any, served: Served) -> None:
    page.goto(served.url)
    page.wait_for_selector("body[data-ready]")
    settle(page)


