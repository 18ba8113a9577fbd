"""`elicit`, `team` and `codes`: what people on the team believe, asked at the terminal (or
from piped answers or an answers file), and compared across people."""

from __future__ import annotations

import sys
from pathlib import Path

from rich.console import Console
from rich.text import Text

from mlthreat.assessor import Assessor
from mlthreat.catalog import load_catalog
from mlthreat.cli.app import Cli
from mlthreat.cli.terminal import codes_summary, team_summary
from mlthreat.errors import EXIT_INTERRUPTED, EXIT_OK, InputError, OutputError
from mlthreat.perception import Mappers, Perception, load_perception
from mlthreat.perception.elicit import AnswersFileIo, Interview, ScriptedIo
from mlthreat.perception.files import answers_io, read_perception, save_perception
from mlthreat.pipeline import Pipeline, load_pipeline


class TerminalIo:
    """The interview at a terminal: prompts in bold, taken as plain text (a prompt's option list
    such as "[yes / no / unsure]" is shown, not read as markup)."""

    interactive = True

    def __init__(self, console: Console) -> None:
        self.console = console

    def ask(self, component: str, question: str, prompt: str) -> str:
        return self.console.input(Text.assemble((prompt, "bold"), "\n> "))

    def say(self, text: str) -> None:
        self.console.print(Text(text))


def cmd_team(cli: Cli) -> int:
    output = cli.output()
    catalog = load_catalog()
    pipeline = load_pipeline(cli.args.spec, catalog)
    if len(cli.args.perceptions) < 2:
        raise InputError("a team view needs at least two perception files")
    from mlthreat.perception.team import team_view
    from mlthreat.report.research import render_team
    with cli.err.status("comparing perceptions …"):
        assessment = Assessor(catalog, scan=False).assess(pipeline)
        mappers = Mappers.for_catalog(catalog)
        people = [load_perception(f, pipeline, catalog, mappers) for f in cli.args.perceptions]
        view = team_view(people, assessment, catalog)
    cli.emit(render_team(view, cli.args.format or "md"), team_summary(view), output)
    return EXIT_OK


def cmd_codes(cli: Cli) -> int:
    from mlthreat.perception.codes import analyse_codes, read_codings
    from mlthreat.report.research import render_codes
    output = cli.output()
    report = analyse_codes(read_codings(cli.args.file), Path(cli.args.file).name, cli.args.unit,
                           cli.args.scope)
    cli.emit(render_codes(report, cli.args.format or "md"), codes_summary(report), output)
    return EXIT_OK


def cmd_elicit(cli: Cli) -> int:
    args = cli.args
    catalog = load_catalog()
    pipeline = load_pipeline(args.spec, catalog)
    out = Path(args.output)
    io = _io(cli, pipeline)
    start = _start(cli, out, pipeline.spec.name, io)
    from mlthreat.perception.loader import Mappers
    interview = Interview(pipeline, catalog, Assessor(catalog, scan=False).assess(pipeline), io,
                          save=lambda p: save_perception(p, out),
                          mappers=Mappers.for_catalog(catalog))
    only = io.covers if isinstance(io, AnswersFileIo) else None
    try:
        done = interview.run(start, only)
    except (EOFError, KeyboardInterrupt) as exc:
        cli.err.print(Text(f"interview paused; answers so far are in {out}. Run the same "
                           "command to resume.", style="yellow"))
        return EXIT_INTERRUPTED if isinstance(exc, KeyboardInterrupt) else EXIT_OK
    cli.out.print(f"wrote {out}: {len(done.views)} components answered. Compare it with "
                  f"`mlthreat model {args.spec} --perception {out}`")
    return EXIT_OK


def _start(cli: Cli, out: Path, name: str, io: AnswersFileIo | ScriptedIo | TerminalIo
           ) -> Perception:
    """The unfinished file to resume, or a new one for the respondent."""
    if out.exists():
        existing = read_perception(out)
        if not existing.complete:
            cli.err.print(f"resuming the interview in {out} "
                          f"({len(existing.views)} components answered)")
            return existing
        if not (cli.args.force or cli.confirm(out)):
            raise OutputError(f"{out}: holds a finished interview; not overwritten. Use "
                              "--force or another -o")
    elif not out.parent.exists():
        raise OutputError(f"{out}: folder {out.parent} does not exist")
    given = io.identity if isinstance(io, AnswersFileIo) else {}
    who = {k: getattr(cli.args, k) or given.get(k) for k in ("respondent", "role", "team")}
    if not who["respondent"]:
        if not io.interactive:
            raise InputError("--respondent is required without a terminal "
                             "(or set 'respondent:' in the answers file)")
        who["respondent"] = cli.err.input("Your name or id: ").strip() or "anonymous"
    return Perception(pipeline=name, complete=False, **who)


def _io(cli: Cli, pipeline: Pipeline) -> AnswersFileIo | ScriptedIo | TerminalIo:
    if cli.args.answers:
        return answers_io(Path(cli.args.answers), pipeline)
    if sys.stdin.isatty():
        return TerminalIo(cli.err)
    return ScriptedIo([line.rstrip("\n") for line in sys.stdin],
                      say=lambda text: cli.err.print(Text(text)))
