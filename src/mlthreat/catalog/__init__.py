"""The threat and control catalog: package data validated by a schema at load time."""

from mlthreat.catalog.loader import Catalog, load_catalog
from mlthreat.catalog.schema import Control, References, Threat, Where

__all__ = ["Catalog", "Control", "References", "Threat", "Where", "load_catalog"]
