"""The CI gate on the command line: `baseline` (accept a report's findings), `config` (the
effective settings), and what `scan`, `model` and `assess` share for --baseline, --new-since and
--diff-base: what the comparison is, which findings fail, and what the terminal says."""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from rich.table import Table
from rich.text import Text

from mlthreat.cli.app import Cli
from mlthreat.errors import EXIT_FINDINGS, EXIT_OK, InputError, OutputError
from mlthreat.gate import (
    Baseline,
    Item,
    accept,
    compared,
    dump_baseline,
    gated,
    known,
    load_baseline,
    sarif_items,
)
from mlthreat.results import Triage
from mlthreat.vocabulary import RiskLevel


@dataclass(frozen=True)
class Gate:
    """What this run compares with: accepted findings, and the earlier state to call new."""

    accepted: Baseline | None
    since: Baseline | None
    since_name: str = ""

    @property
    def only_new(self) -> bool:
        return self.since is not None


def prepare(cli: Cli, run_at: Callable[[Path], list[Item]] | None = None) -> Gate:
    """The baseline files, read before any work (a wrong path fails at once); --diff-base runs
    `run_at(root)` on the repository as it was at that commit."""
    args = cli.args
    accepted = load_baseline(Path(args.baseline)) if getattr(args, "baseline", None) else None
    if getattr(args, "new_since", None) and getattr(args, "diff_base", None):
        raise InputError("--new-since and --diff-base both say what is new; give one")
    if getattr(args, "new_since", None):
        return Gate(accepted, compared(Path(args.new_since)), args.new_since)
    if getattr(args, "diff_base", None) and run_at is not None:
        with checkout(args.diff_base) as root:
            items = run_at(root)
        return Gate(accepted, known(Path(args.diff_base), items), args.diff_base)
    return Gate(accepted, None)


def repository_root(start: Path) -> Path | None:
    """The git work tree `start` lies in, or None."""
    folder = start.resolve()
    folder = folder if folder.is_dir() else folder.parent
    try:
        out = subprocess.run(["git", "rev-parse", "--show-toplevel"], cwd=folder,
                             capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return Path(out.stdout.strip()) if out.returncode == 0 and out.stdout.strip() else None


def here_at(tree: Path) -> Path:
    """Where the working directory lies in a checkout of the repository at `tree`."""
    root = repository_root(Path.cwd())
    return tree / Path.cwd().resolve().relative_to(root.resolve()) if root else tree


@contextmanager
def checkout(ref: str) -> Iterator[Path]:
    """The repository's files at `ref`, in a temporary folder (git archive; nothing in the
    working tree or the repository changes)."""
    root = repository_root(Path.cwd())
    if root is None:
        raise InputError(f"--diff-base {ref}: {Path.cwd()} is not in a git repository")
    with tempfile.TemporaryDirectory(prefix="mlthreat-base-") as tmp:
        archive = Path(tmp) / "base.tar"
        done = subprocess.run(["git", "archive", "--format=tar", "-o", str(archive), ref],
                              cwd=root, capture_output=True, text=True, timeout=600, check=False)
        if done.returncode != 0:
            raise InputError(f"--diff-base {ref}: git cannot read it ({done.stderr.strip()}); "
                             "fetch the branch first (in CI: a checkout with enough history)")
        tree = Path(tmp) / "tree"
        with tarfile.open(archive) as tar:
            tar.extractall(tree, filter="data")
        yield tree


def failures(cli: Cli, items: Sequence[Item], verdicts: Sequence[Triage], gate: Gate) -> int:
    """The exit code: findings at or above --fail-on (any new one with a comparison and no
    --fail-on) that are not suppressed and, with a comparison, new or worse."""
    fail_on = cli.args.fail_on or ("low" if gate.only_new else None)
    suppressed = sum(t.suppression is not None for t in verdicts)
    if suppressed:
        cli.err.print(f"{_count(suppressed, 'finding')} suppressed (accepted in a baseline or by an "
                      "inline comment; listed in the report)")
    for it, t in zip(items, verdicts, strict=True):
        if t.note and t.suppression is None:
            cli.warn(f"{it.rules[0]} at {it.where}: {t.note}")
    if not fail_on:
        return EXIT_OK
    hits = gated(items, verdicts, RiskLevel(fail_on), gate.only_new)
    if hits:
        what = "new or worse finding" if gate.only_new else "finding"
        since = f" since {gate.since_name}" if gate.only_new else ""
        cli.err.print(f"{_count(len(hits), what)} at or above {fail_on}{since}:")
        for it in hits[:20]:
            cli.err.print(Text(f"  {it.level}: {it.rules[0]} at {it.where}"))
        return EXIT_FINDINGS
    return EXIT_OK


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


# --------------------------------------------------------------------------------- baseline
def cmd_baseline(cli: Cli) -> int:
    args = cli.args
    out = Path(args.output)
    if args.action == "show":
        return _show(cli, load_baseline(out))
    if not args.report:
        raise InputError(f"baseline {args.action} needs a SARIF report: `mlthreat scan ... -f "
                         "sarif -o scan.sarif`, then `mlthreat baseline create scan.sarif`")
    items = sarif_items(Path(args.report))
    keep = None
    if args.action == "create":
        if out.exists():
            raise OutputError(f"{out}: exists; `baseline create` never replaces accepted "
                              "risks. Use `baseline update`, or another -o")
        cli.check_output(out, force=False)
    else:
        keep = load_baseline(out)
    new = [it for it in items if keep is None or it.fingerprint not in keep.accepted]
    if new and not (args.by and args.reason):
        raise InputError(f"{_count(len(new), 'finding')} to accept: say who accepts them and why "
                         "(--by NAME --reason TEXT; --until YYYY-MM-DD to make it expire)")
    entries = accept(items, args.by or "", args.reason or "", args.until, keep)
    cli.write_all({out: dump_baseline(entries)})
    dropped = len(keep.accepted) - (len(items) - len(new)) if keep else 0
    cli.out.print(f"wrote {out}: {_count(len(entries), 'accepted finding')} ({len(new)} new"
                  + (f", {dropped} no longer found and dropped" if keep else "") + ")")
    return EXIT_OK


def _show(cli: Cli, baseline: Baseline) -> int:
    import datetime as dt
    today = dt.date.today()
    table = Table("level", "rule", "where", "by", "until", "reason", title=str(baseline.path))
    for e in baseline.accepted.values():
        until = Text(e.until or "-", style="red" if e.expired(today) else "")
        table.add_row(e.level, e.rule, e.where, e.by, until, e.reason)
    cli.out.print(table)
    expired = sum(e.expired(today) for e in baseline.accepted.values())
    if expired:
        cli.warn(f"{expired} acceptances have expired: those findings fail the gate again")
    return EXIT_OK


# ----------------------------------------------------------------------------------- config
def cmd_config(cli: Cli) -> int:
    from mlthreat.cli.args import SETTING_COMMANDS, build_parser
    from mlthreat.cli.settings import apply, find, read
    args = cli.args
    file = None
    if not args.no_config:
        file = read(Path(args.config)) if args.config else find(Path(args.path))
    rows = []
    for command in args.for_command or SETTING_COMMANDS:
        parser = build_parser()
        ns = parser.parse_args([command, *_placeholders(command)])
        rows += apply(ns, build_parser(), command, set(), file)
    if args.format == "json":
        data = {"file": str(file.path) if file else None,
                "settings": [{"command": s.command, "option": s.option, "value": s.value,
                              "source": s.source} for s in rows]}
        sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
        return EXIT_OK
    cli.out.print(f"settings file: {file.path if file else 'none found (defaults only)'}")
    table = Table("command", "option", "value", "from")
    for s in rows:
        table.add_row(s.command, s.option, Text(repr(s.value)),
                      Text(s.source, style="dim" if s.source == "default" else "bold"))
    cli.out.print(table)
    return EXIT_OK


def _placeholders(command: str) -> list[str]:
    """The positional arguments a command needs, so that its options can be parsed alone."""
    return {"scan": ["."]}.get(command, ["pipeline.yaml"])
