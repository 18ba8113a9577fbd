"""The mlthreat command line. Thin: parses arguments, calls the library, prints, maps errors to
exit codes (0 nothing at or above --fail-on, 1 findings at or above it, 2 bad usage or input,
3 mlthreat itself failed). Tracebacks only with --debug.
"""

from __future__ import annotations

import argparse
import json
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path

from rich.console import Console, RenderableType
from rich.table import Table
from rich.text import Text

from mlthreat.analysis import assess
from mlthreat.assessor import Assessor
from mlthreat.catalog import Catalog, load_catalog
from mlthreat.cliargs import build_parser
from mlthreat.errors import InputError, Interrupted, MlthreatError, OutputError
from mlthreat.examples import example_spec, list_examples
from mlthreat.perception import Mappers, Perception, load_perception
from mlthreat.perception.codes import analyse_codes, read_codings
from mlthreat.perception.elicit import AnswersFileIo, Interview, ScriptedIo
from mlthreat.perception.files import (
    TerminalIo,
    answers_io,
    read_perception,
    save_perception,
)
from mlthreat.perception.team import team_view
from mlthreat.pipeline import PipelineSpec, load_pipeline
from mlthreat.plain import to_plain
from mlthreat.probes.runner import usable_cores
from mlthreat.report import FORMATS
from mlthreat.report.common import at_least
from mlthreat.report.progress import TerminalProgress
from mlthreat.report.research import render_codes, render_team
from mlthreat.report.scan import render as render_scan
from mlthreat.report.terminal import codes_summary, scan_summary, summary, team_summary
from mlthreat.results import Assessment
from mlthreat.scanners import SCANNERS, scan_paths
from mlthreat.scanners.dependencies import load_advisories
from mlthreat.scanners.discover import discover, to_yaml
from mlthreat.vocabulary import Family, RiskLevel

EXIT_OK, EXIT_FINDINGS, EXIT_INPUT, EXIT_TOOL = 0, 1, 2, 3
DEMO_MARKER = ".mlthreat-demo"


class Cli:
    """Holds the consoles and flags of one invocation."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.out = Console(highlight=False, soft_wrap=False)
        self.err = Console(stderr=True, highlight=False, soft_wrap=True)  # file:line:col stays whole

    # ----------------------------------------------------------------- output files
    def write(self, path: Path, text: str, force: bool) -> None:
        """Write a report; never overwrite a user's file without asking (or --force)."""
        if path.exists() and not force and not self._confirm(path):
            raise OutputError(f"{path}: exists; not overwritten. Use --force to replace it, "
                              "or choose another -o/--out-dir")
        if not path.parent.exists():
            raise OutputError(f"{path}: folder {path.parent} does not exist; create it first")
        try:
            path.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise OutputError(f"{path}: cannot write ({exc.strerror})") from exc

    def _confirm(self, path: Path) -> bool:
        if not sys.stdin.isatty() or not sys.stderr.isatty():
            return False
        answer = self.err.input(f"{path} exists. Overwrite? [y/N] ")
        return answer.strip().lower() in ("y", "yes")

    def print_summary(self, assessment: Assessment, to_stderr: bool = False) -> None:
        console = self.err if to_stderr else self.out
        for part in summary(assessment):
            console.print(part)
        for w in assessment.warnings:
            self.err.print(Text.assemble(("warning: ", "yellow"), w))

    # ----------------------------------------------------------------- commands
    def cmd_validate(self) -> int:
        catalog = load_catalog()
        pipeline = load_pipeline(self.args.spec, catalog)
        spec = pipeline.spec
        controls = set(pipeline.pipeline_controls).union(*pipeline.controls.values())
        self.out.print(f"[green]OK[/] {self.args.spec}: {len(spec.components)} components, "
                       f"{len(spec.flows)} flows, {len(controls)} distinct controls")
        for w in pipeline.warnings:
            self.err.print(Text.assemble(("warning: ", "yellow"), str(w)))
        return EXIT_OK

    def cmd_model(self) -> int:
        args = self.args
        assessment = self._assess(Path(args.spec), [Path(f) for f in args.perception],
                                  probes=getattr(args, "probes", False),
                                  budget=getattr(args, "budget", "standard"))
        if args.out_dir:
            self._write_all(assessment, Path(args.out_dir), args.force)
            self.print_summary(assessment)
        elif args.format:
            text = FORMATS[args.format].render(assessment)
            if args.output:
                self.write(Path(args.output), text, args.force)
                self.print_summary(assessment)
                self.out.print(f"wrote {args.output}")
            else:
                sys.stdout.write(text)
        else:
            self.print_summary(assessment)
        return self._exit_for(assessment)

    def cmd_demo(self) -> int:
        spec = example_spec(self.args.example)
        if not spec.is_file():
            raise InputError(f"no example named {self.args.example!r}; "
                             f"bundled: {', '.join(list_examples())}")
        out_dir = Path(self.args.out)
        ours = (out_dir / DEMO_MARKER).exists()
        if out_dir.exists() and any(out_dir.iterdir()) and not ours and not self.args.force:
            raise OutputError(f"{out_dir}: exists and was not written by `mlthreat demo`; "
                              "choose another --out or use --force")
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / DEMO_MARKER).write_text("reports written by `mlthreat demo`\n")
        perceptions = sorted((spec.parent / "perceptions").glob("*.yaml"))
        assessment = self._assess(spec, perceptions, probes=True, budget="quick")
        self.print_summary(assessment)
        self._write_all(assessment, out_dir, force=True)
        if len(perceptions) >= 2:
            catalog = load_catalog()
            pipeline = load_pipeline(spec, catalog)
            mappers = Mappers.for_catalog(catalog)
            view = team_view([load_perception(f, pipeline, catalog, mappers)
                              for f in perceptions], assessment, catalog)
            for fmt in ("md", "html"):
                path = out_dir / f"team-view.{fmt}"
                self.write(path, render_team(view, fmt), force=True)
                self.out.print(f"wrote {path}  [dim](team view of {len(perceptions)} "
                               "perception files)[/]")
        return EXIT_OK

    def cmd_schema(self) -> int:
        text = json.dumps(PipelineSpec.model_json_schema(by_alias=True), indent=2) + "\n"
        if self.args.output:
            self.write(Path(self.args.output), text, self.args.force)
        else:
            sys.stdout.write(text)
        return EXIT_OK

    def cmd_catalog(self) -> int:
        catalog = load_catalog()
        family = Family(self.args.family) if self.args.family else None
        if self.args.format == "json":
            items = (catalog.controls if self.args.controls else catalog.by_family(family))
            data = [i.model_dump(mode="json") for i in items
                    if family is None or i.family == family]
            sys.stdout.write(json.dumps(data, indent=2) + "\n")
        elif self.args.controls:
            self.out.print(_controls_table(catalog, family))
        else:
            self.out.print(_threats_table(catalog, family))
        return EXIT_OK

    def cmd_scan(self) -> int:
        args = self.args
        paths = [Path(p) for p in args.paths]
        missing = [str(p) for p in paths if not p.exists()]
        if missing:
            raise InputError(f"not found: {', '.join(missing)}")
        only = [s.strip() for s in args.only.split(",")] if args.only else None
        unknown = [s for s in only or [] if s not in SCANNERS]
        if unknown:
            raise InputError(f"unknown scanner(s) {', '.join(unknown)}; "
                             f"known: {', '.join(SCANNERS)}")
        advisories = load_advisories(Path(args.advisories)) if args.advisories else None
        with self.err.status("scanning …") as status:
            report = scan_paths(paths, only, advisories,
                                progress=lambda p: status.update(f"scanning {p}"))
        self._emit(render_scan(report, args.format or "md"), scan_summary(report))
        if args.fail_on:
            hits = [f for f in report.findings if f.at_least(RiskLevel(args.fail_on))]
            if hits:
                self.err.print(f"{len(hits)} findings at or above {args.fail_on}")
                return EXIT_FINDINGS
        return EXIT_OK

    def cmd_discover(self) -> int:
        root = Path(self.args.dir)
        if not root.is_dir():
            raise InputError(f"{root}: not a folder; discover drafts a spec from a repository")
        out = Path(self.args.output) if self.args.output else root / "pipeline.yaml"
        if out.exists():
            raise OutputError(f"{out}: exists; discover never overwrites a spec. Choose another "
                              "-o and compare the two")
        with self.err.status(f"reading {root} …"):
            draft = discover(root)
            text = to_yaml(draft, out.parent.resolve() if out.parent.exists() else root,
                           root.resolve().name)
        if self.args.output == "-":
            sys.stdout.write(text)
            return EXIT_OK
        self.write(out, text, force=False)
        kinds = ", ".join(f"{c['id']} ({c['kind']})" for c in draft.components.values())
        self.out.print(f"wrote {out}: {len(draft.components)} components ({kinds}), "
                       f"{len(draft.flows)} flows. Check every 'guessed' note, then "
                       f"`mlthreat validate {out}`.")
        return EXIT_OK

    def _assessor(self, probes: bool, budget: str, observer: TerminalProgress) -> Assessor:
        args = self.args
        return Assessor(scan=not getattr(args, "no_scan", False), probes=probes,
                        only=tuple(getattr(args, "only", None) or ()),
                        components=tuple(getattr(args, "component", None) or ()), budget=budget,
                        jobs=int(getattr(args, "jobs", 0) or usable_cores()),   # demo: every core
                        trust=bool(getattr(args, "trust", False)), observer=observer)

    def cmd_probe(self) -> int:
        catalog = load_catalog()
        pipeline = load_pipeline(self.args.spec, catalog)
        if not any(c.probe for c in pipeline.spec.components):
            raise InputError(f"{self.args.spec}: no component has a `probe` block; see "
                             "docs/probes.md")
        with TerminalProgress(self.err) as bar:
            measured, skipped = self._assessor(True, self.args.budget, bar).measure(pipeline)
        runs = [c.id for c in pipeline.spec.components
                if any(e.component == c.id for e in measured)
                or any(s.component == c.id for s in skipped)]
        if self.args.format == "json":
            data = [{"component": c, "evidence": [to_plain(e) for e in measured if e.component == c],
                     "skipped": [{"probe": s.source.removeprefix("probe:"), "why": s.reason}
                                 for s in skipped if s.component == c]} for c in runs]
            sys.stdout.write(json.dumps(data, indent=2) + "\n")
            return EXIT_OK
        for c in runs:
            self.out.print(Text(c, style="bold"))
            for e in (e for e in measured if e.component == c):
                mark = "confirmed" if e.confirmed else "measured"
                self.out.print(Text(f"  [{e.title}, {mark}] {e.summary} ({e.queries} queries, "
                                    f"{e.seconds:.1f} s)"))
            for s in (s for s in skipped if s.component == c):
                self.out.print(Text(f"  [{s.source.removeprefix('probe:')}, skipped] {s.reason}",
                                    style="yellow"))
        return EXIT_OK

    def cmd_team(self) -> int:
        catalog = load_catalog()
        pipeline = load_pipeline(self.args.spec, catalog)
        if len(self.args.perceptions) < 2:
            raise InputError("a team view needs at least two perception files")
        with self.err.status("comparing perceptions …"):
            assessment = assess(pipeline, catalog)
            mappers = Mappers.for_catalog(catalog)
            people = [load_perception(f, pipeline, catalog, mappers)
                      for f in self.args.perceptions]
            view = team_view(people, assessment, catalog)
        self._emit(render_team(view, self.args.format or "md"), team_summary(view))
        return EXIT_OK

    def cmd_codes(self) -> int:
        report = analyse_codes(read_codings(self.args.file), Path(self.args.file).name,
                               self.args.unit)
        self._emit(render_codes(report, self.args.format or "md"), codes_summary(report))
        return EXIT_OK

    def cmd_elicit(self) -> int:
        args = self.args
        catalog = load_catalog()
        pipeline = load_pipeline(args.spec, catalog)
        out = Path(args.output)
        io = self._elicit_io()
        start = self._elicit_start(out, pipeline.spec.name, io)
        interview = Interview(pipeline, catalog, assess(pipeline, catalog), io,
                              save=lambda p: save_perception(p, out))
        only = io.covers if isinstance(io, AnswersFileIo) else None
        try:
            done = interview.run(start, only)
        except (EOFError, KeyboardInterrupt) as exc:
            self.err.print(Text(f"interview paused; answers so far are in {out}. Run the same "
                                "command to resume.", style="yellow"))
            return 130 if isinstance(exc, KeyboardInterrupt) else EXIT_OK
        self.out.print(f"wrote {out}: {len(done.views)} components answered. Compare it with "
                       f"`mlthreat model {args.spec} --perception {out}`")
        return EXIT_OK

    def _elicit_start(self, out: Path, name: str,
                      io: AnswersFileIo | ScriptedIo | TerminalIo) -> Perception:
        """The unfinished file to resume, or a new one for the respondent."""
        if out.exists():
            existing = read_perception(out)
            if not existing.complete:
                self.err.print(f"resuming the interview in {out} "
                               f"({len(existing.views)} components answered)")
                return existing
            if not (self.args.force or self._confirm(out)):
                raise OutputError(f"{out}: holds a finished interview; not overwritten. Use "
                                  "--force or another -o")
        elif not out.parent.exists():
            raise OutputError(f"{out}: folder {out.parent} does not exist")
        given = io.identity if isinstance(io, AnswersFileIo) else {}
        who = {k: getattr(self.args, k) or given.get(k) for k in ("respondent", "role", "team")}
        if not who["respondent"]:
            if not io.interactive:
                raise InputError("--respondent is required without a terminal "
                                 "(or set 'respondent:' in the answers file)")
            who["respondent"] = self.err.input("Your name or id: ").strip() or "anonymous"
        return Perception(pipeline=name, complete=False, **who)

    def _elicit_io(self) -> AnswersFileIo | ScriptedIo | TerminalIo:
        if self.args.answers:
            return answers_io(Path(self.args.answers))
        if sys.stdin.isatty():
            return TerminalIo(self.err)
        return ScriptedIo([line.rstrip("\n") for line in sys.stdin],
                          say=lambda text: self.err.print(Text(text)))

    def _emit(self, text: str, summary_parts: list[RenderableType]) -> None:
        if self.args.output:
            self.write(Path(self.args.output), text, self.args.force)
            for part in summary_parts:
                self.out.print(part)
            self.out.print(f"wrote {self.args.output}")
        elif self.args.format:
            sys.stdout.write(text)
        else:
            for part in summary_parts:
                self.out.print(part)

    # ----------------------------------------------------------------- helpers
    def _assess(self, spec: Path, perceptions: Sequence[Path] = (), probes: bool = False,
                budget: str = "standard") -> Assessment:
        with TerminalProgress(self.err) as bar:
            return self._assessor(probes, budget, bar).assess(spec, perceptions)

    def _write_all(self, assessment: Assessment, out_dir: Path, force: bool) -> None:
        out_dir.mkdir(parents=True, exist_ok=True)
        for name, module in FORMATS.items():
            path = out_dir / f"threat-model.{module.extension}"
            self.write(path, module.render(assessment), force)
            self.out.print(f"wrote {path}  [dim]({name})[/]")

    def _exit_for(self, assessment: Assessment) -> int:
        if not self.args.fail_on:
            return EXIT_OK
        hits = at_least(list(assessment.findings), RiskLevel(self.args.fail_on))
        if hits:
            self.err.print(f"{len(hits)} findings at or above {self.args.fail_on}")
            return EXIT_FINDINGS
        return EXIT_OK


def _threats_table(catalog: Catalog, family: Family | None) -> Table:
    table = Table(title=f"{len(catalog.by_family(family))} threats", title_justify="left")
    for col in ("id", "family", "goal · asset", "acts at", "ATLAS"):
        table.add_column(col)
    for t in catalog.by_family(family):
        table.add_row(f"{t.id}\n[dim]{t.name}[/]", t.family.value,
                      f"{t.goal.value} · {t.asset.value}",
                      ", ".join(k.value for k in t.acts_at.kinds),
                      ", ".join(t.references.atlas))
    return table


def _controls_table(catalog: Catalog, family: Family | None) -> Table:
    controls = [c for c in catalog.controls if family is None or c.family == family]
    table = Table(title=f"{len(controls)} controls (use the id or an alias in a spec)",
                  title_justify="left")
    for col in ("id", "family", "incidental", "aliases", "mitigates"):
        table.add_column(col)
    for c in controls:
        table.add_row(f"{c.id}\n[dim]{c.name}[/]", c.family.value, "yes" if c.incidental else "",
                      ", ".join(c.aliases), ", ".join(f"{t} ({s.value})"
                                                      for t, s in c.mitigates.items()))
    return table


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "output", None) and getattr(args, "format", "x") is None:
        parser.error("-o/--output needs -f/--format (or use --out-dir for every format)")
    cli = Cli(args)
    run: Callable[[Cli], int] = getattr(Cli, args.run)
    try:
        return run(cli)
    except InputError as exc:
        if args.debug:
            traceback.print_exc()
        cli.err.print(Text.assemble(("error: ", "bold red"), str(exc)))
        return EXIT_INPUT
    except Interrupted as exc:
        cli.err.print(Text(str(exc), style="yellow"))
        return 130
    except KeyboardInterrupt:
        cli.err.print("interrupted")
        return 130
    except Exception as exc:  # noqa: BLE001 - the boundary: everything else is our failure
        if args.debug:
            traceback.print_exc()
        kind = "" if isinstance(exc, MlthreatError) else f"{type(exc).__name__}: "
        cli.err.print(Text.assemble(
            ("mlthreat failed: ", "bold red"), f"{kind}{exc}\n",
            "Run again with --debug for the traceback, and please report it."))
        return EXIT_TOOL


if __name__ == "__main__":
    sys.exit(main())
