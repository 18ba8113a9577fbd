"""Outputs are all-or-nothing: every output path is checked before any work starts, a report set
is written to temporary files and renamed only when all are written, and options that clash are
refused. The names the parser offers are the registries' own."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from mlthreat import assessor, cli
from mlthreat.cli import args as cliargs
from tests.conftest import EXAMPLES

CREDIT = str(EXAMPLES / "credit-scoring" / "pipeline.yaml")


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = cli.main(argv)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def no_work(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Records whether the assessment started (it must not, when an output is refused)."""
    started: list[str] = []
    real = assessor.Assessor.assess

    def assess(self: Any, *args: Any, **kwargs: Any) -> Any:
        started.append("assess")
        return real(self, *args, **kwargs)
    monkeypatch.setattr(assessor.Assessor, "assess", assess)
    return started


def test_an_existing_report_is_refused_before_any_work(tmp_path: Path, no_work: list[str],
                                                       capsys: pytest.CaptureFixture[str]
                                                       ) -> None:
    (tmp_path / "threat-model.sarif").write_text("mine")
    code, _, err = run(["assess", CREDIT, "--out-dir", str(tmp_path), "--budget", "quick"],
                       capsys)
    assert code == 2 and "threat-model.sarif: exists; not overwritten" in err
    assert no_work == []                                     # no scan, no probe ran
    assert sorted(p.name for p in tmp_path.iterdir()) == ["threat-model.sarif"]
    assert (tmp_path / "threat-model.sarif").read_text() == "mine"


def test_o_in_a_missing_folder_is_refused_before_any_work(tmp_path: Path, no_work: list[str],
                                                          capsys: pytest.CaptureFixture[str]
                                                          ) -> None:
    code, _, err = run(["model", CREDIT, "-f", "json", "-o", str(tmp_path / "no" / "x.json")],
                       capsys)
    assert code == 2 and "folder" in err and "does not exist" in err and no_work == []


def test_o_with_out_dir_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                         ) -> None:
    with pytest.raises(SystemExit) as stop:
        cli.main(["model", CREDIT, "-f", "json", "-o", str(tmp_path / "a.json"),
                  "--out-dir", str(tmp_path)])
    assert stop.value.code == 2
    assert "-o/--output and --out-dir do not go together" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_a_failed_write_leaves_no_part_of_the_set(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """The third report cannot be written (a full disk): none of the four appears, and no
    temporary file is left behind."""
    real = os.fdopen
    opened: list[int] = []

    def fdopen(fd: int, *args: Any, **kwargs: Any) -> Any:
        opened.append(fd)
        if len(opened) == 3:
            os.close(fd)
            raise OSError(28, "No space left on device", "threat-model.sarif")
        return real(fd, *args, **kwargs)
    monkeypatch.setattr(os, "fdopen", fdopen)
    code, _, err = run(["model", CREDIT, "--no-scan", "--out-dir", str(tmp_path)], capsys)
    assert code == 2 and "No space left on device" in err and "nothing was written" in err
    assert list(tmp_path.iterdir()) == []


def test_report_file_names_carry_no_absolute_path(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["model", CREDIT, "-f", "json"], capsys)
    assert code == 0 and str(EXAMPLES.parent) not in out
    assert '"spec_file": "examples/credit-scoring/pipeline.yaml"' in out   # relative to the cwd


def test_parser_choices_are_the_registries_names() -> None:
    from mlthreat.probes.registry import GROUPS
    from mlthreat.probes.target import BUDGETS
    from mlthreat.report import FORMATS
    from mlthreat.report.research import FORMATS as RESEARCH
    from mlthreat.report.scan import FORMATS as SCAN
    from mlthreat.scanners import SCANNERS
    assert sorted(cliargs.FORMATS) == sorted(FORMATS)
    assert cliargs.SCAN_FORMATS == SCAN and cliargs.FORMATS_RESEARCH == RESEARCH
    assert tuple(SCANNERS) == cliargs.SCANNERS
    for group in GROUPS:                      # `probe --help` teaches every probe group
        assert f"\n  {group} " in cliargs.PROBE_EPILOG, group
    assert tuple(BUDGETS) == cliargs.BUDGETS


def test_ctrl_c_while_rendering_writes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    from mlthreat.report import FORMATS, Format

    def pressed(assessment: Any) -> str:
        raise KeyboardInterrupt
    monkeypatch.setitem(FORMATS, "sarif", Format("sarif", "sarif", pressed))
    code, _, err = run(["model", CREDIT, "--no-scan", "--out-dir", str(tmp_path)], capsys)
    assert code == 130 and "nothing was written" in err and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []


def test_ctrl_c_during_the_renames_finishes_them_and_says_so(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """A real SIGINT between two renames: the set is completed, never left half renamed, and
    the interrupt is not swallowed (exit 130, saying the reports were written)."""
    import signal
    real = os.replace
    calls: list[str] = []

    def replace(src: Any, dst: Any) -> None:
        calls.append(str(dst))
        if len(calls) == 2:
            os.kill(os.getpid(), signal.SIGINT)
        real(src, dst)
    monkeypatch.setattr(os, "replace", replace)
    code, _, err = run(["model", CREDIT, "--no-scan", "--out-dir", str(tmp_path)], capsys)
    assert code == 130 and "the reports were written first" in " ".join(err.split())
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "threat-model.html", "threat-model.json", "threat-model.md", "threat-model.sarif"]


def test_scan_reports_name_files_relative_to_the_scanned_root(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A folder outside the working directory, given by its absolute path: the SARIF names the
    file as it sits in that folder, not by this machine's path."""
    (tmp_path / "app").mkdir()
    token = "hf_" + "aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3z"      # the shape of a Hugging Face token
    (tmp_path / "app" / "settings.py").write_text(f'TOKEN = "{token}"\n')
    code, out, _ = run(["scan", str(tmp_path), "--only", "secrets", "-f", "sarif"], capsys)
    assert code == 0 and '"uri": "app/settings.py"' in out
    assert str(tmp_path) not in out


def test_a_ctrl_c_python_drops_still_stops_the_run(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """Inside a weak reference's callback (as while a module is imported) Python prints a
    KeyboardInterrupt and drops it: the run still stops at its next step, exits 130, and no
    traceback is printed (seen in a CI run: exit 0 with 'Exception ignored in ... cb')."""
    import gc
    import weakref

    import mlthreat.cli as entry
    from mlthreat.cli import app

    class Thing:
        pass
    real = app.Cli.__init__

    def init(self: Any, args: Any) -> None:
        thing = Thing()
        ref = weakref.ref(thing, lambda ref: entry._ctrl_c(2, None))   # the press lands here
        del thing
        gc.collect()
        assert ref() is None and entry.pressed()       # raised inside, dropped by Python
        real(self, args)
    monkeypatch.setattr(app.Cli, "__init__", init)
    code, _, err = run(["model", CREDIT, "--out-dir", str(tmp_path)], capsys)
    said = " ".join(err.split())
    assert code == 130 and "Traceback" not in err
    assert "interrupted while loading the spec; finished: nothing" in said
    assert list(tmp_path.iterdir()) == []
