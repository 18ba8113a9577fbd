"""The spec loader: good specs load; each kind of mistake gets its own located message."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlthreat.catalog import Catalog
from mlthreat.errors import SpecError
from mlthreat.pipeline import load_pipeline, parse_pipeline
from tests.conftest import EXAMPLE_NAMES, EXAMPLES

GOOD = """\
name: tiny
components:
  - id: api
    kind: serving
    exposure: public
    controls: [rate_limit]
  - id: train
    kind: training
flows:
  - {from: train, to: api}
"""


def _problems(path: Path, catalog: Catalog) -> list[str]:
    with pytest.raises(SpecError) as info:
        load_pipeline(path, catalog)
    return [str(p) for p in info.value.problems]


@pytest.mark.parametrize("name", EXAMPLE_NAMES)
def test_examples_load(name: str, catalog: Catalog) -> None:
    pipeline = load_pipeline(EXAMPLES / name / "pipeline.yaml", catalog)
    assert pipeline.spec.components
    assert set(pipeline.component_positions) == {c.id for c in pipeline.spec.components}


def test_good_spec_positions_and_aliases(write_spec: Callable[[str], Path],
                                         catalog: Catalog) -> None:
    pipeline = load_pipeline(write_spec(GOOD), catalog)
    assert pipeline.component_positions == {"api": (3, 5), "train": (7, 5)}
    assert pipeline.flow_positions == [(10, 5)]
    assert pipeline.controls["api"] == frozenset({"rate_limiting"})  # alias resolved
    assert pipeline.warnings == []


def test_feedback_cycles_are_legal(write_spec: Callable[[str], Path], catalog: Catalog) -> None:
    spec = GOOD + "  - {from: api, to: train}\n"
    assert len(load_pipeline(write_spec(spec), catalog).spec.flows) == 2


# Each mistake: spec text, expected location, fragments the message and hint must contain.
MISTAKES = {
    "unknown kind": (GOOD.replace("kind: serving", "kind: servng"), "4:11",
                     ["'servng' is not a valid kind", "did you mean 'serving'"]),
    "unknown exposure": (GOOD.replace("exposure: public", "exposure: everyone"), "5:15",
                         ["'everyone' is not a valid exposure", "public, partner"]),
    "unknown control": (GOOD.replace("rate_limit]", "rate_limting]"), "6:16",
                        ["unknown control 'rate_limting'", "did you mean 'rate_limiting'"]),
    "duplicate id": (GOOD.replace("id: train", "id: api"), "7:9",
                     ["duplicate component id 'api'", "first defined on line 3"]),
    "flow to missing component": (GOOD.replace("to: api}", "to: apj}"), "10:23",
                                  ["names unknown component 'apj'", "did you mean 'api'"]),
    "wrong type": (GOOD.replace("controls: [rate_limit]", "controls: {a: 1}"), "6:15",
                   ["should be a valid list", "not mapping"]),
    "unknown field": (GOOD.replace("    exposure: public", "    exposur: public"), "5:5",
                      ["unknown field 'exposur'", "exposure"]),
    "missing field": (GOOD.replace("    kind: training\n", ""), "7:5",
                      ["missing required field 'kind'"]),
    "empty pipeline": ("name: x\ncomponents: []\n", "2:13", ["the pipeline has no components"]),
    "duplicate key": (GOOD.replace("    exposure: public\n",
                                   "    exposure: public\n    exposure: internal\n"), "6:5",
                      ["key 'exposure' appears twice"]),
    "not yaml": ("name: x\ncomponents:\n  - id: a\n   kind: [unclosed\n", "4:4",
                 ["not valid YAML"]),
    "top-level list": ("- a\n- b\n", "1:1", ["top level is a list, not a mapping"]),
    "self loop": (GOOD + "  - {from: api, to: api}\n", "11:5", ["goes from 'api' to itself"]),
    "bad asset": (GOOD + "assets:\n  modl: {criticality: high}\n", "12:3",
                  ["'modl' is not a valid asset", "did you mean 'model'"]),
}


@pytest.mark.parametrize("mistake", sorted(MISTAKES))
def test_each_mistake_is_located(mistake: str, write_spec: Callable[[str], Path],
                                 catalog: Catalog) -> None:
    text, where, fragments = MISTAKES[mistake]
    path = write_spec(text)
    problems = _problems(path, catalog)
    matching = [p for p in problems if p.startswith(f"{path}:{where}:")]
    assert matching, f"no problem at {where}: {problems}"
    for fragment in fragments:
        assert fragment in matching[0], (fragment, matching[0])


def test_all_problems_reported_at_once(write_spec: Callable[[str], Path],
                                       catalog: Catalog) -> None:
    text = GOOD.replace("kind: serving", "kind: servng").replace("kind: training", "kind: trainer")
    problems = _problems(write_spec(text), catalog)
    assert len(problems) == 2
    assert ":4:" in problems[0] and ":8:" in problems[1]  # sorted by line


def test_empty_file(write_spec: Callable[[str], Path], catalog: Catalog) -> None:
    assert "the file is empty" in _problems(write_spec(""), catalog)[0]


def test_not_utf8(tmp_path: Path, catalog: Catalog) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes("name: x\ndescription: caf\xe9\n".encode("latin-1"))
    problem = _problems(path, catalog)[0]
    assert problem.startswith(f"{path}:2:17: not UTF-8 text (byte 0xe9)")


def test_missing_file_and_folder(tmp_path: Path, catalog: Catalog) -> None:
    assert "file not found" in _problems(tmp_path / "nope.yaml", catalog)[0]
    assert "is a folder" in _problems(tmp_path, catalog)[0]


def test_unconnected_component_is_a_warning(write_spec: Callable[[str], Path],
                                            catalog: Catalog) -> None:
    spec = GOOD + "  - {from: train, to: api}\n".replace("train, to: api", "api, to: train")
    spec = spec.replace("flows:", "  - id: lonely\n    kind: monitoring\nflows:")
    pipeline = load_pipeline(write_spec(spec), catalog)
    assert [w.message for w in pipeline.warnings] == ["component 'lonely' has no flows"]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=300))
def test_arbitrary_text_gives_spec_error_or_pipeline(text: str) -> None:
    from mlthreat.catalog import load_catalog
    try:
        parse_pipeline(text, "fuzz.yaml", load_catalog())
    except SpecError as exc:
        assert exc.problems and all(p.file == "fuzz.yaml" for p in exc.problems)


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_mutated_good_spec_never_crashes(data: st.DataObject) -> None:
    from mlthreat.catalog import load_catalog
    position = data.draw(st.integers(0, len(GOOD)))
    junk = data.draw(st.sampled_from([":", "- ", "{", "]", "\n  ", "&a ", "*a", "!!python/object ",
                                      "<<: *x", "\t", "'", "?"]))
    text = GOOD[:position] + junk + GOOD[position:]
    try:
        parse_pipeline(text, "m.yaml", load_catalog())
    except SpecError as exc:
        assert all(p.line is None or p.line >= 1 for p in exc.problems)
