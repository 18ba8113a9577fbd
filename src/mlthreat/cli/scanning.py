"""`scan` and `discover`: what a repository is made of, read without running any of it."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable
from pathlib import Path

from mlthreat.cli.app import Cli
from mlthreat.cli.gating import failures, here_at, prepare
from mlthreat.cli.terminal import scan_summary
from mlthreat.cluster import connect, scheduler_from
from mlthreat.errors import EXIT_OK, InputError, OutputError
from mlthreat.gate import InlineComments, Item, scan_items, triage
from mlthreat.report.scan import render as render_scan
from mlthreat.scanners import SCANNERS, ScanReport, excluded, scan_paths
from mlthreat.scanners.dependencies import load_advisories
from mlthreat.scanners.discover import discover, to_yaml
from mlthreat.scanners.remote import is_url, local_of


def cmd_scan(cli: Cli) -> int:
    args = cli.args
    named: list[str] = [*args.paths, *(read_list(Path(args.from_list)) if args.from_list
                                       else [])]
    if not named:
        raise InputError("nothing to scan: give files, folders or URLs, or --from-list FILE")
    paths: list[Path | str] = [p if is_url(p) else Path(local_of(p)) for p in named]
    missing = [str(p) for p in paths if isinstance(p, Path) and not p.exists()]
    if missing:
        raise InputError(f"not found: {', '.join(missing)}; check the path (a CI gate on a "
                         "wrong path must not pass)")
    only = [s.strip() for s in args.only.split(",")] if args.only else None
    unknown = [s for s in only or [] if s not in SCANNERS]
    if unknown:
        raise InputError(f"unknown scanner(s) {', '.join(unknown)}; "
                         f"known: {', '.join(SCANNERS)}")
    output = cli.output()
    advisories = load_advisories(Path(args.advisories)) if args.advisories else None
    # fingerprints name files relative to the folder mlthreat runs in, as the SARIF uris do
    # (so 0.1's fingerprints hold, and the scan at --diff-base runs in the same folder there)
    root = Path.cwd()

    scheduler = scheduler_from(args.scheduler)

    def scan(where: list[Path | str], status: Callable[[str], object]) -> ScanReport:
        def progress(p: str) -> None:
            status(f"scanning {p}")
        if scheduler is None:
            return scan_paths(where, only, advisories, exclude=args.exclude, progress=progress)
        with connect(scheduler) as client:
            return scan_paths(where, only, advisories, exclude=args.exclude, progress=progress,
                              cluster=client)

    def at_base(tree: Path) -> list[Item]:
        here = here_at(tree)
        moved: list[Path | str] = [here / p for p in paths if isinstance(p, Path)]
        with cli.err.status(f"scanning {args.diff_base} …") as status, contextlib.chdir(here):
            return scan_items(scan([p for p in moved if Path(p).exists()],
                                   status.update).findings, here)

    gate = prepare(cli, at_base)
    with cli.err.status("scanning …") as status:
        report = scan(paths, status.update)
    if report.files == 0 and not all(isinstance(p, Path) and p.is_file() and
                                     excluded(p.as_posix(), args.exclude)
                                     for p in paths):   # files named and excluded on purpose
        raise InputError(f"{', '.join(map(str, paths))}: holds no files to scan (only folders, "
                         "or files only in .git, or in folders such as .venv that only the "
                         "modelfile scanner reads, or every file excluded, or an empty "
                         "prefix); check the path")
    items = scan_items(report.findings, root)
    inline = InlineComments()
    report.triage = triage(items, gate.accepted, gate.since, inline)
    report.compared = gate.accepted is not None or gate.since is not None
    report.notes += inline.problems
    cli.emit(render_scan(report, args.format or "md"), scan_summary(report, cli.out.width), output)
    return failures(cli, items, report.triage, gate)


def read_list(path: Path) -> list[str]:
    """The paths and URLs a manifest lists, one a line (blank lines and # comments skipped;
    a relative path is taken from the manifest's folder). A local path that does not exist is
    an input error naming the manifest's line."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read the list ({exc}); --from-list takes a text file "
                         "with a path or URL a line") from None
    out = []
    for n, raw in enumerate(lines, 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if is_url(line):
            out.append(line)
            continue
        local = Path(local_of(line))
        local = local if local.is_absolute() else path.parent / local
        if not local.exists():
            raise InputError(f"{path}:{n}: {line}: not found; fix or remove the line (a "
                             "registry's manifest must name what is there)")
        out.append(str(local))
    if not out:
        raise InputError(f"{path}: lists nothing to scan (only blank lines and comments)")
    return out


def cmd_discover(cli: Cli) -> int:
    root = Path(cli.args.dir)
    if not root.is_dir():
        raise InputError(f"{root}: not a folder; discover drafts a spec from a repository")
    out = Path(cli.args.output) if cli.args.output else root / "pipeline.yaml"
    if cli.args.output != "-":
        if out.exists():
            raise OutputError(f"{out}: exists; discover never overwrites a spec. Choose "
                              "another -o and compare the two")
        cli.check_output(out, force=False)
    with cli.err.status(f"reading {root} …"):
        draft = discover(root)
        text = to_yaml(draft, out.parent.resolve() if out.parent.exists() else root,
                       root.resolve().name)
    if cli.args.output == "-":
        sys.stdout.write(text)
        return EXIT_OK
    cli.write_all({out: text})
    kinds = ", ".join(f"{c['id']} ({c['kind']})" for c in draft.components.values())
    cli.out.print(f"wrote {out}: {len(draft.components)} components ({kinds}), "
                  f"{len(draft.flows)} flows. Check every 'guessed' note, then "
                  f"`mlthreat validate {out}`.")
    return EXIT_OK
