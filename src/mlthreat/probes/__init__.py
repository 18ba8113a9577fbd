"""Probes: empirical attacks on the user's real model that measure how easy a threat is.

This package holds the shared parts (issue #3 builds the attack families on them): the probe
base class and its Evidence (`interface.py`), model adapters with capability flags
(`adapters.py`), scanner-gated model loading (`loading.py`) and realisable-record constraints
(`constraints.py`), tabular data (`data.py`), and the first attack families: membership
inference (`membership.py`), model extraction (`extraction.py`), poisoning (`poisoning.py`) and white-box
evasion (`evasion.py`).
"""

from mlthreat.probes.adapters import CallableAdapter, Capabilities, ModelAdapter, SklearnAdapter
from mlthreat.probes.constraints import Constraints
from mlthreat.probes.data import Table, load_table
from mlthreat.probes.interface import (
    Budget,
    BudgetExceeded,
    Evidence,
    Measurement,
    Meter,
    Probe,
    ProbeError,
)
from mlthreat.probes.loading import load_model

__all__ = ["Budget", "BudgetExceeded", "CallableAdapter", "Capabilities", "Constraints",
           "Evidence", "Measurement", "Meter", "ModelAdapter", "Probe", "ProbeError", "SklearnAdapter",
           "Table", "load_model", "load_table"]
