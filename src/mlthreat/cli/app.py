"""What every command shares: the parsed arguments, the two consoles (results to stdout, progress
and messages to stderr), output files that are checked before any work and written whole or not
at all, and the one place where errors become exit codes."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from importlib import import_module
from pathlib import Path
from typing import TYPE_CHECKING

from mlthreat.errors import (
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_TOOL,
    InputError,
    Interrupted,
    MlthreatError,
    OutputError,
    from_interrupt,
)

if TYPE_CHECKING:
    from rich.console import Console, RenderableType


class Cli:
    """One invocation: its arguments and consoles (made on first use: rich takes a while)."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self._out: Console | None = None
        self._err: Console | None = None

    @property
    def out(self) -> Console:
        if self._out is None:
            from rich.console import Console
            self._out = Console(highlight=False, soft_wrap=False)
        return self._out

    @property
    def err(self) -> Console:
        if self._err is None:
            from rich.console import Console  # soft wrap: file:line:col stays whole
            self._err = Console(stderr=True, highlight=False, soft_wrap=True)
        return self._err

    # ----------------------------------------------------------------- output files
    def check_output(self, path: Path, force: bool) -> Path:
        """Refuse, before any work, an output that cannot be written or would overwrite a file
        the user did not agree to replace (--force, or yes at a terminal)."""
        if path.is_dir():
            raise OutputError(f"{path}: is a folder; name a file (or use --out-dir)")
        if not path.parent.exists():
            raise OutputError(f"{path}: folder {path.parent} does not exist; create it first")
        if path.exists() and not force and not self.confirm(path):
            raise OutputError(f"{path}: exists; not overwritten. Use --force to replace it, "
                              "or choose another -o/--out-dir")
        return path

    def confirm(self, path: Path) -> bool:
        if not sys.stdin.isatty() or not sys.stderr.isatty():
            return False
        answer = self.err.input(f"{path} exists. Overwrite? [y/N] ")
        return answer.strip().lower() in ("y", "yes")

    def write_all(self, files: dict[Path, str]) -> None:
        """Write every file or none: each goes to a temporary file beside it, and only when all
        are written are they renamed into place (Ctrl-C or a full disk leaves no half set)."""
        import tempfile
        done: list[tuple[str, Path]] = []
        try:
            for path, text in files.items():
                fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
                done.append((tmp, path))
                with os.fdopen(fd, "w", encoding="utf-8") as f:
                    f.write(text)
            with ctrl_c_deferred() as pressed:      # the renames: all of them, or none
                for tmp, path in done:
                    os.replace(tmp, path)
            if pressed:
                raise Interrupted(f"interrupted; the reports were written first: "
                                  f"{', '.join(str(p) for p in files)}")
        except OSError as exc:
            raise OutputError(f"cannot write {exc.filename or 'the reports'}: {exc.strerror}; "
                              "nothing was written") from exc
        finally:
            for tmp, _ in done:
                Path(tmp).unlink(missing_ok=True)

    def emit(self, text: str, summary: Sequence[RenderableType], output: Path | None) -> None:
        """A report to its file (checked already), or to stdout with -f, or a summary."""
        if output is not None:
            self.write_all({output: text})
            for part in summary:
                self.out.print(part)
            self.out.print(f"wrote {output}")
        elif getattr(self.args, "format", None):
            sys.stdout.write(text)
        else:
            for part in summary:
                self.out.print(part)

    def output(self) -> Path | None:
        """The -o file, checked before any work."""
        out = getattr(self.args, "output", None)
        return self.check_output(Path(out), bool(getattr(self.args, "force", False))) \
            if out else None

    def warn(self, text: str) -> None:
        from rich.text import Text
        self.err.print(Text.assemble(("warning: ", "yellow"), text))


@contextmanager
def ctrl_c_deferred() -> Iterator[list[int]]:
    """Ctrl-C inside is noted, not raised, until the block ends (the main thread only)."""
    pressed: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield pressed
        return
    previous = signal.signal(signal.SIGINT, lambda signum, frame: pressed.append(signum))
    try:
        yield pressed
    finally:
        signal.signal(signal.SIGINT, previous)


def run(argv: Sequence[str] | None) -> int:
    from mlthreat.cli.args import build_parser
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    cli = Cli(args)
    try:
        _apply_settings(parser, args, argv)
    except BaseException as exc:  # noqa: BLE001 - a bad settings file is a user's error, exit 2
        return _failed(cli, exc)
    if getattr(args, "output", None) and getattr(args, "format", "x") is None:
        parser.error("-o/--output needs -f/--format (or use --out-dir for every format)")
    if getattr(args, "output", None) and getattr(args, "out_dir", None):
        parser.error("-o/--output and --out-dir do not go together: -o writes one format, "
                     "--out-dir all of them")
    try:
        module, _, name = args.run.partition(":")
        command: Callable[[Cli], int] = getattr(import_module(f"mlthreat.cli.{module}"), name)
        return command(cli)
    except BaseException as exc:  # noqa: BLE001 - the boundary: every error becomes an exit code
        return _failed(cli, exc)


def _apply_settings(parser: argparse.ArgumentParser, args: argparse.Namespace,
                    argv: list[str]) -> None:
    """The settings file's options for this command, where the command line left them."""
    from mlthreat.cli.args import SETTING_COMMANDS, build_parser
    if args.command not in SETTING_COMMANDS or getattr(args, "no_config", False):
        return
    from mlthreat.cli.settings import apply, find, given, read, start_of
    file = read(Path(args.config)) if args.config else find(start_of(args))
    if args.config and file is None:
        raise InputError(f"{args.config}: has no [tool.mlthreat] table")
    if file is not None:      # `given` changes the parser it reads argv with: a fresh one
        apply(args, parser, args.command, given(build_parser(), argv), file)


def _failed(cli: Cli, exc: BaseException) -> int:
    from rich.text import Text
    debug = bool(getattr(cli.args, "debug", False))
    if isinstance(exc, SystemExit):
        raise exc
    if isinstance(exc, Interrupted) or from_interrupt(exc):
        from mlthreat.processes import stop_workers
        stop_workers()          # nothing of theirs is wanted now: do not wait for them at exit
        cli.err.print(Text(str(exc) if isinstance(exc, Interrupted) else
                           "interrupted; nothing was written", style="yellow"))
        return EXIT_INTERRUPTED
    if debug:
        import traceback
        traceback.print_exception(exc)
    if isinstance(exc, MlthreatError) and exc.exit_code != EXIT_TOOL:
        cli.err.print(Text.assemble(("error: ", "bold red"), str(exc)))
        return exc.exit_code
    kind = "" if isinstance(exc, MlthreatError) else f"{type(exc).__name__}: "
    cli.err.print(Text.assemble(
        ("mlthreat failed: ", "bold red"), f"{kind}{exc}\n",
        "Run again with --debug for the traceback, and please report it."))
    return EXIT_TOOL


__all__ = ["EXIT_OK", "Cli", "run"]
