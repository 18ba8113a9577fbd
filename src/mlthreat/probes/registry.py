"""The one registry of probes: each kind of run (what `--only` and the progress lines name) is a
registered Probe class with the parameters that kind fixes. Adding a probe is one module, one
line here, and the catalog's `measured_by: [probe:<name>]` (docs/contributing.md)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mlthreat.probes.blackbox import BlackBoxEvasion
from mlthreat.probes.certified import ExactEvasion
from mlthreat.probes.evasion import WhiteBoxEvasion
from mlthreat.probes.extraction import ModelExtraction
from mlthreat.probes.interface import Probe
from mlthreat.probes.membership import MembershipInference
from mlthreat.probes.patch import PatchEvasion
from mlthreat.probes.poisoning import Poisoning
from mlthreat.probes.square import SquareEvasion
from mlthreat.probes.text import TextEvasion
from mlthreat.probes.transfer import TransferEvasion
from mlthreat.results import Evidence


@dataclass(frozen=True)
class Run:
    """One kind of probe run: its name, the `--only` group that selects it, its probe class,
    the parameters it fixes, and capabilities it needs beyond the probe's own `requires`
    (capability -> why), checked before the run starts."""

    name: str
    group: str
    probe: type[Probe]
    fixed: dict[str, Any] = field(default_factory=dict)
    requires: dict[str, str] = field(default_factory=dict)

    def needs(self) -> dict[str, str]:
        """Every capability the run needs, with why."""
        return {**self.probe.requires, **self.requires}


RUNS: dict[str, Run] = {r.name: r for r in (
    Run("membership", "membership", MembershipInference),
    Run("extraction", "extraction", ModelExtraction),
    Run("extraction-synthetic", "extraction", ModelExtraction, {"source": "synthetic"},
        {"images": "synthetic queries are made by stepping images along a copy's gradient; "
                   "tables and text have the copy from natural queries (extraction)"}),
    Run("poisoning", "poisoning", Poisoning, {"attack": "label_flip"}),
    Run("targeted", "poisoning", Poisoning, {"attack": "targeted_flip"}),
    Run("backdoor", "poisoning", Poisoning, {"attack": "backdoor"}),
    Run("clean-label", "poisoning", Poisoning, {"attack": "clean_label"}),
    Run("evasion-whitebox", "evasion", WhiteBoxEvasion),
    Run("evasion-blackbox", "evasion", BlackBoxEvasion),
    Run("evasion-square", "evasion", SquareEvasion),
    Run("evasion-patch", "evasion", PatchEvasion),
    Run("evasion-text", "evasion", TextEvasion),
    Run("evasion-synonyms", "evasion", TextEvasion, {"substitute": "synonyms"}),
    Run("evasion-transfer", "evasion", TransferEvasion),
    Run("evasion-exact", "evasion", ExactEvasion),
)}

# what `--only` names -> the kinds of run it means, in the order they run
GROUPS: dict[str, tuple[str, ...]] = {}
for _run in RUNS.values():
    GROUPS[_run.group] = (*GROUPS.get(_run.group, ()), _run.name)
PROBES = tuple(GROUPS)

# probe classes by the name their evidence carries (`probe:<name>`, as the catalog cites them)
REGISTRY: dict[str, type[Probe]] = {r.probe.name: r.probe for r in RUNS.values()}


def kind_of(ev: Evidence) -> str:
    """The kind of run that measured `ev` (its probe and the parameters the kind fixes; of
    several that match, the one that fixes the most: synthetic extraction is extraction too)."""
    matches = [run for run in RUNS.values() if f"probe:{run.probe.name}" == ev.source and all(
        ev.parameters.get(k) == v for k, v in run.fixed.items())]
    return max(matches, key=lambda run: len(run.fixed)).name if matches else ev.kind
