"""The mlthreat command line. Thin: parses arguments, calls the library, prints, and maps errors
to exit codes (0 nothing at or above --fail-on, 1 findings at or above it, 2 bad usage or bad
input, 3 mlthreat itself failed, 130 interrupted). Tracebacks only with --debug.

Each command lives in its own module, imported only when it runs, so that `mlthreat --version`
and `mlthreat validate` start without loading the probes, scanners or report formats.

Ctrl-C is never swallowed: Python raises KeyboardInterrupt where the signal arrives, but where
that is inside a callback (a weak reference's, while a module is imported) it prints the error
and drops it. So the handler also notes the press; the progress display raises it again at the
next step of the assessment, and a command that still finishes exits 130 all the same.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType
from typing import Any

_pressed: list[int] = []


def pressed() -> bool:
    """Whether Ctrl-C came during this command, raised or not."""
    return bool(_pressed)


def stopped_as_asked() -> None:
    """Ctrl-C was the command's own way to end (the board's server): not an interruption."""
    _pressed.clear()


def _ctrl_c(signum: int, frame: FrameType | None) -> None:
    _pressed.append(signum)
    raise KeyboardInterrupt


def _quiet_about_dropped_interrupts(unraisable: Any) -> None:
    if not isinstance(unraisable.exc_value, KeyboardInterrupt):   # noted in _pressed instead
        sys.__unraisablehook__(unraisable)


def main(argv: Sequence[str] | None = None) -> int:
    _pressed.clear()
    here = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, _ctrl_c) if here else None
    hook, sys.unraisablehook = sys.unraisablehook, _quiet_about_dropped_interrupts
    try:
        from mlthreat.cli.app import run
        code = run(argv)
    except KeyboardInterrupt:       # Ctrl-C while the command line itself is still loading
        sys.stderr.write("interrupted; nothing was written\n")
        return 130
    finally:
        sys.unraisablehook = hook
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
    if _pressed and code != 130:
        sys.stderr.write("interrupted: Ctrl-C came where Python could not stop the command, "
                         "which finished (what it reports above was written)\n")
        return 130
    return code


def console() -> int:
    """The process's entry point (the `mlthreat` script and `python -m mlthreat.cli`): `main`,
    and after Ctrl-C, out at once. The interrupt has been reported and the workers told to stop;
    an ordinary exit would still join whatever a library left behind (loky's executor thread
    and the workers it waits for), and CI saw such an exit hang for minutes after the message."""
    code = main()
    if code == 130:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(130)
    return code


__all__ = ["console", "main", "pressed", "stopped_as_asked"]
