"""The mlthreat command line. Thin: parses arguments, calls the library, prints, and maps errors
to exit codes (0 nothing at or above --fail-on, 1 findings at or above it, 2 bad usage or bad
input, 3 mlthreat itself failed, 130 interrupted). Tracebacks only with --debug.

Each command lives in its own module, imported only when it runs, so that `mlthreat --version`
and `mlthreat validate` start without loading the probes, scanners or report formats.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    try:
        from mlthreat.cli.app import run
        return run(argv)
    except KeyboardInterrupt:       # Ctrl-C while the command line itself is still loading
        sys.stderr.write("interrupted; nothing was written\n")
        return 130


__all__ = ["main"]
