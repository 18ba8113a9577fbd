"""Research mode: coded interview data, as qualitative researchers code it.

Input: a CSV with columns participant, segment, coder, code (one row per code a coder applied
to a segment; a row with an empty code says the coder read the segment and applied none), or a
REFI-QDA project (.qdpx zip or .qde XML, the exchange format of ATLAS.ti, MAXQDA, NVivo and
others). A coder named "consensus" (any case) holds the agreed final coding.

Agreement is computed as the field reports it: by default every segment of the project counts for
every coder, and a segment a coder left without any code is "not coded" there (scope "all");
scope "seen" restricts each coder to the segments they have a row for, for projects where coders
split the material. Output: each coder's frequencies and participants per code; a headline view
(the consensus coder's if there is one, else codes most coders who read a segment applied there);
Cohen's kappa per code and overall for every coder pair (scikit-learn), Fleiss' kappa per code for
three coders or more (statsmodels), Krippendorff's alpha over all coders (krippendorff); and the
code co-occurrence matrix of the headline view, counted per participant or per segment.
"""

from __future__ import annotations

import csv
import io
import zipfile
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path

import numpy as np
from defusedxml import DefusedXmlException, ElementTree

from mlthreat.errors import Problem, SpecError
from mlthreat.perception.agreement import alpha, cohen, fleiss

COLUMNS = ("participant", "segment", "coder", "code")
SCOPES = ("all", "seen")
CONSENSUS = "consensus"
MAX_XML_BYTES = 200 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Coding:
    participant: str
    segment: str
    coder: str
    code: str


@dataclass(frozen=True)
class CodeAgreement:
    code: str
    coders: tuple[str, str]
    kappa: float | None
    segments: int


@dataclass(frozen=True)
class CoderCounts:
    coder: str
    segments: int                              # segments this coder's agreement counts
    frequency: tuple[tuple[int, ...], ...]     # codes x participants: segments coded
    participants_per_code: tuple[int, ...]


@dataclass(frozen=True)
class FleissKappa:
    code: str
    kappa: float | None
    segments: int                              # segments every coder counts


@dataclass(frozen=True)
class CodesReport:
    source: str
    unit: str                                 # participant | segment
    participants: tuple[str, ...]
    coders: tuple[str, ...]                   # the coders compared (not the consensus)
    codes: tuple[str, ...]
    segments: int
    frequency: tuple[tuple[int, ...], ...]    # codes x participants, headline view (see `view`)
    participants_per_code: tuple[int, ...]
    agreement: tuple[CodeAgreement, ...]      # per code and coder pair
    overall: tuple[CodeAgreement, ...]        # per coder pair, all codes pooled
    alpha: float | None                        # Krippendorff's alpha over all coders
    cooccurrence: tuple[tuple[int, ...], ...]  # codes x codes; diagonal = units with the code
    scope: str = "all"                        # all | seen: which segments count for a coder
    view: str = "majority"                    # consensus | majority | single
    consensus: str | None = None              # the consensus coder's name, if the data has one
    by_coder: tuple[CoderCounts, ...] = ()
    fleiss: tuple[FleissKappa, ...] = ()

    def together(self, a: str, b: str) -> int:
        return self.cooccurrence[self.codes.index(a)][self.codes.index(b)]


def read_codings(path: str | Path) -> list[Coding]:
    path = Path(path)
    if not path.exists():
        raise SpecError([Problem(str(path), None, None, "file not found")])
    if path.suffix.lower() in (".qdpx", ".qde"):
        return _read_refi(path)
    return _read_csv(path)


def _read_csv(path: Path) -> list[Coding]:
    file = str(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SpecError([Problem(file, None, None, "not UTF-8 text",
                                 "export the CSV as UTF-8")]) from exc
    reader = csv.DictReader(io.StringIO(text))
    header = {h.strip().lower(): h for h in (reader.fieldnames or [])}
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        raise SpecError([Problem(file, 1, 1, f"missing column(s): {', '.join(missing)}",
                                 f"the header needs {', '.join(COLUMNS)} (any order, any case)")])
    out, problems = [], []
    for row in reader:
        values = {c: (row.get(header[c]) or "").strip() for c in COLUMNS}
        empty = [c for c, v in values.items() if not v and c != "code"]
        if empty:
            problems.append(Problem(file, reader.line_num, None, f"empty {', '.join(empty)}",
                                    "every row needs participant, segment and coder (an empty "
                                    "code says the coder read the segment and applied none)"))
            continue
        out.append(Coding(**values))
    if problems:
        raise SpecError(problems)
    if not out:
        raise SpecError([Problem(file, None, None, "no codings in the file")])
    return out


def _read_refi(path: Path) -> list[Coding]:
    file = str(path)
    try:
        if path.suffix.lower() == ".qdpx":
            with zipfile.ZipFile(path) as z:
                name = next((n for n in z.namelist() if n.lower().endswith(".qde")), None)
                if name is None:
                    raise SpecError([Problem(file, None, None, "no project.qde inside",
                                             "a .qdpx is a zip holding the project's .qde")])
                if z.getinfo(name).file_size > MAX_XML_BYTES:
                    raise SpecError([Problem(file, None, None, "project.qde is too large")])
                data = z.read(name)
        else:
            data = path.read_bytes()
        root = ElementTree.fromstring(data)
    except (zipfile.BadZipFile, ElementTree.ParseError) as exc:
        raise SpecError([Problem(file, None, None, f"not a REFI-QDA project: {exc}")]) from exc
    except DefusedXmlException as exc:
        raise SpecError([Problem(file, None, None, "refused: the XML declares entities or "
                                 "external references (a possible XML bomb)",
                                 "export the project again from your QDA tool")]) from exc
    return _codings_from_qde(root, file)


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _codings_from_qde(root: object, file: str) -> list[Coding]:
    elements = list(root.iter())  # type: ignore[attr-defined]
    codes = {e.get("guid"): e.get("name") for e in elements if _local(e.tag) == "Code"}
    users = {e.get("guid"): e.get("name") for e in elements if _local(e.tag) == "User"}
    out = []
    for source in (e for e in elements if _local(e.tag).endswith("Source")):
        participant = source.get("name") or source.get("guid") or "?"
        for sel in (e for e in source.iter() if _local(e.tag).endswith("Selection")):
            codings = [e for e in sel if _local(e.tag) == "Coding"]
            if not codings and sel.get("creatingUser"):
                # a segment marked and left without a code: read by its creator, nothing applied
                user = sel.get("creatingUser")
                out.append(Coding(participant, sel.get("guid") or "?",
                                  str(users.get(user, user)), ""))
            for coding in codings:
                coder = users.get(coding.get("creatingUser"), coding.get("creatingUser") or "?")
                for ref in (e for e in coding if _local(e.tag) == "CodeRef"):
                    code = codes.get(ref.get("targetGUID"))
                    if code:
                        out.append(Coding(participant, sel.get("guid") or "?", str(coder), code))
    if not any(c.code for c in out):
        raise SpecError([Problem(file, None, None, "the project has no coded segments")])
    return out


def analyse_codes(codings: list[Coding], source: str, unit: str = "participant",
                  scope: str = "all") -> CodesReport:
    if unit not in ("participant", "segment"):
        raise ValueError("unit is participant or segment")
    if scope not in SCOPES:
        raise ValueError("scope is all or seen")
    participants = sorted({c.participant for c in codings})
    consensus = next((c.coder for c in codings if c.coder.lower() == CONSENSUS), None)
    coders = sorted({c.coder for c in codings} - {consensus})
    codes = sorted({c.code for c in codings if c.code})
    segments = sorted({(c.participant, c.segment) for c in codings})
    by_coder = {(c.coder, c.participant, c.segment, c.code) for c in codings if c.code}
    read = {coder: (set(segments) if scope == "all" else _coded_by(coder, codings))
            for coder in coders}
    counts = [_counts(coder, codes, participants, read[coder], by_coder) for coder in coders]
    if consensus is not None:
        view = "consensus"
        applied = {(p, s, k) for who, p, s, k in by_coder if who == consensus}
    elif len(coders) == 1:
        view, applied = "single", {(p, s, k) for _, p, s, k in by_coder}
    else:   # a code holds on a segment when most of the coders who read it applied it there
        view = "majority"
        applied = {(p, s, k) for p, s in segments for k in codes
                   if 2 * sum((c, p, s, k) in by_coder for c in coders if (p, s) in read[c])
                   > sum(1 for c in coders if (p, s) in read[c])}
    frequency = [[len({s for p, s, k in applied if p == part and k == code})
                  for part in participants] for code in codes]
    per_code = [sum(1 for n in row if n) for row in frequency]
    agreement, overall = _agreement(codes, coders, read, by_coder)
    units: dict[str, set[str]] = {}
    for p, s, k in applied:
        units.setdefault(p if unit == "participant" else f"{p}/{s}", set()).add(k)
    co = [[sum(1 for u in units.values() if a in u and b in u) for b in codes] for a in codes]
    return CodesReport(
        source=source, unit=unit, participants=tuple(participants), coders=tuple(coders),
        codes=tuple(codes), segments=len(segments),
        frequency=tuple(tuple(r) for r in frequency), participants_per_code=tuple(per_code),
        agreement=tuple(agreement), overall=tuple(overall),
        alpha=_alpha(codes, coders, segments, read, by_coder),
        cooccurrence=tuple(tuple(r) for r in co), scope=scope, view=view, consensus=consensus,
        by_coder=tuple(counts), fleiss=tuple(_fleiss(codes, coders, segments, read, by_coder)))


def _counts(coder: str, codes: list[str], participants: list[str], read: set[tuple[str, str]],
            by_coder: set[tuple[str, str, str, str]]) -> CoderCounts:
    frequency = tuple(tuple(sum(1 for p, s in read if p == part and (coder, p, s, code) in
                                by_coder) for part in participants) for code in codes)
    return CoderCounts(coder, len(read), frequency,
                       tuple(sum(1 for n in row if n) for row in frequency))


def _coded_by(coder: str, codings: list[Coding]) -> set[tuple[str, str]]:
    """The segments `coder` has a row for (a code, or an empty code: read, nothing applied)."""
    return {(c.participant, c.segment) for c in codings if c.coder == coder}


def _agreement(codes: list[str], coders: list[str], read: dict[str, set[tuple[str, str]]],
               by_coder: set[tuple[str, str, str, str]]
               ) -> tuple[list[CodeAgreement], list[CodeAgreement]]:
    per_code, overall = [], []
    for a, b in combinations(coders, 2):
        # Segments that count for both coders: a code's absence there is a decision.
        shared = sorted(read[a] & read[b])
        if not shared:
            continue
        xs, ys = [], []
        for code in codes:
            x = np.array([(a, p, s, code) in by_coder for p, s in shared], dtype=int)
            y = np.array([(b, p, s, code) in by_coder for p, s in shared], dtype=int)
            per_code.append(CodeAgreement(code, (a, b), cohen(x, y)[0], len(shared)))
            xs.append(x)
            ys.append(y)
        overall.append(CodeAgreement("*", (a, b), cohen(np.concatenate(xs), np.concatenate(ys))[0],
                                     len(shared)))
    return per_code, overall


def _fleiss(codes: list[str], coders: list[str], segments: list[tuple[str, str]],
            read: dict[str, set[tuple[str, str]]],
            by_coder: set[tuple[str, str, str, str]]) -> list[FleissKappa]:
    """Fleiss' kappa per code over the segments every coder counts (three coders or more)."""
    if len(coders) < 3:
        return []
    return [FleissKappa(code, *fleiss(_ratings([code], coders, segments, read, by_coder)))
            for code in codes]


def _ratings(which: list[str], coders: list[str], segments: list[tuple[str, str]],
             read: dict[str, set[tuple[str, str]]],
             by_coder: set[tuple[str, str, str, str]]) -> np.ndarray:
    """Coders x (segment, code of `which`): 1 applied, 0 not, NaN where the segment does not
    count for the coder."""
    return np.array([[float((coder, p, s, k) in by_coder) if (p, s) in read[coder] else np.nan
                      for p, s in segments for k in which] for coder in coders])


def _alpha(codes: list[str], coders: list[str], segments: list[tuple[str, str]],
           read: dict[str, set[tuple[str, str]]],
           by_coder: set[tuple[str, str, str, str]]) -> float | None:
    if len(coders) < 2:
        return None
    return alpha(_ratings(codes, coders, segments, read, by_coder))
