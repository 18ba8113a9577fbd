"""Every mistake a user makes is answered with exit 2, naming the file, the row, column or field,
what is wrong and what to do; never a traceback, never "mlthreat failed". One table, run through
the real command line, and a check that every error class maps to a documented exit code."""

from __future__ import annotations

import argparse
import inspect
import json
import pickle
import shutil
from collections.abc import Callable
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from mlthreat import cli, errors
from tests.conftest import EXAMPLES, ROOT

SPEC = """\
name: small
components:
  - id: api
    kind: serving
    exposure: public
    artifacts: {{model: [{model}]}}
    probe:
      data: {data}
      target: label
      positive: 'yes'
      test_size: 40
      queries: 50
"""


def _frame(rows: int = 160) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.normal(size=rows), "b": rng.normal(size=rows),
                          "c": rng.integers(0, 9, size=rows).astype(float),
                          "color": rng.choice(["red", "green", "blue"], size=rows)})
    frame["label"] = np.where(frame["a"] + frame["b"] > 0, "yes", "no")
    return frame


@pytest.fixture(scope="module")
def case(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A pipeline whose probe block works: a scikit-learn Pipeline over named columns."""
    root = tmp_path_factory.mktemp("case")
    frame = _frame()
    frame.to_csv(root / "data.csv", index=False)
    features = frame.drop(columns="label")
    model = make_pipeline(ColumnTransformer([("num", StandardScaler(), ["a", "b", "c"]),
                                             ("cat", OneHotEncoder(), ["color"])]),
                          LogisticRegression()).fit(features, frame["label"] == "yes")
    joblib.dump(model, root / "model.joblib")
    (root / "pipeline.yaml").write_text(SPEC.format(model="model.joblib", data="data.csv"))
    return root


def _copy(case: Path, tmp_path: Path) -> Path:
    shutil.copytree(case, tmp_path / "c")
    return tmp_path / "c"


def _data(edit: Callable[[str], str]) -> Callable[[Path], list[str]]:
    def mutate(root: Path) -> list[str]:
        path = root / "data.csv"
        path.write_text(edit(path.read_text()))
        return ["probe", str(root / "pipeline.yaml"), "--only", "extraction", "--jobs", "1"]
    return mutate


def _cell(row: int, column: str, value: str) -> Callable[[str], str]:
    def edit(text: str) -> str:
        lines = text.splitlines()
        header = lines[0].split(",")
        cells = lines[row].split(",")
        cells[header.index(column)] = value
        lines[row] = ",".join(cells)
        return "\n".join(lines) + "\n"
    return edit


def _model(write: Callable[[Path], None], name: str = "model.joblib"
           ) -> Callable[[Path], list[str]]:
    def mutate(root: Path) -> list[str]:
        write(root / name)
        spec = root / "pipeline.yaml"
        spec.write_text(SPEC.format(model=name, data="data.csv"))
        return ["probe", str(spec), "--only", "extraction", "--jobs", "1"]
    return mutate


def _torch_mlp(path: Path) -> None:
    import torch
    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    torch.save(net.state_dict(), path)


def _truncated_torch(path: Path) -> None:
    _torch_mlp(path)
    path.write_bytes(path.read_bytes()[:300])


def _narrow_model(path: Path) -> None:
    frame = _frame()
    joblib.dump(LogisticRegression().fit(frame[["a", "b"]], frame["label"]), path)


def _answers(root: Path, text: str) -> list[str]:
    (root / "answers.yaml").write_text(text)
    return ["elicit", str(root / "pipeline.yaml"), "-o", str(root / "p.yaml"),
            "--answers", str(root / "answers.yaml")]


def _perception(root: Path, text: str) -> list[str]:
    (root / "p.yaml").write_text(text)
    return ["model", str(root / "pipeline.yaml"), "--perception", str(root / "p.yaml")]


# name -> (make the mistake in a copy of the case and give the command, what the error says)
CASES: dict[str, tuple[Callable[[Path], list[str]], list[str]]] = {
    "non-numeric cell": (_data(_cell(5, "a", "12k")),
                         ["data.csv", "row 5", "column 'a'", "'12k' is not a number"]),
    "missing column": (_data(lambda t: t.replace(",b,", ",bee,", 1)),
                       ["model.joblib", "column", "'b'", "data.csv"]),
    "infinite value": (_data(_cell(7, "b", "inf")),
                       ["data.csv", "row 7", "column 'b'", "infinite or too large"]),
    "huge value": (_data(_cell(9, "c", "1e400")),
                   ["data.csv", "row 9", "column 'c'", "infinite or too large"]),
    "header only": (_data(lambda t: t.splitlines()[0] + "\n"),
                    ["data.csv", "has a header but no rows"]),
    "wrong delimiter": (_data(lambda t: t.replace(",", ";")),
                        ["data.csv", "no column 'label'", "separated by ';'"]),
    "missing values the model cannot take": (
        _data(_cell(3, "a", "")), ["model.joblib", "missing values", "'a'", "data.csv"]),
    "target never positive": (_data(lambda t: t.replace(",yes", ",no")),
                              ["data.csv", "'label'", "never"]),
    "input width mismatch (torch)": (_model(_torch_mlp, "mlp.pt"),
                                     ["mlp.pt", "takes 3 inputs", "6 columns"]),
    "feature names mismatch": (_model(_narrow_model),
                               ["model.joblib", "was fitted on", "'a', 'b'"]),
    "a pickled dict as the model": (_model(lambda p: p.write_bytes(pickle.dumps({"w": [1, 2]}))),
                                    ["model.joblib", "not a model"]),
    "corrupt XGBoost file": (_model(lambda p: p.write_text('{"learner": {"broken": '), "m.json"),
                             ["m.json", "XGBoost cannot load this file"]),
    "corrupt ONNX file": (_model(lambda p: p.write_bytes(b"\x08\x07\x12\x04junk" + b"\xff" * 40),
                                 "m.onnx"), ["m.onnx", "not loaded", "not a valid ONNX"]),
    "truncated PyTorch file": (_model(_truncated_torch, "mlp.pt"), ["mlp.pt"]),
    "model file missing": (_model(lambda p: None, "gone.joblib"),
                           ["gone.joblib", "not found", "artifacts.model"]),
    "unknown component in answers": (
        lambda r: _answers(r, "respondent: x\ncomponents:\n  apii: {threats: '1'}\n"),
        ["answers.yaml:3:3", "unknown component 'apii'", "did you mean 'api'"]),
    "unknown question in answers": (
        lambda r: _answers(r, "respondent: x\ncomponents:\n  api: {threat: '1'}\n"),
        ["answers.yaml:3:9", "unknown question 'threat'", "did you mean 'threats'"]),
    "unknown key in answers": (
        lambda r: _answers(r, "respondant: x\ncomponents: {}\n"),
        ["answers.yaml:1:1", "unknown key 'respondant'", "did you mean 'respondent'"]),
    "unknown component in perception": (
        lambda r: _perception(r, "respondent: x\nviews:\n  - component: apii\n"),
        ["p.yaml:3", "unknown component 'apii'"]),
    "unknown key in perception": (
        lambda r: _perception(r, "respondent: x\nviews:\n  - component: api\n    thraets: []\n"),
        ["p.yaml:4", "thraets"]),
    "scan path missing": (lambda r: ["scan", str(r / "nowhere")], ["nowhere", "not found"]),
    "scan path with no files": (lambda r: (r / "empty").mkdir() or ["scan", str(r / "empty")],
                                ["empty", "holds no files"]),
    "spec missing": (lambda r: ["model", str(r / "nope.yaml")], ["nope.yaml", "file not found"]),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_every_user_mistake_exits_2_and_says_where_and_what(
        name: str, case: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    mistake, expected = CASES[name]
    argv = mistake(_copy(case, tmp_path))
    code = cli.main(argv)
    err = " ".join(capsys.readouterr().err.split())
    assert code == 2, err
    assert "Traceback" not in err and "mlthreat failed" not in err
    for text in expected:
        assert text in err, f"{name}: {text!r} not in {err!r}"


def test_the_case_itself_works(case: Path, tmp_path: Path,
                               capsys: pytest.CaptureFixture[str]) -> None:
    """The table's mistakes are the only thing wrong: the untouched case probes fine."""
    root = _copy(case, tmp_path)
    code = cli.main(["probe", str(root / "pipeline.yaml"), "--only", "extraction", "--jobs",
                     "1", "--budget", "quick", "-f", "json"])
    out = capsys.readouterr().out
    assert code == 0 and json.loads(out)[0]["evidence"][0]["metric"] == "fidelity"


@pytest.mark.parametrize("value", ["0", "-1", "two"])
def test_jobs_must_be_a_positive_count(value: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stop:
        cli.main(["probe", str(EXAMPLES / "credit-scoring" / "pipeline.yaml"), "--jobs", value])
    assert stop.value.code == 2


def test_every_error_class_has_a_documented_exit_code() -> None:
    classes = [c for _, c in inspect.getmembers(errors, inspect.isclass)
               if issubclass(c, errors.MlthreatError)]
    assert len(classes) >= 10
    documented = (ROOT / "docs" / "reports.md").read_text()
    for c in classes:
        assert c.exit_code in (2, 3, 130), c
        assert c.__name__ in errors.__doc__, f"{c.__name__} missing from the tree in errors.py"
        assert f"`{c.__name__}`" in documented, f"{c.__name__} missing from docs/reports.md"
    assert errors.InputError.exit_code == 2 and errors.ToolError.exit_code == 3
    assert all(issubclass(c, errors.InputError) == (c.exit_code == 2) for c in classes)


def test_an_error_raised_while_ctrl_c_unwound_a_lock_is_the_interrupt() -> None:
    """CI saw `probe --scheduler local:2` answer Ctrl-C with "mlthreat failed: RuntimeError:
    cannot release un-acquired lock": the interrupt landed inside a lock's `with`, whose exit
    then failed. That error's context is the interrupt; an ordinary error is not one."""
    import threading

    from mlthreat.cli.app import Cli, _failed
    from mlthreat.errors import EXIT_INTERRUPTED, EXIT_TOOL, from_interrupt
    lock = threading.Lock()
    with pytest.raises(RuntimeError) as caught, lock:
        lock.release()            # as a wait cut short leaves it: not held on the way out
        raise KeyboardInterrupt
    assert isinstance(caught.value.__context__, KeyboardInterrupt)
    assert from_interrupt(caught.value) and from_interrupt(KeyboardInterrupt())
    assert not from_interrupt(RuntimeError("cannot release un-acquired lock"))
    cli = Cli(argparse.Namespace(debug=False))
    assert _failed(cli, caught.value) == EXIT_INTERRUPTED
    assert _failed(cli, RuntimeError("a real bug")) == EXIT_TOOL
