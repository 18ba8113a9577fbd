"""Perception: one person's mental model of the pipeline, compared with the threat model.

Elicitation (`elicit.py`), gap analysis (`gaps.py`), team agreement (`team.py`) and the
research mode for coded interviews (`codes.py`).
"""

from mlthreat.perception.gaps import GAP_KINDS, analyse
from mlthreat.perception.loader import Mappers, ResolvedPerception, load_perception
from mlthreat.perception.model import Perception, View

__all__ = ["GAP_KINDS", "Mappers", "Perception", "ResolvedPerception", "View", "analyse",
           "load_perception"]
