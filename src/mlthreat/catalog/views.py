"""Regulation views: which catalog threats each clause of the EU AI Act's Article 15 or of the
NIST AI RMF is about (package data: `regulations.yaml` is the reference table of the clauses,
`views.yaml` the mapping). Like the catalog, a mapping that names an unknown clause or threat is
a bug in mlthreat (CatalogError, exit 3), found when the view loads."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from mlthreat.catalog.loader import Catalog, _read
from mlthreat.errors import CatalogError

VIEWS = ("eu-ai-act", "nist-ai-rmf")


@dataclass(frozen=True)
class Clause:
    id: str
    ref: str          # as the text cites it: "Art. 15(5), third subparagraph: data poisoning"
    title: str
    short: str        # for narrow places: "Art. 15(5) data poisoning"


@dataclass(frozen=True)
class Framework:
    id: str
    title: str
    source: str
    applies_to: str
    clauses: dict[str, Clause]


@dataclass(frozen=True)
class Mapped:
    """One clause with the catalog threats it is about and why."""

    clause: Clause
    threats: tuple[str, ...]
    why: str


@dataclass(frozen=True)
class View:
    framework: Framework
    rows: tuple[Mapped, ...]


@cache
def frameworks() -> dict[str, Framework]:
    """The reference table: every framework and every clause id mlthreat may cite."""
    out = {}
    for fid, raw in _read("regulations.yaml")["frameworks"].items():
        clauses = {}
        for cid, c in raw["clauses"].items():
            ref = str((c or {}).get("ref", cid))
            clauses[str(cid)] = Clause(str(cid), ref, str((c or {}).get("title", "")),
                                       str((c or {}).get("short", ref)))
        out[fid] = Framework(fid, raw["title"], raw["source"], raw["applies_to"], clauses)
    return out


def load_view(name: str, catalog: Catalog) -> View:
    """The view `name` (one of VIEWS), checked against the reference table and the catalog."""
    if name not in VIEWS:
        raise CatalogError(f"no view {name!r}; views: {', '.join(VIEWS)}")
    framework = frameworks()[name]
    known = {t.id for t in catalog.threats}
    rows, problems = [], []
    for raw in _read("views.yaml")[name]:
        cid = str(raw["clause"])
        if cid not in framework.clauses:
            problems.append(f"{name}: clause {cid!r} is not in regulations.yaml")
            continue
        threats = tuple(sorted(known)) if raw["threats"] == ["all"] else tuple(raw["threats"])
        problems += [f"{name} {cid}: unknown threat {t}" for t in threats if t not in known]
        if not framework.clauses[cid].title:
            problems.append(f"{name} {cid}: mapped, so regulations.yaml needs its title")
        rows.append(Mapped(framework.clauses[cid], threats, " ".join(str(raw["why"]).split())))
    if problems:
        raise CatalogError("the packaged regulation views are inconsistent:\n"
                           + "\n".join(problems))
    return View(framework, tuple(rows))


__all__ = ["VIEWS", "Clause", "Framework", "Mapped", "View", "frameworks", "load_view"]
