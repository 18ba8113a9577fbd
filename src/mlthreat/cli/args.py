"""The mlthreat command line's arguments: every command, its options and the help that teaches
them. `build_parser()` names each command's handler as "module:function" under `mlthreat.cli`,
imported only when it runs. The names offered as choices are the registries' own, listed here as
constants so that building the parser imports no probe, scanner or report format (a test checks
that they match the registries)."""

from __future__ import annotations

import argparse

from mlthreat.examples import REFERENCE, list_examples
from mlthreat.processes import usable_cores
from mlthreat.version import __version__
from mlthreat.vocabulary import Family, RiskLevel

# the registries' names (tests/test_cli.py checks them against the registries)
FORMATS = ("html", "json", "md", "sarif")              # mlthreat.report.FORMATS
SCAN_FORMATS = ("json", "md", "sarif", "html")         # mlthreat.report.scan.FORMATS
FORMATS_RESEARCH = ("json", "md", "html")              # mlthreat.report.research.FORMATS
SCANNERS = ("modelfile", "secrets", "dependencies", "serving", "workflows")   # mlthreat.scanners.SCANNERS
BUDGETS = ("quick", "standard", "thorough")            # mlthreat.probes.target.BUDGETS
SETTING_COMMANDS = ("model", "assess", "probe", "scan")   # commands a settings file sets


BOARD_EPILOG = """\
The board runs on this machine at the address it prints, which carries a random token: every
request without it is refused. It saves only under the folder it was started in, keeping the
spec's comments and order, and only a spec that passes `mlthreat validate`.

examples:
  mlthreat board pipeline.yaml                    draw on an existing spec, save it back
  mlthreat board new.yaml --no-open               start empty; open the printed address yourself
  mlthreat board pipeline.yaml --evidence reports/threat-model.json   with the probes' results
  mlthreat board pipeline.yaml --host 10.0.0.5 --port 8765   a workshop on the local network
"""


EPILOG = """\
examples:
  mlthreat demo                                   threat-model the bundled credit-scoring case
  mlthreat validate pipeline.yaml                 check a spec; every problem with file:line:col
  mlthreat model pipeline.yaml                    summary in the terminal
  mlthreat model pipeline.yaml -f html -o tm.html one self-contained HTML report
  mlthreat model pipeline.yaml --out-dir reports  JSON, Markdown, SARIF and HTML at once
  mlthreat model pipeline.yaml -f sarif -o tm.sarif --fail-on high   for CI code scanning
  mlthreat model pipeline.yaml --view eu-ai-act -f html -o art15.html   EU AI Act Art. 15 view
  mlthreat scan models/ src/ -f sarif -o scan.sarif  model files, secrets, dependencies, serving
  mlthreat discover my-repo/                      draft a spec from a repository
  mlthreat elicit pipeline.yaml -o alice.yaml     interview one person about the pipeline
  mlthreat model pipeline.yaml --perception alice.yaml   what they believe vs what is found
  mlthreat team pipeline.yaml alice.yaml bob.yaml agreement across the team
  mlthreat board pipeline.yaml                    draw the pipeline in a browser, threats live
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
--advisories for known-vulnerable versions), serving (FastAPI/Flask by syntax tree, TorchServe,
Dockerfiles), workflows (GitHub Actions: pull-request code run with secrets, script injection,
secrets in logs, unreviewed deploys, unpinned third-party actions).
Nothing scanned is imported or executed.
Object stores and other fsspec URLs (s3://, gs://, az://; with the extra s3, gcs or azure:
s3fs, gcsfs, adlfs) are read by the model-file scanner, fetching only the byte ranges a format
needs (a safetensors header, a PyTorch archive's pickles), with the credentials of this machine.
examples:
  mlthreat scan model.joblib
  mlthreat scan . -f sarif -o scan.sarif --fail-on high
  mlthreat scan s3://models/prod/ --fail-on high          every object under the prefix
  mlthreat scan --from-list registry.txt --scheduler tcp://10.0.0.5:8786 -f json -o scan.json
"""

PROBE_EPILOG = """\
probes (--only; each group runs the kinds that fit the model, and says why it skips others):
  membership  which rows was the model trained on? (reference models, LiRA-style; needs scores)
  extraction  how faithful a copy do the interface's answers buy? (fidelity vs queries; for
              images also a copy from a few images plus synthetic queries)
  poisoning   random and targeted label flips, and a backdoor trigger (retrains the model;
              for images also a clean-label backdoor)
  evasion     white-box PGD (models with gradients), black-box (labels or scores, per-point
              query budget), transfer (PGD on a copy), and for tree ensembles held as a file
              the exact smallest change (certified, a MILP per point); every change respects
              the spec's constraints and goal. Images: the Square attack and a sticker; text:
              misspellings and WordNet synonym swaps

budgets: quick (50 points, 100 queries each, 8 reference models, 2 seeds; exact: 10 points,
         5 s each), standard (100, 200, 16, 3; exact: 25, 10 s), thorough (200, 400, 64, 5;
         exact: 200 points, 10 s, in L2, L-infinity and L1)

examples:
  mlthreat probe pipeline.yaml --budget quick
  mlthreat probe pipeline.yaml --only evasion --component scoring_api -f json
  mlthreat assess pipeline.yaml --out-dir reports     # probes + scan + threat model

Probes run side by side in worker processes, one per core (--jobs auto, the default), each
loading the models itself through the scanner; --jobs 1 runs them one after the other in this
process. Ctrl-C stops cleanly, says which probes finished, and exits 130. See docs/probes.md.
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


CONFIG_EPILOG = """\
Settings files (TOML) hold every option a command takes, by its flag's name:
  # mlthreat.toml (or [tool.mlthreat] in pyproject.toml)
  fail-on = "high"                 # every command that has --fail-on
  baseline = "mlthreat-baseline.yaml"
  [scan]                           # this command only; wins over the top
  exclude = ["tests/fixtures/*"]
  advisories = "osv/"
  [assess]
  budget = "quick"
A flag on the command line wins over both. Paths are relative to the settings file.
Not settable (they stay on the command line): -o/--output, --force, --debug.
"""

BASELINE_EPILOG = """\
examples:
  mlthreat scan . -f sarif -o scan.sarif
  mlthreat baseline create scan.sarif --by alice --reason "reviewed 2026-12-02, see SEC-12" \\
      --until 2027-06-30
  mlthreat scan . --baseline mlthreat-baseline.yaml --fail-on high     # fails on new ones only
  mlthreat baseline update scan.sarif -o mlthreat-baseline.yaml --by alice --reason "..."
A finding stays accepted while it is not worse: a higher risk, or (model/assess) a probe's
measured attack success above the accepted value's interval, makes it fail again; so does the
--until date passing. See docs/ci.md.
"""


def iso_date(value: str) -> str:
    import datetime as dt
    try:
        return dt.date.fromisoformat(value).isoformat()
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a date; write YYYY-MM-DD") from None


def jobs_arg(value: str) -> int:
    """`--jobs`: a whole number of at least 1, or `auto` (the cores this process may use)."""
    if value.strip().lower() == "auto":
        return usable_cores()
    try:
        jobs = int(value)
    except ValueError:
        jobs = 0
    if jobs < 1:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number of worker processes; "
                                         "give a whole number of at least 1, or auto")
    return jobs


def _probe_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--only", type=lambda v: [x.strip() for x in v.split(",") if x.strip()],
                   help="comma-separated probes, as listed below (default: all)")
    p.add_argument("--budget", choices=list(BUDGETS), default="standard",
                   help="how hard the simulated attacker tries (default: %(default)s)")
    p.add_argument("--component", action="append", default=[], metavar="ID",
                   help="probe only this component (repeat for several; default: every "
                        "component with a probe block)")
    p.add_argument("--jobs", type=jobs_arg, default="auto", metavar="N|auto",
                   help="run the probes in N worker processes (joblib); 1 runs them one after "
                        "the other in this process; the results do not depend on N (default: "
                        f"auto, the cores this process may use: {usable_cores()} here)")
    p.add_argument("--trust", action="store_true",
                   help="load model formats the scanner cannot look inside, and TorchScript "
                        "programs (code, by PyTorch's own policy); never a flagged file")
    _scheduler_option(p, "the probes and their retrainings")


def _scheduler_option(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help=f"run {what} on a Dask cluster: a scheduler's address "
                        "(tcp://host:8786), or local[:N] for N worker processes on this "
                        "machine; needs the cluster extra (distributed) here and on every worker (default: "
                        "$MLTHREAT_SCHEDULER, else none: this machine only; docs/cluster.md)")


def _settings_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", metavar="FILE",
                   help="settings file to use (default: the first mlthreat.toml, .mlthreat.toml "
                        "or pyproject.toml with [tool.mlthreat] from the spec or path upwards "
                        "to the repository's root; see docs/ci.md)")
    p.add_argument("--no-config", action="store_true", help="ignore every settings file")


# the regulation views (mlthreat.catalog.views.VIEWS; named here so that parsing the command
# line does not load the catalog)
VIEWS = ("eu-ai-act", "nist-ai-rmf")


def _evidence_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--evidence", action="append", default=[], metavar="FILE[@COMPONENT]",
                   help="attach another tool's measurements: a garak report (its "
                        "<prefix>.report.jsonl, or .jsonl.gz) of the model or application at "
                        "COMPONENT (default: the spec's only hosted_model or llm); each probe's "
                        "attack success rate goes to the findings it measures (docs/probes.md, "
                        "garak); repeat for several reports")


def _view_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--view", action="append", default=[], choices=VIEWS, metavar="NAME",
                   help="a regulation view: per clause, the threats that apply, what was "
                        "measured, the controls in place and what is missing; eu-ai-act "
                        "(Art. 15) or nist-ai-rmf. With -f md|json|html the report is the "
                        "view; with --out-dir it is written beside the reports as NAME.*; "
                        "alone it is shown here (docs/compliance.md)")


def _gate_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--baseline", metavar="FILE",
                   help="accepted findings (`mlthreat baseline create`): they are reported as "
                        "suppressed and do not fail --fail-on, unless they got worse or their "
                        "acceptance expired")
    p.add_argument("--new-since", metavar="FILE",
                   help="fail only on findings that are new or worse than in FILE (a baseline "
                        "or an earlier SARIF report of the same command); without --fail-on, "
                        "any new finding fails")
    p.add_argument("--diff-base", metavar="GIT_REF",
                   help="like --new-since, comparing with the same command run on the "
                        "repository at GIT_REF (e.g. origin/main)")


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
    _evidence_option(p)
    _view_option(p)
    _gate_options(p)
    _settings_options(p)
    p.set_defaults(run="modelling:cmd_model")

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
        _evidence_option(p)
        _view_option(p)
        _gate_options(p)
        _settings_options(p)
        p.set_defaults(run="modelling:cmd_model", probes=True, no_scan=False)

    p = sub.add_parser("probe", help="measure attacks on the models the spec names (membership "
                       "inference, extraction, poisoning, evasion)",
                       formatter_class=argparse.RawDescriptionHelpFormatter, epilog=PROBE_EPILOG)
    p.add_argument("spec", help="pipeline spec (YAML) with `probe` blocks (docs/probes.md)")
    p.add_argument("-f", "--format", choices=["text", "json"], default="text")
    _probe_options(p)
    _settings_options(p)
    p.set_defaults(run="modelling:cmd_probe")

    p = sub.add_parser("scan", help="scan model files, code, configs and requirements without "
                       "running any of them", formatter_class=argparse.RawDescriptionHelpFormatter,
                       epilog=SCAN_EPILOG)
    p.add_argument("paths", nargs="*", metavar="PATH",
                   help="files, folders or URLs (s3://bucket/prefix/, gs://..., file://...)")
    p.add_argument("--from-list", metavar="FILE",
                   help="also scan every path or URL listed in FILE, one a line (# comments; "
                        "relative paths from FILE's folder): a registry's manifest")
    p.add_argument("--only", help=f"comma-separated scanners ({', '.join(SCANNERS)})")
    p.add_argument("--advisories", help="OSV advisory JSON file or folder, to check versions "
                   "(offline; without it vulnerable versions are not checked)")
    p.add_argument("-f", "--format", choices=SCAN_FORMATS)
    p.add_argument("-o", "--output", help="write the report to this file (needs -f)")
    p.add_argument("--fail-on", choices=[lvl.value for lvl in RiskLevel if lvl != "info"],
                   help="exit 1 if any finding is at or above this severity")
    p.add_argument("--exclude", action="append", default=[], metavar="PATTERN",
                   help="skip files whose path matches this glob, relative to the scanned "
                        "folder (e.g. 'tests/fixtures/*'; repeat for several)")
    p.add_argument("--force", action="store_true", help="overwrite an existing file")
    _scheduler_option(p, "the scan (files in batches; local paths must be the same on the "
                         "workers)")
    _gate_options(p)
    _settings_options(p)
    p.set_defaults(run="scanning:cmd_scan")

    p = sub.add_parser("discover", help="draft a pipeline spec from a repository (data, "
                       "training code, models, serving apps, DVC, MLflow, CI)")
    p.add_argument("dir", help="the repository's folder")
    p.add_argument("-o", "--output", help="where to write the draft (default DIR/pipeline.yaml; "
                   "'-' for stdout); an existing file is never overwritten")
    p.set_defaults(run="scanning:cmd_discover")

    p = sub.add_parser("validate", help="check a pipeline spec and report every problem")
    p.add_argument("spec", help="pipeline spec (YAML)")
    p.set_defaults(run="info:cmd_validate")

    p = sub.add_parser("demo", help="assess a bundled example (scan, quick probes, perceptions) "
                       "and write all reports")
    p.add_argument("--out", default="mlthreat-demo", help="folder for the reports "
                   "(default: %(default)s)")
    p.add_argument("--example", default=REFERENCE,
                   help=f"bundled example (default: %(default)s; others: "
                        f"{', '.join(e for e in list_examples() if e != REFERENCE)})")
    p.add_argument("--force", action="store_true", help="write into a folder that has other files")
    p.set_defaults(run="modelling:cmd_demo")

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
    p.set_defaults(run="people:cmd_elicit")

    p = sub.add_parser("board", help="the workshop board: draw the pipeline in a browser and "
                       "see both families of threats appear as you draw",
                       formatter_class=argparse.RawDescriptionHelpFormatter, epilog=BOARD_EPILOG)
    p.add_argument("spec", nargs="?", help="spec to open (YAML); a missing file is created on "
                   "the first save; without one the board starts empty")
    p.add_argument("--port", type=int, default=0, help="port to listen on (default: a free one)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: "
                   "%(default)s, this machine only); another address lets others join, with "
                   "the token, and is warned about")
    p.add_argument("--no-open", action="store_true", help="print the address, do not open a "
                   "browser")
    p.add_argument("--evidence", metavar="REPORT.json", help="show what an earlier `mlthreat "
                   "assess` measured and scanned (its JSON report) on the components it "
                   "concerns")
    p.set_defaults(run="board:cmd_board")

    p = sub.add_parser("team", help="agreement of several people's perceptions, where they "
                       "disagree, and which concepts they link")
    p.add_argument("spec", help="pipeline spec (YAML)")
    p.add_argument("perceptions", nargs="+", help="perception files, one per person")
    p.add_argument("-f", "--format", choices=FORMATS_RESEARCH)
    p.add_argument("-o", "--output", help="write the report to this file (needs -f)")
    p.add_argument("--force", action="store_true", help="overwrite an existing file")
    p.set_defaults(run="people:cmd_team")

    p = sub.add_parser("codes", help="research mode: frequencies, coder agreement and "
                       "co-occurrence of coded interview data (CSV or REFI-QDA)")
    p.add_argument("file", help="CSV with participant, segment, coder, code; or .qdpx/.qde")
    p.add_argument("--unit", choices=["participant", "segment"], default="participant",
                   help="count co-occurrence per participant (default) or per segment")
    p.add_argument("--scope", choices=["all", "seen"], default="all",
                   help="segments that count for a coder's agreement: all of the project "
                        "(default; a segment left without a code is 'not coded'), or only those "
                        "the coder has a row for (an empty code marks a segment read, for "
                        "projects where coders split the material)")
    p.add_argument("-f", "--format", choices=FORMATS_RESEARCH)
    p.add_argument("-o", "--output", help="write the report to this file (needs -f)")
    p.add_argument("--force", action="store_true", help="overwrite an existing file")
    p.set_defaults(run="people:cmd_codes")

    p = sub.add_parser("schema", help="print the JSON Schema of the pipeline spec")
    p.add_argument("-o", "--output", help="write it to this file instead of stdout")
    p.add_argument("--force", action="store_true", help="overwrite an existing file")
    p.set_defaults(run="info:cmd_schema")

    p = sub.add_parser("config", help="show the settings a command would use and where each "
                       "comes from (default, or file:line of a settings file)",
                       formatter_class=argparse.RawDescriptionHelpFormatter, epilog=CONFIG_EPILOG)
    p.add_argument("path", nargs="?", default=".", help="a spec or folder: settings are looked "
                   "for from there upwards (default: here)")
    p.add_argument("--for", dest="for_command", action="append", default=[], metavar="COMMAND",
                   choices=SETTING_COMMANDS, help="only this command's settings (repeat for "
                   f"several; default: {', '.join(SETTING_COMMANDS)})")
    p.add_argument("-f", "--format", choices=["text", "json"], default="text")
    _settings_options(p)
    p.set_defaults(run="gating:cmd_config")

    p = sub.add_parser("baseline", help="accept the findings of a SARIF report (who, why, until "
                       "when) so that CI fails only on new or worse ones",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       epilog=BASELINE_EPILOG)
    p.add_argument("action", choices=["create", "update", "show"],
                   help="create a new file, update one (add new findings, drop fixed ones, keep "
                        "earlier acceptances), or show one with what expired")
    p.add_argument("report", nargs="?", help="SARIF report of `mlthreat scan` or `mlthreat "
                   "model/assess` (create, update)")
    p.add_argument("-o", "--output", default="mlthreat-baseline.yaml", help="the baseline file "
                   "(default: %(default)s); create never overwrites one")
    p.add_argument("--by", help="who accepts these findings (required for new acceptances)")
    p.add_argument("--reason", help="why they are accepted (required for new acceptances)")
    p.add_argument("--until", type=iso_date, help="date (YYYY-MM-DD) after which they fail "
                   "the gate again (default: none; auditors like one)")
    p.set_defaults(run="gating:cmd_baseline")

    p = sub.add_parser("catalog", help="list the threats (or controls) mlthreat knows")
    p.add_argument("--family", choices=[f.value for f in Family])
    p.add_argument("--controls", action="store_true", help="list controls instead of threats")
    p.add_argument("-f", "--format", choices=["text", "json"], default="text")
    p.set_defaults(run="info:cmd_catalog")
    return parser
