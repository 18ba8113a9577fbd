"""`model`, `assess`, `demo` and `probe`: the threat model, with scans and probes, through the
library's Assessor; the terminal shows its progress and a summary, reports go where asked."""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from rich.text import Text

from mlthreat.analysis.grouping import lead
from mlthreat.assessor import Assessor
from mlthreat.catalog import load_catalog
from mlthreat.cli.app import Cli
from mlthreat.cli.gating import failures, here_at, prepare
from mlthreat.cli.progress import TerminalProgress
from mlthreat.cli.terminal import summary
from mlthreat.cluster import scheduler_from
from mlthreat.errors import EXIT_OK, InputError, OutputError
from mlthreat.examples import example_spec, list_examples
from mlthreat.gate import InlineComments, Item, assessment_items, triage
from mlthreat.plain import to_plain
from mlthreat.processes import usable_cores
from mlthreat.report import FORMATS
from mlthreat.report.regulation import FORMATS as VIEW_FORMATS
from mlthreat.report.regulation import render as render_view
from mlthreat.results import Assessment

DEMO_MARKER = ".mlthreat-demo"


def cmd_model(cli: Cli) -> int:
    """`model` and `assess` (which sets probes): every output checked before the work."""
    args = cli.args
    views = list(dict.fromkeys(args.view))
    if views and args.format == "sarif":
        raise InputError("--view has no SARIF form (SARIF lists findings, not clauses); use -f "
                         "md, json or html, or --out-dir for the reports and the view")
    if len(views) > 1 and args.format:
        raise InputError(f"-f writes one report; {len(views)} views asked for: give one --view, "
                         "or --out-dir for all of them")
    outputs = _report_set(cli, Path(args.out_dir), views) if args.out_dir else {}
    single = cli.output()
    probes, budget = getattr(args, "probes", False), getattr(args, "budget", "standard")

    def at_base(tree: Path) -> list[Item]:
        spec = here_at(tree) / args.spec
        if not spec.is_file():
            return []                   # no spec there yet: every finding is new
        return assessment_items(_assess(cli, spec, [], probes=probes, budget=budget))

    gate = prepare(cli, at_base)
    assessment = _assess(cli, Path(args.spec), [Path(f) for f in args.perception],
                         probes=probes, budget=budget)
    items = assessment_items(assessment, args.spec)
    inline = InlineComments()
    verdicts = triage(items, gate.accepted, gate.since, inline)
    quiet = {t.finding for t in verdicts if t.suppression is not None}
    assessment = dataclasses.replace(
        assessment, triage=tuple(verdicts), lead=lead(assessment.groups, quiet),
        warnings=assessment.warnings + tuple(inline.problems),
        compared_with=gate.since_name or (str(gate.accepted.path) if gate.accepted else None))
    if outputs:
        _write_reports(cli, assessment, outputs)
        print_summary(cli, assessment)
    elif args.format:
        text = FORMATS[args.format].render(assessment) if not views else \
            render_view(assessment, views[0], args.format)
        if single is not None:
            cli.write_all({single: text})
            print_summary(cli, assessment)
            cli.out.print(f"wrote {single}")
        else:
            sys.stdout.write(text)
    elif views:
        from mlthreat.cli.terminal import view_table
        for name in views:
            cli.out.print(view_table(assessment, name))
    else:
        print_summary(cli, assessment)
    return failures(cli, items, verdicts, gate)


def cmd_demo(cli: Cli) -> int:
    spec = example_spec(cli.args.example)
    if not spec.is_file():
        raise InputError(f"no example named {cli.args.example!r}; "
                         f"bundled: {', '.join(list_examples())}")
    out_dir = Path(cli.args.out)
    ours = (out_dir / DEMO_MARKER).exists()
    if out_dir.exists() and any(out_dir.iterdir()) and not ours and not cli.args.force:
        raise OutputError(f"{out_dir}: exists and was not written by `mlthreat demo`; "
                          "choose another --out or use --force")
    perceptions = sorted((spec.parent / "perceptions").glob("*.yaml"))
    assessment = _assess(cli, spec, perceptions, probes=True, budget="quick")
    print_summary(cli, assessment)
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {out_dir / f"threat-model.{f.extension}": f.render(assessment)
             for f in FORMATS.values()}
    if len(perceptions) >= 2:
        files.update(_team_view(spec, perceptions, assessment, out_dir))
    cli.write_all({out_dir / DEMO_MARKER: "reports written by `mlthreat demo`\n", **files})
    for path in files:
        cli.out.print(f"wrote {path}")
    return EXIT_OK


def _team_view(spec: Path, perceptions: Sequence[Path], assessment: Assessment, out_dir: Path
               ) -> dict[Path, str]:
    from mlthreat.perception import Mappers, load_perception
    from mlthreat.perception.team import team_view
    from mlthreat.pipeline import load_pipeline
    from mlthreat.report.research import render_team
    catalog = load_catalog()
    pipeline = load_pipeline(spec, catalog)
    mappers = Mappers.for_catalog(catalog)
    view = team_view([load_perception(f, pipeline, catalog, mappers) for f in perceptions],
                     assessment, catalog)
    return {out_dir / f"team-view.{fmt}": render_team(view, fmt) for fmt in ("md", "html")}


def cmd_probe(cli: Cli) -> int:
    from mlthreat.pipeline import load_pipeline
    pipeline = load_pipeline(cli.args.spec, load_catalog())
    if not any(c.probe for c in pipeline.spec.components):
        raise InputError(f"{cli.args.spec}: no component has a `probe` block; see "
                         "docs/probes.md")
    with TerminalProgress(cli.err) as bar:
        measured, skipped = _assessor(cli, True, cli.args.budget, bar).measure(pipeline)
    comps = [c.id for c in pipeline.spec.components
             if any(e.component == c.id for e in measured)
             or any(s.component == c.id for s in skipped)]
    if cli.args.format == "json":
        data = [{"component": c, "evidence": [to_plain(e) for e in measured if e.component == c],
                 "skipped": [{"probe": s.source.removeprefix("probe:"), "why": s.reason}
                             for s in skipped if s.component == c]} for c in comps]
        sys.stdout.write(json.dumps(data, indent=2) + "\n")
        return EXIT_OK
    for c in comps:
        cli.out.print(Text(c, style="bold"))
        for e in (e for e in measured if e.component == c):
            mark = "confirmed" if e.confirmed else "measured"
            cli.out.print(Text(f"  [{e.title}, {mark}] {e.summary} ({e.queries} queries, "
                               f"{e.seconds:.1f} s)"))
            for w in e.extra.get("warnings", ()):
                cli.out.print(Text(f"    warning: {w}", style="yellow"))
        for s in (s for s in skipped if s.component == c):
            cli.out.print(Text(f"  [{s.source.removeprefix('probe:')}, skipped] {s.reason}",
                               style="yellow"))
    return EXIT_OK


def _assessor(cli: Cli, probes: bool, budget: str, observer: TerminalProgress) -> Assessor:
    args = cli.args
    return Assessor(scan=not getattr(args, "no_scan", False), probes=probes,
                    only=tuple(getattr(args, "only", None) or ()),
                    components=tuple(getattr(args, "component", None) or ()), budget=budget,
                    jobs=int(getattr(args, "jobs", 0) or usable_cores()),   # demo: every core
                    trust=bool(getattr(args, "trust", False)),
                    scheduler=scheduler_from(getattr(args, "scheduler", None)) if probes
                    else None, observer=observer,
                    evidence=tuple(getattr(args, "evidence", None) or ()))


def _assess(cli: Cli, spec: Path, perceptions: Sequence[Path], probes: bool, budget: str
            ) -> Assessment:
    with TerminalProgress(cli.err) as bar:
        return _assessor(cli, probes, budget, bar).assess(spec, perceptions)


def _report_set(cli: Cli, out_dir: Path, views: Sequence[str] = ()) -> dict[str, Path]:
    """Every format's file in --out-dir (and each view's as NAME.md|json|html), each checked
    before any work."""
    if out_dir.exists() and not out_dir.is_dir():
        raise OutputError(f"{out_dir}: is a file; --out-dir names a folder")
    paths = {name: out_dir / f"threat-model.{f.extension}" for name, f in FORMATS.items()}
    paths.update({f"{view}:{fmt}": out_dir / f"{view}.{fmt}" for view in views
                  for fmt in VIEW_FORMATS})
    if out_dir.is_dir():            # a folder still to be made holds nothing to overwrite
        for path in paths.values():
            cli.check_output(path, cli.args.force)
    return paths


def _write_reports(cli: Cli, assessment: Assessment, outputs: dict[str, Path]) -> None:
    next(iter(outputs.values())).parent.mkdir(parents=True, exist_ok=True)
    cli.write_all({path: render_view(assessment, *name.split(":")) if ":" in name
                   else FORMATS[name].render(assessment) for name, path in outputs.items()})
    for name, path in outputs.items():
        cli.out.print(f"wrote {path}  [dim]({name})[/]")


def print_summary(cli: Cli, assessment: Assessment) -> None:
    for part in summary(assessment):
        cli.out.print(part)
    for w in assessment.warnings:
        cli.warn(w)
