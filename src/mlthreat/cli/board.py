"""`mlthreat board`: the workshop board, a local web app over the same Assessor (docs/board.md)."""

from __future__ import annotations

import contextlib
import webbrowser
from pathlib import Path

from mlthreat.cli import stopped_as_asked
from mlthreat.cli.app import Cli
from mlthreat.errors import EXIT_OK, InputError


def cmd_board(cli: Cli) -> int:
    try:
        from mlthreat.web.app import Board
        from mlthreat.web.serve import LOOPBACK, prepare, serve
    except ImportError as exc:
        raise InputError(f"the board needs {exc.name}: pip install starlette uvicorn "
                         "ruamel.yaml (mlthreat's board extra)") from exc
    args = cli.args
    spec = Path(args.spec) if args.spec else None
    if spec is not None and spec.is_dir():
        raise InputError(f"{spec}: is a folder; name a spec file (it is created on the first "
                         "save if it does not exist)")
    if spec is not None and spec.suffix not in (".yaml", ".yml"):
        raise InputError(f"{spec}: a spec file ends in .yaml or .yml")
    try:
        board = Board(Path.cwd(), spec)
        if args.evidence:
            from mlthreat.web.app import read_evidence
            board.evidence = read_evidence(Path(args.evidence))
            board.evidence_file = args.evidence
        served = prepare(board, args.host, args.port)
    except ValueError as exc:
        raise InputError(str(exc)) from exc
    if args.host != LOOPBACK:
        cli.warn(f"the board listens on {args.host}: anyone who can reach that address and has "
                 "the token can read and save specs under this folder. Share the address only "
                 "with the workshop's participants.")
    what = f"{spec} ({'new file, created on save' if not spec.exists() else 'opened'})" \
        if spec else "a new spec (save names the file)"
    cli.err.print(f"board on {what}; saves only under {board.root}. Ctrl-C stops it.")
    cli.out.print(served.url, soft_wrap=True)
    if not args.no_open:
        webbrowser.open(served.url)
    with contextlib.suppress(KeyboardInterrupt):
        serve(served)
    stopped_as_asked()
    cli.err.print("board stopped")
    return EXIT_OK
