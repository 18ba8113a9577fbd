"""Secrets in code, configuration and notebooks (outputs included).

Detection is Yelp's detect-secrets with its default plugins (cloud keys, private keys, tokens,
high-entropy strings in assignments, basic-auth URLs, ...), plus the places ML projects leak
credentials that it does not know: model-hub tokens, experiment-tracking keys, tracking-server
URLs with embedded credentials, and cloud keys in training configs.
"""

from __future__ import annotations

import re
from pathlib import Path

from detect_secrets.core.secrets_collection import SecretsCollection
from detect_secrets.settings import default_settings

from mlthreat.scanners.interface import ScanContext, ScanFinding, Scanner

THREAT = "cls-secrets-in-code"
TEXT_SUFFIXES = {".py", ".ipynb", ".yaml", ".yml", ".json", ".toml", ".cfg", ".ini", ".env",
                 ".txt", ".sh", ".properties", ".conf", ".r", ".R", ".scala", ".sql", ".md"}
TEXT_NAMES = {"Dockerfile", ".env", "MLmodel", "config", "credentials", ".netrc", "kaggle.json"}
MAX_BYTES = 5 * 1024 * 1024
ML_PATTERNS = [
    ("hugging-face-token", re.compile(r"\bhf_[A-Za-z0-9]{30,}\b"), "Hugging Face token"),
    ("wandb-api-key", re.compile(r"(?i)wandb[_-]?api[_-]?key\W{1,4}[0-9a-f]{40}\b"),
     "Weights & Biases API key"),
    ("tracking-uri-credentials",
     re.compile(r"(?i)(mlflow|tracking|neptune|comet)[^\n]{0,40}https?://[^/\s:@]+:[^/\s@]+@"),
     "experiment-tracking URL with embedded credentials"),
    ("neptune-token", re.compile(r"(?i)neptune[_-]?api[_-]?token\W{1,4}[A-Za-z0-9=_-]{30,}"),
     "Neptune API token"),
    ("comet-api-key", re.compile(r"(?i)comet[_-]?api[_-]?key\W{1,4}[A-Za-z0-9]{20,}"),
     "Comet API key"),
    ("openai-key", re.compile(r"\bsk-(proj-)?[A-Za-z0-9_-]{32,}\b"), "OpenAI API key"),
    ("kaggle-key", re.compile(r'"key"\s*:\s*"[0-9a-f]{32}"'), "Kaggle API key"),
]


# the first line of a baseline file that `mlthreat baseline` writes (mlthreat.gate)
BASELINE_MARK = "# mlthreat baseline:"


def is_text_candidate(path: Path) -> bool:
    return path.suffix in TEXT_SUFFIXES or path.name in TEXT_NAMES or path.name.startswith(
        ("requirements", ".env"))


def scan_secrets(path: Path) -> list[ScanFinding]:
    try:
        if path.stat().st_size > MAX_BYTES:
            return []
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    if text.startswith(BASELINE_MARK):      # mlthreat's own baseline: fingerprints, not keys
        return []
    out: dict[tuple[int, str], ScanFinding] = {}
    collection = SecretsCollection()
    with default_settings():
        collection.scan_file(str(path))
    for _, secret in collection:
        line = secret.line_number or None
        out[(line or 0, secret.type)] = _finding(path, line, secret.type)
    for number, line_text in enumerate(text.splitlines(), start=1):
        for rule, pattern, what in ML_PATTERNS:
            if pattern.search(line_text):
                out.setdefault((number, what), _finding(path, number, what, rule))
    return sorted(out.values(), key=lambda f: (f.line or 0, f.rule))


def _finding(path: Path, line: int | None, what: str, rule: str | None = None) -> ScanFinding:
    notebook = " (in a notebook: outputs are committed too)" if path.suffix == ".ipynb" else ""
    return ScanFinding(
        scanner="secrets", rule=f"SEC-{(rule or what).upper().replace(' ', '-')}",
        threat_id=THREAT, family="classical", severity="high", file=str(path), line=line,
        message=f"{what} in the file{notebook}: anyone with a clone has it. Move it to a secrets "
                "manager and rotate it.")


class SecretsScanner(Scanner):
    """Credentials in code, configuration and notebooks (detect-secrets plus model-hub and
    tracking-server tokens)."""

    name = "secrets"
    threat_ids = (THREAT,)

    def applies_to(self, path: Path) -> bool:
        return is_text_candidate(path)

    def scan(self, path: Path, ctx: ScanContext) -> list[ScanFinding]:
        return scan_secrets(path)
