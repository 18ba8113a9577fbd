"""A shorter list that still says everything (docs/risk.md, "Groups and the lead").

Findings of one threat whose attack paths end at the same component are one group: the same
attack reaching the same place, from every component where the attacker can act on the way.
Nothing is dropped; a group lists its findings, highest risk first.

The lead is the few threats a reader must act on. Its candidates are groups at high or critical
risk, and groups a probe or scanner confirmed on the team's own artifacts at medium or above;
groups whose every finding the CI gate suppressed are not candidates. Candidates confirmed by
evidence come first, then by risk; each threat leads once, with all its candidate groups (one
threat at three agent tools is one thing to act on); at most LEAD_SIZE threats, and at least one
of each family when both have a candidate.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from mlthreat.results import Finding, FindingGroup, Lead
from mlthreat.vocabulary import RiskLevel

LEAD_SIZE = 5
LEAD_LEVELS = frozenset({RiskLevel.high, RiskLevel.critical})
LEAD_CONFIRMED_LEVELS = LEAD_LEVELS | {RiskLevel.medium}


def group_findings(findings: Sequence[Finding], confirmed: Collection[str] = ()
                   ) -> tuple[FindingGroup, ...]:
    """Groups of `findings` (threat, harm component), highest risk first; `confirmed` names the
    findings that evidence confirmed."""
    members: dict[tuple[str, str], list[Finding]] = {}
    for f in findings:
        members.setdefault((f.threat_id, f.harm_at), []).append(f)
    groups = []
    for (threat, harm), fs in members.items():
        fs = sorted(fs, key=lambda f: (-f.score, f.component))
        top = fs[0]
        groups.append(FindingGroup(
            id=f"{threat}>{harm}", threat_id=threat, name=top.name, family=top.family,
            harm_at=harm, findings=tuple(f.id for f in fs), components=tuple(f.component for f in fs),
            score=top.score, level=top.level,
            confirmed=any(f.id in confirmed for f in fs)))
    return tuple(sorted(groups, key=lambda g: (-g.score, g.family.value, g.threat_id, g.harm_at)))


def lead(groups: Sequence[FindingGroup], suppressed: Collection[str] = ()) -> Lead:
    """The threats to act on first, each with its groups that qualify, and how much is left below
    them (module docstring)."""
    candidates = [g for g in groups
                  if (g.level in LEAD_LEVELS or (g.confirmed and g.level in LEAD_CONFIRMED_LEVELS))
                  and not all(f in suppressed for f in g.findings)]
    candidates.sort(key=lambda g: (not g.confirmed, -g.score, g.family.value, g.threat_id,
                                   g.harm_at))
    by_threat: dict[str, list[FindingGroup]] = {}
    for g in candidates:                   # in order: each threat's best group first
        by_threat.setdefault(g.threat_id, []).append(g)
    ranked = list(by_threat.values())
    chosen = ranked[:LEAD_SIZE]
    families = {gs[0].family for gs in chosen}
    for gs in ranked[LEAD_SIZE:]:
        if gs[0].family not in families:   # the other family's best takes the last place
            chosen[-1] = gs
            break
    ids = {g.id for gs in chosen for g in gs}
    rest = [g for g in groups if g.id not in ids]
    return Lead(threats=tuple(tuple(g.id for g in gs) for gs in chosen),
                more_groups=len(rest), more_findings=sum(len(g.findings) for g in rest))
