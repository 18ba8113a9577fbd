"""Probes: empirical attacks on the user's real model that measure how easy a threat is.

The shared parts: the probe base class, its budget and declared parameters (`interface.py`), the
registry of kinds of run (`registry.py`), a component prepared for probing (`target.py`),
executing one run with the planner's capability check (`execute.py`), realisable-record
constraints derived from the data's columns (`constraints.py`), tabular data and its checks
(`data.py`), intervals (`stats.py`) and retraining through the team's entry point
(`training.py`); models are reached through `mlthreat.adapters`. The attack families:
membership inference (`membership.py`), model extraction (`extraction.py`), poisoning and
backdoors (`poisoning.py`), white-box evasion (`evasion.py`), black-box evasion (`blackbox.py`)
and transfer evasion (`transfer.py`). `runner.py` runs what a spec asks for, in this process or
in joblib workers (`parallel.py`).
"""

from mlthreat.adapters.function import CallableAdapter
from mlthreat.adapters.interface import Capabilities, ModelAdapter
from mlthreat.adapters.loading import load_model
from mlthreat.adapters.sklearn import SklearnAdapter
from mlthreat.errors import BudgetExceeded, ProbeError
from mlthreat.probes.constraints import Constraints
from mlthreat.probes.data import Table, load_table
from mlthreat.probes.interface import Budget, Measurement, Meter, Probe
from mlthreat.results import Evidence

__all__ = ["Budget", "BudgetExceeded", "CallableAdapter", "Capabilities", "Constraints",
           "Evidence", "Measurement", "Meter", "ModelAdapter", "Probe", "ProbeError", "SklearnAdapter",
           "Table", "load_model", "load_table"]
