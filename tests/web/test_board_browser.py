"""The board in a real browser: Debian's chromium driven by Playwright (never a downloaded
browser; `make test` installs chromium). The server runs in a thread on 127.0.0.1, a free port."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlthreat.assessor import Assessor
from mlthreat.catalog import Catalog
from mlthreat.cli import main
from mlthreat.web.app import Board
from mlthreat.web.serve import running
from tests.conftest import EXAMPLES
from tests.web.conftest import DESIGN_EXPECTED, open_board, settle, shot


def drag_flow(page: Any, source: str, target: str) -> None:
    settle(page)                # a render replaces the nodes: measure between renders
    handle = page.locator(f'.node[data-id="{source}"] .handle').bounding_box()
    box = page.locator(f'.node[data-id="{target}"] rect.box').bounding_box()
    page.mouse.move(handle["x"] + handle["width"] / 2, handle["y"] + handle["height"] / 2)
    page.mouse.down()
    page.mouse.move(box["x"] + 30, box["y"] + 20, steps=6)
    page.mouse.up()


def shown(page: Any) -> set[tuple[str, str]]:
    """(threat, component) of every finding listed, read from the page."""
    if page.locator("#show-all").count():       # the list starts with the worst 60
        page.click("#show-all")
    ids = page.locator("#finding-list li.finding").evaluate_all("els => els.map(e => e.dataset.id)")
    out = set()
    for fid in ids:
        threat, _, rest = fid.partition("@")
        out.add((threat, rest.split(">")[0].split("@")[0]))
    return out


def test_draw_the_reference_pipeline_from_an_empty_board(page: Any, tmp_path: Path,
                                                        catalog: Catalog) -> None:
    board = Board(tmp_path, tmp_path / "drawn.yaml", catalog)
    with running(board) as served:
        open_board(page, served)
        assert page.locator(".node").count() == 0
        plan = [("feedback", "corrections", "public"), ("data_store", "loan_db", None),
                ("training", "train_job", None), ("serving", "scoring_api", "public"),
                ("client", "portal", "public")]
        for kind, name, exposure in plan:
            if kind == "client":         # by keyboard: focus the palette button, press Enter
                page.locator('#kinds button[data-kind="client"]').focus()
                page.keyboard.press("Enter")
            else:
                page.click(f'#kinds button[data-kind="{kind}"]')
            page.fill("#f-id", name)
            page.keyboard.press("Tab")               # change event: the rename is applied
            if exposure:
                page.select_option("#f-exposure", exposure)
        page.locator('.node[data-id="loan_db"]').click()
        page.check("#f-personal_data")
        page.locator('.node[data-id="scoring_api"]').click()
        page.fill("#f-model", "models/credit_model.joblib")
        page.keyboard.press("Tab")
        for source, target in [("corrections", "loan_db"), ("loan_db", "train_job"),
                               ("train_job", "scoring_api"), ("scoring_api", "portal")]:
            drag_flow(page, source, target)
        page.locator('.node[data-id="portal"]').focus()       # a flow by keyboard
        page.select_option("#f-flow-to", "scoring_api")
        page.click("#f-add-flow")
        settle(page)
        assert page.locator(".edge").count() == 5

        # the reference case's threats (../shared/DESIGN.md) appear where the attacker acts
        found = shown(page)
        for expected in DESIGN_EXPECTED:
            assert expected in found, expected
        # nothing checks the data on its way to training and nothing watches the model
        assert "corrections → loan_db → train_job (open)" in page.locator(
            "#integrity-list").inner_text()
        shot(page, "board-drawn")
        # badges: the two families' counts on the node equal the findings listed there
        api_node = page.locator('.node[data-id="scoring_api"]')
        for family in ("aml", "classical"):
            badge = int(api_node.locator(f'.badge[data-family="{family}"] text').text_content())
            assert badge == sum(1 for f in page.locator("#finding-list li.finding").evaluate_all(
                "els => els.map(e => e.dataset.id)") if f.split("@")[1].startswith("scoring_api")
                and f.startswith("aml-" if family == "aml" else "cls-"))

        # undo and redo, from the keyboard, with the canvas focused
        page.locator('.node[data-id="portal"]').focus()
        page.keyboard.press("Control+z")
        settle(page)
        assert page.locator(".edge").count() == 4
        page.keyboard.press("Control+Shift+z")
        settle(page)
        assert page.locator(".edge").count() == 5

        # a control added in the panel rules its threat out, live
        page.locator('.node[data-id="scoring_api"]').click()
        page.check('#f-controls input[value="authentication"]')
        settle(page)
        assert ("cls-unauthenticated-api", "scoring_api") not in shown(page)

        page.keyboard.press("Control+s")
        page.wait_for_selector("body[data-saved]")
        saved = tmp_path / "drawn.yaml"
        assert main(["validate", str(saved)]) == 0
        data = yaml.safe_load(saved.read_text())
        assert [c["id"] for c in data["components"]] == [n for _, n, _ in plan]
        assert {(f["from"], f["to"]) for f in data["flows"]} == {
            ("corrections", "loan_db"), ("loan_db", "train_job"), ("train_job", "scoring_api"),
            ("scoring_api", "portal"), ("portal", "scoring_api")}
        # the browser shows exactly what the Assessor finds in the saved file
        direct = Assessor(catalog, scan=False).assess(saved)
        assert shown(page) == {(f.threat_id, f.component) for f in direct.findings}

        page.reload()
        page.wait_for_selector("body[data-ready]")
        settle(page)
        assert page.locator(".node").count() == 5 and page.locator(".edge").count() == 5


def test_hovering_a_finding_lights_its_attack_path(page: Any, tmp_path: Path,
                                                  catalog: Catalog) -> None:
    shutil.copy(EXAMPLES / "credit-scoring" / "pipeline.yaml", tmp_path / "pipeline.yaml")
    direct = Assessor(catalog, scan=False).assess(tmp_path / "pipeline.yaml")
    longest = max(direct.findings, key=lambda f: len(f.path))
    assert len(longest.path) >= 3
    with running(Board(tmp_path, tmp_path / "pipeline.yaml", catalog)) as served:
        open_board(page, served)
        page.click("#show-all")                     # 89 findings: the list shows 60 first
        page.locator(f'#finding-list li.finding[data-id="{longest.id}"]').hover()
        shot(page, "board-path")
        lit = page.locator(".node.onpath").evaluate_all("els => els.map(e => e.dataset.id)")
        assert sorted(lit) == sorted(set(longest.path))
        steps = page.locator(".edge.onpath").evaluate_all(
            "els => els.map(e => [e.dataset.from, e.dataset.to])")
        assert sorted(map(tuple, steps)) == sorted(set(zip(longest.path, longest.path[1:],
                                                           strict=False)))


def test_problems_are_shown_at_their_component_and_nothing_is_saved_unasked(
        page: Any, tmp_path: Path, catalog: Catalog) -> None:
    spec = tmp_path / "pipeline.yaml"
    shutil.copy(EXAMPLES / "credit-scoring" / "pipeline.yaml", spec)
    before = spec.read_bytes()
    with running(Board(tmp_path, spec, catalog)) as served:
        open_board(page, served)
        assert page.locator(".node.problem").count() == 0
        page.click('#kinds button[data-kind="monitoring"]')   # a component with no flow
        settle(page)
        assert page.locator(".node.problem").evaluate_all(
            "els => els.map(e => e.dataset.id)") == ["monitoring_1"]
        assert "has no flows" in page.locator("#panel .problems").inner_text()
        page.fill("#f-id", "scoring_api")             # taken: refused in the page
        page.keyboard.press("Tab")
        assert "taken" in page.locator("#status").inner_text()
        page.fill("#f-id", "new monitor")             # not an id
        page.keyboard.press("Tab")
        assert "letter" in page.locator("#status").inner_text()
        assert page.locator('.node[data-id="monitoring_1"]').count() == 1
        page.locator('.node[data-id="corrections"]').click()
        page.keyboard.press("Delete")                 # its flows go with it
        settle(page)
        assert page.locator('.node[data-id="corrections"]').count() == 0
        assert page.locator('.edge[data-from="corrections"], .edge[data-to="corrections"]'
                            ).count() == 0
    assert spec.read_bytes() == before                # nothing saved without Save


def _kappa(x: list[int], y: list[int]) -> float:
    """Cohen's kappa by its closed form, (p_o - p_e) / (1 - p_e)."""
    n = len(x)
    po = sum(a == b for a, b in zip(x, y, strict=True)) / n
    px, py = sum(x) / n, sum(y) / n
    pe = px * py + (1 - px) * (1 - py)
    return (po - pe) / (1 - pe)


def test_workshop_two_participants_and_the_team_view(browser: Any, tmp_path: Path,
                                                     catalog: Catalog) -> None:
    spec = tmp_path / "pipeline.yaml"
    shutil.copy(EXAMPLES / "credit-scoring" / "pipeline.yaml", spec)
    chosen = {"Alice": [0, 1, 5], "Bob": [0, 3]}      # which of the listed threats each ticks
    with running(Board(tmp_path, spec, catalog)) as served:
        ticked: dict[str, list[str]] = {}
        listed: list[str] = []
        for who, picks in chosen.items():
            context = browser.new_context(viewport={"width": 1600, "height": 1000})
            page = context.new_page()
            page.goto(served.url + f"&as={who}")
            page.wait_for_selector("body[data-ready]")
            settle(page)
            page.locator('.node[data-id="scoring_api"]').click()
            boxes = page.locator("#v-threats input")
            listed = boxes.evaluate_all("els => els.map(e => e.value)")
            for i in picks:
                boxes.nth(i).check()
            ticked[who] = [listed[i] for i in picks]
            page.select_option("#v-gain", "no")
            if who == "Alice":
                shot(page, "board-participant")
            page.click("#v-save")
            page.wait_for_selector('body[data-view-saved="scoring_api"]')
            assert page.locator('.node.answered[data-id="scoring_api"]').count() == 1
            context.close()
        # the files are perception files `mlthreat model --perception` reads
        alice = yaml.safe_load((tmp_path / "perceptions" / "alice.yaml").read_text())
        assert alice["respondent"] == "Alice" and alice["views"][0]["threats"] == ticked["Alice"]
        assert alice["views"][0]["attacker_gain"] is False
        assert main(["model", str(spec), "--perception",
                     str(tmp_path / "perceptions" / "alice.yaml")]) in (0, 1)

        context = browser.new_context(viewport={"width": 1600, "height": 1000},
                                      accept_downloads=True)
        facilitator = context.new_page()
        facilitator.goto(served.url)
        facilitator.wait_for_selector("body[data-ready]")
        facilitator.click("#team-toggle")
        facilitator.wait_for_selector('body[data-team="2"]', state="attached")
        shot(facilitator, "board-team")
        shown_kappa = float(facilitator.locator("#team-pairs td.kappa").inner_text())
        gaps = facilitator.locator("#team-gaps").inner_text()
        exported = {}
        for fmt in ("team", "html"):                  # the reports, from the board
            facilitator.select_option("#report-format", fmt)
            with facilitator.expect_download() as got:
                facilitator.click("#export-report")
            exported[got.value.suggested_filename] = Path(got.value.path()).read_text()
        context.close()
    assert "Alice" in exported["team-view.html"] and "Cohen" in exported["team-view.html"]
    assert "Perception gaps: Alice" in exported["threat-model.html"]
    assert "Perception gaps: Bob" in exported["threat-model.html"]
    # both answered only scoring_api: the items are the threats listed there
    x = [int(t in ticked["Alice"]) for t in listed]
    y = [int(t in ticked["Bob"]) for t in listed]
    assert shown_kappa == pytest.approx(_kappa(x, y), abs=5e-4)
    assert "Alice (1/14 components)" in gaps and "attacker doubt" in gaps


def test_evidence_of_an_earlier_assess_is_shown_where_it_was_measured(page: Any, tmp_path: Path,
                                                                     catalog: Catalog) -> None:
    from mlthreat.web.app import read_evidence
    shutil.copytree(EXAMPLES / "credit-scoring", tmp_path / "cs")
    spec = tmp_path / "cs" / "pipeline.yaml"
    report = tmp_path / "cs" / "tm.json"
    assert main(["model", str(spec), "-f", "json", "-o", str(report)]) in (0, 1)
    evidence = read_evidence(report)
    per = {c: sum(e["component"] == c for e in evidence) for c in {e["component"] for e in evidence}}
    board = Board(tmp_path / "cs", spec, catalog, evidence=evidence, evidence_file="tm.json")
    with running(board) as served:
        open_board(page, served)
        marked = page.locator(".node rect.evidence").evaluate_all(
            "els => els.map(r => r.parentNode.dataset.id)")
        assert sorted(marked) == sorted(per)
        component = max(per, key=lambda c: per[c])
        page.locator(f'.node[data-id="{component}"]').click()
        assert page.locator("#panel .evidence-list li").count() == per[component]


def _drawable(spec: dict[str, Any]) -> dict[str, Any]:
    """The example as the board draws it: without probe blocks, notes and endpoints (for
    `assess`, not drawn), assets without their notes."""
    out = {k: v for k, v in spec.items() if k not in ("version",)}
    out["assets"] = {a: {"criticality": v["criticality"]} for a, v in spec["assets"].items()}
    comps = []
    for c in spec["components"]:
        c = {k: v for k, v in c.items() if k not in ("probe", "notes")
             and (k, v) != ("exposure", "internal")}                     # the default, left out
        arts = {k: [v] if k in ("code", "data") and isinstance(v, str) else v   # lists, as drawn
                for k, v in c.get("artifacts", {}).items() if k != "endpoint"}
        if arts:
            c["artifacts"] = arts
        else:
            c.pop("artifacts", None)
        comps.append(c)
    out["components"] = comps
    out["flows"] = [{"from": f["from"], "to": f["to"]} for f in spec["flows"]]
    return out


def test_draw_the_whole_credit_scoring_case_and_get_its_threat_model(page: Any, tmp_path: Path,
                                                                     catalog: Catalog) -> None:
    example = yaml.safe_load((EXAMPLES / "credit-scoring" / "pipeline.yaml").read_text())
    want = _drawable(example)
    with running(Board(tmp_path, tmp_path / "credit.yaml", catalog)) as served:
        open_board(page, served)
        page.fill("#pipeline-name", want["name"])
        page.keyboard.press("Tab")
        page.fill("#p-description", want["description"])
        page.keyboard.press("Tab")
        page.fill("#p-owner", want["owner"])
        page.keyboard.press("Tab")
        for key in ("about", "decides"):
            page.fill(f"#p-{key}", want["domain"][key])
            page.keyboard.press("Tab")
        for asset, info in want["assets"].items():
            page.select_option(f'#p-assets select[data-asset="{asset}"]', info["criticality"])
        for control in want["controls"]:
            page.check(f'#p-controls input[value="{control}"]')
        for c in want["components"]:
            page.click(f'#kinds button[data-kind="{c["kind"]}"]')
            page.fill("#f-id", c["id"])
            page.keyboard.press("Tab")
            for key in ("name", "owner"):
                if key in c:
                    page.fill(f"#f-{key}", c[key])
                    page.keyboard.press("Tab")
            if c.get("exposure", "internal") != "internal":
                page.select_option("#f-exposure", c["exposure"])
            for flag in ("personal_data", "third_party"):
                if c.get(flag):
                    page.check(f"#f-{flag}")
            for key, value in c.get("artifacts", {}).items():
                page.fill(f"#f-{key}", value if isinstance(value, str) else ", ".join(value))
                page.keyboard.press("Tab")
            for control in c.get("controls", []):
                page.check(f'#f-controls input[value="{control}"]')
        for n, f in enumerate(want["flows"]):
            if n % 5 == 0:                             # some with the mouse
                drag_flow(page, f["from"], f["to"])
            else:                                      # the rest from the keyboard
                page.locator(f'.node[data-id="{f["from"]}"]').focus()
                page.select_option("#f-flow-to", f["to"])
                page.click("#f-add-flow")
        settle(page)
        page.keyboard.press("Control+s")
        page.wait_for_selector("body[data-saved]")
        saved = yaml.safe_load((tmp_path / "credit.yaml").read_text())
        drawn = shown(page)
    for got, exp in zip(saved["components"], want["components"], strict=True):
        assert got == exp, (got, exp)
    assert {k: v for k, v in saved.items() if k != "flows"} == \
        {k: v for k, v in want.items() if k != "flows"}
    assert sorted(map(str, saved["flows"])) == sorted(map(str, want["flows"]))
    # the findings on the board are those of the example itself, probes aside
    spec = tmp_path / "expected.yaml"
    spec.write_text(yaml.safe_dump(want, sort_keys=False))
    expected = Assessor(catalog, scan=False).assess(spec)
    assert drawn == {(f.threat_id, f.component) for f in expected.findings}
    # ... and among them what ../shared/DESIGN.md expects of the reference case
    assert set(DESIGN_EXPECTED) <= drawn


def test_replacing_a_file_asks_and_no_means_no(page: Any, tmp_path: Path, catalog: Catalog) -> None:
    broken = tmp_path / "pipeline.yaml"
    broken.write_text("name: x\ncomponents: [\n")
    answers: list[bool] = [False, True]
    asked: list[str] = []

    def answer(dialog: Any) -> None:
        asked.append(dialog.message)
        dialog.accept() if answers.pop(0) else dialog.dismiss()
    page.on("dialog", answer)
    with running(Board(tmp_path, broken, catalog)) as served:
        open_board(page, served)
        assert "asks first" in page.locator("#status").inner_text()
        page.click('#kinds button[data-kind="data_source"]')
        settle(page)
        page.click("#save")
        page.wait_for_selector("#status:has-text('not saved')")
        assert broken.read_text() == "name: x\ncomponents: [\n"
        page.click("#save")
        page.wait_for_selector("body[data-saved]")
    assert len(asked) == 2 and "cannot be read" in asked[0]
    assert yaml.safe_load(broken.read_text())["components"] == [{"id": "data_source_1",
                                                                 "kind": "data_source"}]
