"""The CI gate's memory: which findings a team has accepted, and which are new or got worse.

Every finding has a stable fingerprint (the SARIF `partialFingerprints`): a threat-model finding
by its threat and component, a scan finding by its rule, file (relative to the project's root),
archive member and message, never by its line, so that code moving down a file keeps it. A
baseline file (YAML, reviewed like code) holds accepted findings with who accepted them, why and
until when; `triage` compares a run's findings with it: new, unchanged, or updated when the risk
rose or a measured attack got easier (a probe's success value above the accepted one's interval).
Accepted, unexpired and not worse means suppressed; so does a comment at the place a finding
points to, `# mlthreat: ignore[rule] reason`, whose reason is required.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import re
import subprocess
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mlthreat.errors import InputError
from mlthreat.results import Assessment, Evidence, Finding, Suppression, Triage
from mlthreat.scanners.interface import ScanFinding
from mlthreat.scanners.secrets import BASELINE_MARK
from mlthreat.vocabulary import RISK_ORDER, RiskLevel

BASELINE_VERSION = 1
SCAN_KEY, FINDING_KEY = "mlthreatScan/v1", "mlthreatFinding/v1"
IGNORE = re.compile(r"#\s*mlthreat:\s*ignore\[([^\]]*)\]\s*(.*?)\s*$")


def finding_fingerprint(finding: Finding) -> str:
    return hashlib.sha256(finding.id.encode()).hexdigest()[:32]


def scan_fingerprint(f: ScanFinding, root: Path | None = None) -> str:
    """By rule, file, member and message; the file relative to `root` where it lies below it,
    so a scan of the same tree from elsewhere (a CI checkout, an older commit) matches."""
    name = Path(f.file)
    if root is not None:
        with contextlib.suppress(ValueError, OSError):
            name = name.resolve().relative_to(root.resolve())
    return hashlib.sha256(f"{f.rule}|{name.as_posix()}|{f.member}|{f.message}".encode()
                          ).hexdigest()[:32]


@dataclass(frozen=True)
class Item:
    """One finding as the gate sees it, whatever produced it."""

    fingerprint: str
    finding: str                  # Finding.id, or the fingerprint for scan findings
    rules: tuple[str, ...]        # names an inline comment may use: rule id, threat id
    where: str                    # file:line, for people
    level: str
    file: str | None = None       # where an inline comment may sit
    line: int | None = None
    score: float | None = None
    measured: dict[str, tuple[float, float | None]] = field(default_factory=dict)


def assessment_items(a: Assessment, spec: str | Path | None = None) -> list[Item]:
    """The findings of an assessment; `spec`, the spec file as this process can read it (for
    inline comments; by default the report's name of it)."""
    return [Item(finding_fingerprint(f), f.id, (f.threat_id,),
                 f"{a.spec_file}:{f.spec_line} ({f.component})", f.level.value,
                 str(spec or a.spec_file), f.spec_line, f.score, measurements(a.evidence_of(f)))
            for f in a.findings]


def measurements(evidence: Iterable[Evidence]) -> dict[str, tuple[float, float | None]]:
    """Each probe's measurement of a finding, by `probe/metric`: the highest value with its
    interval's upper end (what a later run is compared with)."""
    out: dict[str, tuple[float, float | None]] = {}
    for e in evidence:
        if e.source.startswith("probe:") and e.value is not None:
            key = f"{e.source.removeprefix('probe:')}/{e.metric}"
            if key not in out or e.value > out[key][0]:
                out[key] = (e.value, e.interval[1] if e.interval else None)
    return out


def scan_items(findings: Iterable[ScanFinding], root: Path | None = None) -> list[Item]:
    out = []
    for f in findings:
        fp = scan_fingerprint(f, root)
        out.append(Item(fp, fp, (f.rule, f.threat_id), f.where, f.severity, f.file, f.line))
    return out


# ----------------------------------------------------------------------------- baseline files
@dataclass(frozen=True)
class Accepted:
    fingerprint: str
    rule: str
    where: str
    level: str
    by: str
    reason: str
    until: str | None = None
    score: float | None = None
    measured: dict[str, tuple[float, float | None]] = field(default_factory=dict)

    def expired(self, today: dt.date) -> bool:
        return self.until is not None and dt.date.fromisoformat(self.until) < today


@dataclass(frozen=True)
class Baseline:
    path: Path
    accepted: dict[str, Accepted]


def _entry(raw: Any, where: str) -> Accepted:
    if not isinstance(raw, dict):
        raise InputError(f"{where}: an accepted finding is a mapping with fingerprint, rule, "
                         "by, reason (and until)")
    missing = [k for k in ("fingerprint", "rule", "level", "by", "reason") if not raw.get(k)]
    if missing:
        raise InputError(f"{where}: {', '.join(missing)} missing; every acceptance says who "
                         "accepted it and why")
    until = raw.get("until")
    if until is not None:
        try:
            until = dt.date.fromisoformat(str(until)).isoformat()
        except ValueError as exc:
            raise InputError(f"{where}: until {until!r} is not a date (YYYY-MM-DD)") from exc
    measured = {str(k): (float(v["value"]), None if v.get("high") is None else float(v["high"]))
                for k, v in (raw.get("measured") or {}).items()}
    return Accepted(str(raw["fingerprint"]), str(raw["rule"]), str(raw.get("where", "")),
                    str(raw["level"]), str(raw["by"]), str(raw["reason"]), until,
                    None if raw.get("score") is None else float(raw["score"]), measured)


def load_baseline(path: Path) -> Baseline:
    """A baseline file, or an InputError saying where it is wrong."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(f"{path}: cannot be read ({exc.strerror}); create one with "
                         "`mlthreat baseline create REPORT.sarif`") from exc
    except yaml.YAMLError as exc:
        raise InputError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict) or data.get("version") != BASELINE_VERSION \
            or not isinstance(data.get("accepted", []), list):
        raise InputError(f"{path}: not an mlthreat baseline (version {BASELINE_VERSION} with an "
                         "'accepted' list); create one with `mlthreat baseline create`")
    entries = [_entry(raw, f"{path}: accepted[{n}]") for n, raw in
               enumerate(data.get("accepted") or [])]
    return Baseline(path, {e.fingerprint: e for e in entries})


def dump_baseline(entries: Sequence[Accepted]) -> str:
    rows = []
    for e in sorted(entries, key=lambda e: (e.rule, e.where, e.fingerprint)):
        row: dict[str, Any] = {"fingerprint": e.fingerprint, "rule": e.rule, "where": e.where,
                               "level": e.level}
        if e.score is not None:
            row["score"] = round(e.score, 4)
        if e.measured:
            row["measured"] = {k: {"value": round(v, 6), "high": None if h is None
                                   else round(h, 6)} for k, (v, h) in sorted(e.measured.items())}
        row.update({"by": e.by, "reason": e.reason, "until": e.until})
        rows.append(row)
    head = (f"{BASELINE_MARK} findings this team accepted, each with who, why and until when.\n"
            "# A finding here does not fail the gate unless it got worse or its date passed.\n"
            "# Delete an entry to gate on it again. docs/ci.md explains the fields.\n")
    return head + yaml.safe_dump({"version": BASELINE_VERSION, "accepted": rows},
                                 sort_keys=False, allow_unicode=True, width=100)


def sarif_items(path: Path) -> list[Item]:
    """The findings of an mlthreat SARIF report (of `scan` or of `model`/`assess`)."""
    try:
        log = json.loads(path.read_text(encoding="utf-8"))
        results = [r for run in log["runs"] for r in run.get("results", [])]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(f"{path}: not a SARIF report ({exc}); write one with "
                         "`mlthreat scan ... -f sarif -o FILE` or `mlthreat model ... -f sarif`"
                         ) from exc
    out = []
    for n, r in enumerate(results):
        prints = r.get("partialFingerprints", {})
        fp = prints.get(FINDING_KEY) or prints.get(SCAN_KEY)
        if not fp:
            raise InputError(f"{path}: result {n} has no mlthreat fingerprint; baselines are "
                             "made from mlthreat's own SARIF reports")
        props = r.get("properties", {})
        loc = r.get("locations", [{}])[0].get("physicalLocation", {})
        where = f"{loc.get('artifactLocation', {}).get('uri', '?')}:" \
                f"{loc.get('region', {}).get('startLine', '')}".rstrip(":")
        measured = {k: (float(v[0]), None if v[1] is None else float(v[1]))
                    for k, v in props.get("measured", {}).items()}
        out.append(Item(fp, fp, (r.get("ruleId", "?"),), where,
                        props.get("risk") or props.get("severity") or "info",
                        score=props.get("score"), measured=measured))
    return out


def accept(items: Iterable[Item], by: str, reason: str, until: str | None,
           keep: Baseline | None = None) -> list[Accepted]:
    """Acceptances of these findings; those already in `keep` keep who, why and until."""
    out = []
    for it in items:
        old = keep.accepted.get(it.fingerprint) if keep else None
        who, why, when = (old.by, old.reason, old.until) if old else (by, reason, until)
        out.append(Accepted(it.fingerprint, it.rules[0], it.where, it.level, who, why, when,
                            it.score, dict(it.measured)))
    return out


# ------------------------------------------------------------------------------------- triage
def _rank(level: str) -> int:
    try:
        return RISK_ORDER.index(RiskLevel(level))
    except ValueError:
        return 0


# the probes' headline metrics that grow as the attack gets easier; a measurement of another
# metric (a distance, say, which shrinks) is not judged, rather than judged the wrong way round
EASIER_WHEN_HIGHER = {"success_rate", "fidelity", "roc_auc", "accuracy_drop", "targeted_shift",
                      "backdoor_success"}


def worse(item: Item, old: Accepted) -> str:
    """Why the finding is worse than when accepted ('' if it is not): its level rose, or a
    measured attack got easier (its value above the upper end of the interval accepted)."""
    if _rank(item.level) > _rank(old.level):
        return f"risk rose from {old.level} to {item.level}"
    for key, (value, _) in item.measured.items():
        if key in old.measured and key.rsplit("/", 1)[-1] in EASIER_WHEN_HIGHER:
            before, high = old.measured[key]
            if value > (before if high is None else high) + 1e-9:
                return (f"{key} rose from {before:.3g} to {value:.3g}: the attack got easier "
                        "than when it was accepted")
    return ""


def compared(path: Path) -> Baseline:
    """What `--new-since` compares with: a baseline file, or an earlier SARIF report of
    mlthreat (its findings count as the known ones, accepted by nobody)."""
    if path.suffix in (".sarif", ".json"):
        return known(path, sarif_items(path))
    return load_baseline(path)


def known(source: Path, items: Iterable[Item]) -> Baseline:
    """An earlier run's findings as the state to compare with (accepted by nobody)."""
    return Baseline(source, {e.fingerprint: e for e in accept(items, "", "", None)})


def triage(items: Sequence[Item], accepted: Baseline | None = None,
           since: Baseline | None = None,
           inline: Callable[[Item], Suppression | None] | None = None,
           today: dt.date | None = None) -> list[Triage]:
    """Each finding's state against `since` (else `accepted`), and its suppression: accepted,
    unexpired and not worse, or an inline comment."""
    today = today or dt.date.today()
    out = []
    for it in items:
        against = since or accepted
        known = against.accepted.get(it.fingerprint) if against else None
        why = worse(it, known) if known else ""
        state = "new" if known is None else "updated" if why else "unchanged"
        ok = accepted.accepted.get(it.fingerprint) if accepted else None
        suppression, note = None, why
        if ok is not None and not worse(it, ok):
            if ok.expired(today):
                note = note or f"accepted by {ok.by} until {ok.until}; that date has passed"
            else:
                suppression = Suppression("baseline", ok.by, ok.reason, str(accepted.path)
                                          if accepted else "", ok.until)
        elif ok is not None:
            note = worse(it, ok)
        if suppression is None and inline is not None:
            suppression = inline(it)
        out.append(Triage(it.finding, it.fingerprint, state, suppression, note))
    return out


def gated(items: Sequence[Item], verdicts: Sequence[Triage], level: RiskLevel,
          only_new: bool) -> list[Item]:
    """The findings that fail the gate: at or above `level`, not suppressed, and (only_new)
    new or worse."""
    by = {t.fingerprint: t for t in verdicts}
    return [it for it in items if _rank(it.level) >= RISK_ORDER.index(level)
            and (t := by.get(it.fingerprint)) is not None and t.suppression is None
            and (not only_new or t.state != "unchanged" or bool(t.note))]


# ------------------------------------------------------------------------- inline suppressions
class InlineComments:
    """`# mlthreat: ignore[rule, ...] reason` on the line a finding points to or the line
    above; a comment without a reason suppresses nothing and is reported in `problems`."""

    def __init__(self, base: Path | None = None) -> None:
        self.base = base
        self.problems: list[str] = []
        self._lines: dict[str, list[str]] = {}

    def _read(self, file: str) -> list[str]:
        if file not in self._lines:
            path = Path(file) if self.base is None or Path(file).is_absolute() \
                else self.base / file
            try:
                self._lines[file] = path.read_text(encoding="utf-8", errors="replace"
                                                   ).splitlines() if path.is_file() else []
            except OSError:
                self._lines[file] = []
        return self._lines[file]

    def __call__(self, item: Item) -> Suppression | None:
        if item.file is None or item.line is None:
            return None
        lines = self._read(item.file)
        for n in (item.line, item.line - 1):
            if not 1 <= n <= len(lines):
                continue
            m = IGNORE.search(lines[n - 1])
            if m is None or not {r.strip() for r in m.group(1).split(",")} & set(item.rules):
                continue
            where = f"{item.file}:{n}"
            if not m.group(2):
                note = (f"{where}: `mlthreat: ignore[{m.group(1)}]` has no reason and "
                        "suppresses nothing; write why after the bracket")
                if note not in self.problems:
                    self.problems.append(note)
                return None
            return Suppression("inline", _author(self.base, item.file, n), m.group(2), where)
        return None


def _author(base: Path | None, file: str, line: int) -> str:
    """Who wrote the line, by git blame; 'unknown (...)' before its commit or outside git."""
    path = Path(file) if base is None or Path(file).is_absolute() else base / file
    try:
        done = subprocess.run(["git", "blame", "--porcelain", "-L", f"{line},{line}", "--",
                               path.name], cwd=path.parent, capture_output=True, text=True,
                              timeout=20, check=False)
    except (OSError, subprocess.SubprocessError):
        return "unknown (git not available)"
    if "not a git repository" in done.stderr:
        return "unknown (not in a git repository)"
    author = re.search(r"^author (.+)$", done.stdout, re.M)
    if author is None or author.group(1) == "Not Committed Yet":
        return "unknown (not committed)"
    return author.group(1)


__all__ = ["Accepted", "Baseline", "InlineComments", "Item", "accept", "assessment_items",
           "compared", "dump_baseline", "finding_fingerprint", "gated", "load_baseline",
           "known", "measurements", "sarif_items", "scan_fingerprint", "scan_items", "triage", "worse"]
