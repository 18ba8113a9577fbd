"""What every scanner returns: ScanFinding, located in a file (line, or byte offset and archive
member for binary files) and tied to the catalog threat it is evidence for."""

from __future__ import annotations

from dataclasses import dataclass

from mlthreat.vocabulary import RISK_ORDER, RiskLevel


@dataclass(frozen=True, slots=True)
class ScanFinding:
    scanner: str            # modelfile | secrets | dependencies | serving
    rule: str               # stable id of the check, e.g. MF-PICKLE-CODE_EXECUTION
    threat_id: str          # the catalog threat this is evidence for
    family: str             # aml | classical
    severity: str           # low | medium | high | critical
    file: str
    line: int | None
    message: str
    offset: int | None = None
    member: str = ""        # archive member or nested stream

    @property
    def level(self) -> RiskLevel:
        return RiskLevel(self.severity)

    def at_least(self, level: RiskLevel) -> bool:
        return RISK_ORDER.index(self.level) >= RISK_ORDER.index(level)

    @property
    def where(self) -> str:
        loc = self.file
        if self.line is not None:
            loc += f":{self.line}"
        if self.member:
            loc += f" [{self.member}]"
        if self.offset is not None:
            loc += f" @byte {self.offset}"
        return loc
