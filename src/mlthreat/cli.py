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

from mlthreat import __version__
from mlthreat.analysis import Assessment, assess
from mlthreat.catalog import Catalog, load_catalog
from mlthreat.errors import InputError, Interrupted, MlthreatError, OutputError
from mlthreat.examples import REFERENCE, example_spec, list_examples
from mlthreat.perception import Mappers, Perception, load_perception
from mlthreat.perception.codes import analyse_codes, read_codings
from mlthreat.perception.elicit import AnswersFileIo, Interview, ScriptedIo
from mlthreat.perception.files import (
    TerminalIo,
    answers_io,
    read_perception,
    save_perception,
)
from mlthreat.perception.gaps import with_perceptions
from mlthreat.perception.team import team_view
from mlthreat.pipeline import Pipeline, PipelineSpec, load_pipeline
from mlthreat.probes.runner import (
    BUDGETS,
    KINDS,
    PROBES,
    ProbeRun,
    evidence_for,
    run_probes,
)
from mlthreat.report import FORMATS
from mlthreat.report.common import at_least
from mlthreat.report.progress import ProbeProgress
from mlthreat.report.research import FORMATS as FORMATS_RESEARCH
from mlthreat.report.research import render_codes, render_team
from mlthreat.report.scan import FORMATS as SCAN_FORMATS
from mlthreat.report.scan import render as render_scan
from mlthreat.report.terminal import codes_summary, scan_summary, summary, team_summary
from mlthreat.scanners import SCANNERS, scan_paths
from mlthreat.scanners.dependencies import load_advisories
from mlthreat.scanners.discover import discover, to_yaml
from mlthreat.scanners.evidence import scan_evidence
from mlthreat.vocabulary import Family, RiskLevel

EXIT_OK, EXIT_FINDINGS, EXIT_INPUT, EXIT_TOOL = 0, 1, 2, 3
DEMO_MARKER = ".mlthreat-demo"

EPILOG = """\
examples:
  mlthreat demo                                   threat-model the bundled credit-scoring case
  mlthreat validate pipeline.yaml                 check a spec; every problem with file:line:col
  mlthreat model pipeline.yaml                    summary in the terminal
  mlthreat model pipeline.yaml -f html -o tm.html one self-contained HTML report
  mlthreat model pipeline.yaml --out-dir reports  JSON, Markdown, SARIF and HTML at once
  mlthreat model pipeline.yaml -f sarif -o tm.sarif --fail-on high   for CI code scanning
  mlthreat scan models/ src/ -f sarif -o scan.sarif  model files, secrets, dependencies, serving
  mlthreat discover my-repo/                      draft a spec from a repository
  mlthreat elicit pipeline.yaml -o alice.yaml     interview one person about the pipeline
  mlthreat model pipeline.yaml --perception alice.yaml   what they believe vs what is found
  mlthreat team pipeline.yaml alice.yaml bob.yaml agreement across the team
  mlthreat catalog --family aml                   the adversarial-ML threats mlthreat knows
  mlthreat schema > pipeline.schema.json          JSON Schema of the spec, for editors

exit codes: 0 no finding at or above --fail-on, 1 findings at or above it,
            2 bad usage or bad input, 3 mlthreat itself failed
docs: docs/spec.md (spec format), docs/risk.md (scoring), docs/catalog.md (threats, controls),
      docs/scanning.md (scanners, discover), docs/perception.md (interview, gaps, team, codes)
"""


SCAN_EPILOG = """\
Scanners: modelfile (pickle, joblib, PyTorch, numpy, Keras, ONNX, safetensors, archives and
folders; identified by content, never by extension), secrets (detect-secrets plus model-hub and
tracking-server tokens, notebooks included), dependencies (requirements, pyproject, conda;
--advisories for known-vulnerable versions), serving (FastAPI/Flask by syntax tree, TorchServe).
Nothing scanned is imported or executed.
examples:
  mlthreat scan model.joblib
  mlthreat scan . -f sarif -o scan.sarif --fail-on high
"""

ELICIT_EPILOG = """\
At each component you pick threats by number or write your own words, and name defenses by
letter or in words, with what they are against: 'a against 1, 2; our firewall against 3'.
Answers are saved after every component; run the same command to resume.
Without a terminal, answers come one per line from standard input, or from --answers FILE:
  respondent: p08
  components:
    scoring_api: {threats: "1, people copying our model", defenses: "a against 1",
                  responsibility: "other team: platform", attacker_gain: "no",
                  reason: "never seen it", confidence: medium}
"""


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

    def _probe_runs(self, pipeline: Pipeline, budget: str) -> list[ProbeRun]:
        """Probes with a progress bar; after Ctrl-C, says what finished and stops (exit 130)."""
        only = tuple(getattr(self.args, "only", None) or PROBES)
        unknown = sorted(set(only) - set(KINDS))
        if unknown:
            raise InputError(f"--only: unknown probe(s) {', '.join(unknown)}; choose from "
                             f"{', '.join(PROBES)}")
        picked = getattr(self.args, "component", None) or []
        total = sum(len(KINDS[o]) for o in only) * sum(
            1 for c in pipeline.spec.components if c.probe and (not picked or c.id in picked))
        with ProbeProgress(self.err, total) as bar:
            runs = run_probes(pipeline, only, budget, int(getattr(self.args, "jobs", 1) or 1),
                              bool(getattr(self.args, "trust", False)), observer=bar,
                              components=tuple(getattr(self.args, "component", None) or ()))
        cut = [f"{k} on {r.component}" for r in runs for k in r.interrupted]
        if cut:
            done = [f"{e.probe} on {r.component}" for r in runs for e in r.results]
            raise Interrupted(f"interrupted: finished {', '.join(done) or 'nothing'}; not run: "
                              f"{', '.join(cut)}. Nothing was written.")
        return runs

    def cmd_probe(self) -> int:
        catalog = load_catalog()
        pipeline = load_pipeline(self.args.spec, catalog)
        if not any(c.probe for c in pipeline.spec.components):
            raise InputError(f"{self.args.spec}: no component has a `probe` block; see "
                             "docs/probes.md")
        runs = self._probe_runs(pipeline, self.args.budget)
        data = [{"component": r.component, "evidence": [e.as_item() for e in r.results],
                 "skipped": [{"probe": p, "why": w} for p, w in r.skipped]} for r in runs]
        if self.args.format == "json":
            sys.stdout.write(json.dumps(data, indent=2) + "\n")
            return EXIT_OK
        for r in runs:
            self.out.print(Text(f"{r.component}", style="bold"))
            for e in r.results:
                mark = "confirmed" if e.succeeded else "measured"
                self.out.print(Text(f"  [{e.probe}, {mark}] {e.summary} ({e.queries} queries, "
                                    f"{e.seconds:.1f} s)"))
            for p, why in r.skipped:
                self.out.print(Text(f"  [{p}, skipped] {why}", style="yellow"))
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
        catalog = load_catalog()
        with self.err.status(f"threat-modelling {spec} …"):
            pipeline = load_pipeline(spec, catalog)
            evidence, notes = ({}, []) if getattr(self.args, "no_scan", False) else \
                scan_evidence(pipeline)
            assessment = assess(pipeline, catalog, evidence, tuple(notes))
        if probes:
            runs = self._probe_runs(pipeline, budget)
            for key, items in evidence_for(assessment, runs).items():
                evidence.setdefault(key, []).extend(items)
            notes += [f"{r.component}: {name} probe skipped: {why}" for r in runs
                      for name, why in r.skipped]
            assessment = assess(pipeline, catalog, evidence, tuple(notes))
        with self.err.status("comparing perceptions …"):
            if perceptions:
                assessment = with_perceptions(assessment, pipeline, catalog, perceptions)
            return assessment

    def _write_all(self, assessment: Assessment, out_dir: Path, force: bool) -> None:
        out_dir.mkdir(parents=True, exist_ok=True)
        for name, module in FORMATS.items():
            path = out_dir / f"threat-model.{module.EXTENSION}"
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


def _probe_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--only", type=lambda v: [x.strip() for x in v.split(",") if x.strip()],
                   help=f"comma-separated probes ({', '.join(PROBES)})")
    p.add_argument("--budget", choices=list(BUDGETS), default="standard",
                   help="how hard the simulated attacker tries (default: %(default)s)")
    p.add_argument("--component", action="append", default=[], metavar="ID",
                   help="probe only this component (repeat for several; default: every "
                        "component with a probe block)")
    p.add_argument("--jobs", type=int, default=1,
                   help="parallel retrainings (joblib processes; default: %(default)s)")
    p.add_argument("--trust", action="store_true",
                   help="load model formats the scanner cannot look inside (never a flagged file)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mlthreat", formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG,
        description="Threat-model a whole machine-learning pipeline: adversarial-ML and "
                    "classical security threats, kept apart and linked by the asset they aim at.")
    parser.add_argument("--version", action="version", version=f"mlthreat {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("model", help="threat-model a pipeline spec and report the findings",
                       formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG)
    p.add_argument("spec", help="pipeline spec (YAML); see docs/spec.md")
    p.add_argument("-f", "--format", choices=sorted(FORMATS),
                   help="report format; to stdout unless -o is given")
    p.add_argument("-o", "--output", help="write the report to this file (needs -f)")
    p.add_argument("--out-dir", help="write every format into this folder as threat-model.*")
    p.add_argument("--fail-on", choices=[lvl.value for lvl in RiskLevel if lvl != "info"],
                   help="exit 1 if any finding is at or above this risk level (for CI)")
    p.add_argument("--no-scan", action="store_true",
                   help="do not scan the artifacts the spec names (model files, code)")
    p.add_argument("--perception", action="append", default=[], metavar="FILE",
                   help="compare a person's perception file (docs/perception.md) with the "
                        "findings; repeat for several people")
    p.add_argument("--force", action="store_true", help="overwrite existing output files")
    p.set_defaults(run=Cli.cmd_model)

    for name, helptext in (("assess", "scan the artifacts, run the probes the spec asks for, and "
                                      "report the threat model with the measurements"),):
        p = sub.add_parser(name, help=helptext)
        p.add_argument("spec", help="pipeline spec (YAML)")
        p.add_argument("-f", "--format", choices=sorted(FORMATS))
        p.add_argument("-o", "--output", help="write the report to this file (needs -f)")
        p.add_argument("--out-dir", help="write every format into this folder")
        p.add_argument("--fail-on", choices=[lvl.value for lvl in RiskLevel if lvl != "info"])
        p.add_argument("--perception", action="append", default=[], metavar="FILE")
        _probe_options(p)
        p.add_argument("--force", action="store_true", help="overwrite existing output files")
        p.set_defaults(run=Cli.cmd_model, probes=True, no_scan=False)

    p = sub.add_parser("probe", help="measure attacks on the models the spec names (membership "
                       "inference, extraction, poisoning)")
    p.add_argument("spec", help="pipeline spec (YAML) with `probe` blocks (docs/probes.md)")
    p.add_argument("-f", "--format", choices=["text", "json"], default="text")
    _probe_options(p)
    p.set_defaults(run=Cli.cmd_probe)

    p = sub.add_parser("scan", help="scan model files, code, configs and requirements without "
                       "running any of them", formatter_class=argparse.RawDescriptionHelpFormatter,
                       epilog=SCAN_EPILOG)
    p.add_argument("paths", nargs="+", metavar="PATH", help="files or folders")
    p.add_argument("--only", help=f"comma-separated scanners ({', '.join(SCANNERS)})")
    p.add_argument("--advisories", help="OSV advisory JSON file or folder, to check versions "
                   "(offline; without it vulnerable versions are not checked)")
    p.add_argument("-f", "--format", choices=SCAN_FORMATS)
    p.add_argument("-o", "--output", help="write the report to this file (needs -f)")
    p.add_argument("--fail-on", choices=[lvl.value for lvl in RiskLevel if lvl != "info"],
                   help="exit 1 if any finding is at or above this severity")
    p.add_argument("--force", action="store_true", help="overwrite an existing file")
    p.set_defaults(run=Cli.cmd_scan)

    p = sub.add_parser("discover", help="draft a pipeline spec from a repository (data, "
                       "training code, models, serving apps, DVC, MLflow, CI)")
    p.add_argument("dir", help="the repository's folder")
    p.add_argument("-o", "--output", help="where to write the draft (default DIR/pipeline.yaml; "
                   "'-' for stdout); an existing file is never overwritten")
    p.set_defaults(run=Cli.cmd_discover)

    p = sub.add_parser("validate", help="check a pipeline spec and report every problem")
    p.add_argument("spec", help="pipeline spec (YAML)")
    p.set_defaults(run=Cli.cmd_validate)

    p = sub.add_parser("demo", help="assess a bundled example (scan, quick probes, perceptions) "
                       "and write all reports")
    p.add_argument("--out", default="mlthreat-demo", help="folder for the reports "
                   "(default: %(default)s)")
    p.add_argument("--example", default=REFERENCE,
                   help=f"bundled example (default: %(default)s; others: "
                        f"{', '.join(e for e in list_examples() if e != REFERENCE)})")
    p.add_argument("--force", action="store_true", help="write into a folder that has other files")
    p.set_defaults(run=Cli.cmd_demo)

    p = sub.add_parser("elicit", help="interview one person about the pipeline, component by "
                       "component, and write their perception file",
                       formatter_class=argparse.RawDescriptionHelpFormatter, epilog=ELICIT_EPILOG)
    p.add_argument("spec", help="pipeline spec (YAML)")
    p.add_argument("-o", "--output", required=True, help="perception file to write (YAML); "
                   "an unfinished one is resumed")
    p.add_argument("--respondent", help="the person's name or id")
    p.add_argument("--role", help="their role, e.g. 'data scientist'")
    p.add_argument("--team", help="their team, as component owners are named in the spec")
    p.add_argument("--answers", help="take the answers from this YAML file instead of asking")
    p.add_argument("--force", action="store_true", help="start over on a finished file")
    p.set_defaults(run=Cli.cmd_elicit)

    p = sub.add_parser("team", help="agreement of several people's perceptions, where they "
                       "disagree, and which concepts they link")
    p.add_argument("spec", help="pipeline spec (YAML)")
    p.add_argument("perceptions", nargs="+", help="perception files, one per person")
    p.add_argument("-f", "--format", choices=FORMATS_RESEARCH)
    p.add_argument("-o", "--output", help="write the report to this file (needs -f)")
    p.add_argument("--force", action="store_true", help="overwrite an existing file")
    p.set_defaults(run=Cli.cmd_team)

    p = sub.add_parser("codes", help="research mode: frequencies, coder agreement and "
                       "co-occurrence of coded interview data (CSV or REFI-QDA)")
    p.add_argument("file", help="CSV with participant, segment, coder, code; or .qdpx/.qde")
    p.add_argument("--unit", choices=["participant", "segment"], default="participant",
                   help="count co-occurrence per participant (default) or per segment")
    p.add_argument("-f", "--format", choices=FORMATS_RESEARCH)
    p.add_argument("-o", "--output", help="write the report to this file (needs -f)")
    p.add_argument("--force", action="store_true", help="overwrite an existing file")
    p.set_defaults(run=Cli.cmd_codes)

    p = sub.add_parser("schema", help="print the JSON Schema of the pipeline spec")
    p.add_argument("-o", "--output", help="write it to this file instead of stdout")
    p.add_argument("--force", action="store_true", help="overwrite an existing file")
    p.set_defaults(run=Cli.cmd_schema)

    p = sub.add_parser("catalog", help="list the threats (or controls) mlthreat knows")
    p.add_argument("--family", choices=[f.value for f in Family])
    p.add_argument("--controls", action="store_true", help="list controls instead of threats")
    p.add_argument("-f", "--format", choices=["text", "json"], default="text")
    p.set_defaults(run=Cli.cmd_catalog)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "output", None) and getattr(args, "format", "x") is None:
        parser.error("-o/--output needs -f/--format (or use --out-dir for every format)")
    cli = Cli(args)
    run: Callable[[Cli], int] = args.run
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
