"""Evidence from a garak report (https://github.com/NVIDIA/garak): its `eval` entries, one per
probe and detector, become one piece of evidence per probe at the component garak tested.

A garak run writes `<prefix>.report.jsonl`: a `start_run setup` entry (the configuration, with
the target), `init`, one `attempt` entry per prompt, one `eval` entry per (probe, detector) with
`passed` and `fails` counts (a fail is a prompt where the detector saw the attack work), and
`completion`. Only the `eval` entries and the setup are read; attempts are not needed. The file
may be gzip-compressed (`.gz`). Which catalog threats a garak probe measures is catalog data
(`catalog/data/external.yaml`); the attack success rate comes with its Wilson interval.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from statsmodels.stats.proportion import proportion_confint

from mlthreat.errors import DataError
from mlthreat.results import Evidence

SOURCE = "external:garak"


@dataclass(frozen=True)
class GarakResult:
    """One probe's worst detector: how many prompts were judged, and how many the attack won."""

    probe: str
    detector: str
    fails: int
    evaluated: int

    @property
    def rate(self) -> float:
        return self.fails / self.evaluated


def _entries(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", encoding="utf-8") as fh:
            for number, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                try:
                    entry = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise DataError(f"{path}:{number}: not a JSON line ({exc.msg}); a garak report "
                                    "is its `<prefix>.report.jsonl`, one JSON object per line"
                                    ) from exc
                if not isinstance(entry, dict) or "entry_type" not in entry:
                    raise DataError(f"{path}:{number}: no `entry_type`: not a garak report line")
                yield number, entry
    except OSError as exc:
        raise DataError(f"{path}: cannot be read ({exc.strerror or exc})") from exc
    except (UnicodeDecodeError, EOFError, gzip.BadGzipFile) as exc:
        raise DataError(f"{path}: not a text or gzip-compressed garak report ({exc})") from exc


def read_report(path: Path) -> tuple[list[GarakResult], dict[str, Any]]:
    """Each probe's worst detector, and the run's facts (garak version, target)."""
    worst: dict[str, GarakResult] = {}
    run: dict[str, Any] = {}
    for number, entry in _entries(path):
        kind = entry["entry_type"]
        if kind == "init":
            run["garak_version"] = entry.get("garak_version")
            run["run"] = entry.get("run")
        elif kind == "start_run setup":
            run["target"] = ".".join(str(entry[k]) for k in
                                     ("plugins.target_type", "plugins.target_name")
                                     if entry.get(k))
            run["generations"] = entry.get("run.generations")
        elif kind == "eval":
            try:
                probe, detector = str(entry["probe"]), str(entry["detector"])
                fails, evaluated = int(entry["fails"]), int(entry["total_evaluated"])
            except (KeyError, TypeError, ValueError) as exc:
                raise DataError(f"{path}:{number}: an eval entry without probe, detector, fails "
                                f"and total_evaluated ({exc})") from exc
            if evaluated <= 0:
                continue                 # every output was unjudged (nones): no measurement
            result = GarakResult(probe, detector, fails, evaluated)
            if probe not in worst or result.rate > worst[probe].rate:
                worst[probe] = result
    if "garak_version" not in run:
        raise DataError(f"{path}: no `init` entry: not a garak report (garak writes "
                        "`<prefix>.report.jsonl` under ~/.local/share/garak/garak_runs/)")
    if not worst:
        raise DataError(f"{path}: no `eval` entry: the garak run did not finish evaluating any "
                        "probe; run it to the end and give its report")
    return sorted(worst.values(), key=lambda r: r.probe), run


def _pct(x: float) -> str:
    return f"{100 * x:.0f} %"


def threats_of(probe: str, mapping: Mapping[str, tuple[str, ...]]) -> tuple[str, ...]:
    """The catalog threats a garak probe (`module.Class`) measures: by class, else by module."""
    return mapping.get(probe) or mapping.get(probe.split(".", 1)[0], ())


def garak_evidence(path: Path, component: str, mapping: Mapping[str, tuple[str, ...]]
                   ) -> tuple[list[Evidence], list[str]]:
    """Evidence at `component`, one per probe that measures a catalog threat, and notes naming
    the probes that measure none."""
    results, run = read_report(path)
    target = run.get("target") or "an unnamed target"
    evidence, unmapped = [], []
    for r in results:
        threats = threats_of(r.probe, mapping)
        if not threats:
            unmapped.append(r.probe)
            continue
        low, high = proportion_confint(r.fails, r.evaluated, alpha=0.05, method="wilson")
        evidence.append(Evidence(
            source=SOURCE, threat_ids=threats, metric="attack_success_rate", value=r.rate,
            interval=(float(low), float(high)), confirmed=r.fails > 0,
            summary=(f"garak {r.probe}: the attack worked on {r.fails} of {r.evaluated} prompts, "
                     f"{_pct(r.rate)} [{_pct(low)}, {_pct(high)}] (detector {r.detector}), "
                     f"against {target}"),
            component=component, artifact=str(path), title=f"garak {r.probe}",
            parameters={"probe": r.probe, "detector": r.detector, "target": target,
                        "generations": run.get("generations")},
            extra={"garak_version": run.get("garak_version"), "run": run.get("run")},
            queries=r.evaluated))
    notes = [f"{component}: garak probes that measure no catalog threat, not attached to a "
             f"finding: {', '.join(unmapped)}"] if unmapped else []
    return evidence, notes
