"""Secrets in code, configuration and notebooks (outputs included).

Detection is Yelp's detect-secrets with its default plugins (cloud keys, private keys, tokens,
high-entropy strings in assignments, basic-auth URLs, ...), plus the places ML projects leak
credentials that it does not know: model-hub tokens, experiment-tracking keys, tracking-server
URLs with embedded credentials, and cloud keys in training configs.
"""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path

from detect_secrets.core.secrets_collection import SecretsCollection
from detect_secrets.settings import default_settings, transient_settings

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

# a lower-case word every match of the ML_PATTERNS entry of the same index contains
ML_NEEDLES = ("hf_", "wandb", "://", "neptune", "comet", "sk-", '"key"')

# the first line of a baseline file that `mlthreat baseline` writes (mlthreat.gate)
BASELINE_MARK = "# mlthreat baseline:"


def is_text_candidate(path: Path) -> bool:
    return path.suffix in TEXT_SUFFIXES or path.name in TEXT_NAMES or path.name.startswith(
        ("requirements", ".env"))


# values that stand for a secret someone still has to fill in
PLACEHOLDER = re.compile(
    r"(?i)^(your|insert|enter|replace)[-_ ]|^<.*>$|^\$\{.*\}$|^\{\{.*\}\}$|"
    r"^%\(.*\)s$|(x{4,}|\*{3,}|\.{3,})|changeme|change[-_]me|placeholder|example|dummy|"
    r"redacted|^(none|null|test|secret|password|token|string|str|todo|tbd)$|"
    # test doubles: test_key, fake-token, api-key, my_secret, sk-123
    r"^(test|fake|mock|sample|foo|bar|my)?[-_ ]?(api[-_ ]?)?(key|token|secret|password|pass|pwd)$|"
    r"^(test|fake|mock|sample|foo|bar)[-_ ]|^(sk|pk)-\d{1,8}$|"
    # a word and what the value stands for: deepface_pass, admin_password, db_secret
    r"^[a-z][a-z0-9]*[-_](pass|passwd|password|pwd|secret)$")
# a value of a keyword detector that is a file's path, not its content (private_key_file=key.pem)
FILE_PATH = re.compile(r"(?i)^[\w.~/\\-]*[/\\.][\w.-]*\.(pem|key|crt|cer|der|p12|pfx|jks|json|"
                       r"ya?ml|txt|cfg|ini|env|pub|gpg|asc)$")
# user:password@host in a URL
URL_CREDENTIALS = re.compile(r"://([^:/\s@'\"]+):([^@\s/'\"]+)@([^:/\s'\"?#]+)")
# hosts where a password guards nothing anyone else can reach, or that do not exist
NOWHERE = re.compile(r"(?i)^(localhost|127\.\d+\.\d+\.\d+|0\.0\.0\.0|\[?::1\]?|host|"
                     r"hostname|server|db|database|[\w.-]*example\.(com|org|net)|[\w-]+\.local|"
                     r"[\w-]+\.test|[\w-]+\.invalid)$")
# passwords that are a product's documented default or a stand-in
DEFAULT_PASSWORDS = {"pass", "password", "passwd", "pwd", "secret", "guest", "postgres", "admin",
                     "root", "mysql", "minioadmin", "changeit", "test", "user"}
# words that sit where a keyword detector expects a secret without being one (a weak real
# password such as "letmein" is still reported)
NOT_VALUES = {"inherit", "required", "optional", "true", "false", "yes", "no", "none", "null",
              "env", "environ", "secret", "secrets", "password", "passwd", "token", "apikey",
              "api_key", "key", "string", "str", "value", "default", "empty", "hidden", "masked"}
# the output kinds of a notebook that are text a person could have printed a secret into;
# images, HTML renderings, widget state and metadata are left out
NOTEBOOK_TEXT = ("text/plain", "text/markdown", "text/latex", "application/json")


def scan_secrets(path: Path) -> list[ScanFinding]:
    try:
        if path.stat().st_size > MAX_BYTES:
            return []
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    if text.startswith(BASELINE_MARK):      # mlthreat's own baseline: fingerprints, not keys
        return []
    extracted = _notebook_lines(text) if path.suffix == ".ipynb" else None
    lines = extracted if extracted is not None else list(
        enumerate(text.splitlines(), start=1))
    out: dict[tuple[int, str], ScanFinding] = {}
    for line, kind, value, line_text in _detected(path, text, extracted):
        if _not_a_secret(kind, value, line_text):
            continue
        out[(line, kind)] = _finding(path, line or None, kind)
    lowered = text.lower()
    patterns = [p for p, needle in zip(ML_PATTERNS, ML_NEEDLES, strict=True) if needle in lowered]
    for number, line_text in lines if patterns else ():
        for rule, pattern, what in patterns:
            if pattern.search(line_text):
                out.setdefault((number, what), _finding(path, number, what, rule))
    return sorted(out.values(), key=lambda f: (f.line or 0, f.rule))


# a line that can hold something detect-secrets reports: a keyword its keyword detector looks
# for, credentials in a URL, a PEM header, or a run of 16+ token characters with a digit in it
# (every known key format and every high-entropy string it reports has one)
MAYBE_SECRET = re.compile(r"(?i)pass|pwd|secret|key|token|auth|cred|priv|contras|api|://\S*@|"
                          r"BEGIN|(?=[A-Za-z0-9+/=_.-]*\d)[A-Za-z0-9+/=_.-]{16,}")
# files read line by line (the prefilter keeps line numbers); structured configs are read whole,
# as detect-secrets parses them
LINE_FILES = {".py", ".md", ".txt", ".sh", ".r", ".R", ".scala", ".sql", ".ipynb"}


def _detected(path: Path, text: str, lines: list[tuple[int, str]] | None
              ) -> list[tuple[int, str, str, str]]:
    """detect-secrets on the file, or on a notebook's extracted `lines` (line in the .ipynb,
    text): (line, type, value, the line's text). In code and prose only the lines that could
    hold a secret are given to it, each hit mapped back to its line: it costs about a
    millisecond a line, blank or not."""
    if lines is None:
        numbered = [(n, t) for n, t in enumerate(text.split("\n"), start=1)]
        if path.suffix not in LINE_FILES:
            return _collected(path, numbered)
        lines, stem = numbered, path.name
    else:
        stem = f"{path.stem}.py"        # a notebook's text is Python and Markdown: read as .py
    kept = [(n, t) for n, t in lines if MAYBE_SECRET.search(t)]
    if not kept:
        return []
    import tempfile
    with tempfile.TemporaryDirectory(prefix="mlthreat-secrets-") as tmp:
        name = Path(tmp) / stem
        name.write_text("\n".join(t for _, t in kept) + "\n", encoding="utf-8")
        return _collected(name, kept)     # each hit mapped back to its line in the file


# detect-secrets' plugins not run: randomness alone, with no key name or known format (on 23
# public ML repositories every such hit left after the filters was an image, a payload, a
# digest, a path or an id: benchmarks/realrepos.py), and public IP addresses (an address is not
# a credential)
LEFT_OUT_PLUGINS = {"Base64HighEntropyString", "HexHighEntropyString", "IPPublicDetector"}


@functools.lru_cache(maxsize=1)
def _plugin_names() -> tuple[str, ...]:
    with default_settings() as settings:
        return tuple(p["name"] for p in settings.json()["plugins_used"]
                     if p["name"] not in LEFT_OUT_PLUGINS)


def _plugins() -> list[dict[str, str]]:
    return [{"name": n} for n in _plugin_names()]


def _collected(path: Path, lines: list[tuple[int, str]]) -> list[tuple[int, str, str, str]]:
    """detect-secrets' hits in `path`, whose k-th line is lines[k - 1]."""
    collection = SecretsCollection()
    with transient_settings({"plugins_used": _plugins()}):
        collection.scan_file(str(path))
    out = []
    for _, secret in collection:
        k = (secret.line_number or 1) - 1
        number, line = lines[k] if 0 <= k < len(lines) else (0, "")
        out.append((number, secret.type, secret.secret_value or "", line))
    return out


def _not_a_secret(kind: str, value: str, line: str) -> bool:
    """A placeholder, prose, a default, a path, a variable's name, or a stand-in password."""
    v = value.strip().strip("\"'")
    if not v or PLACEHOLDER.search(v):
        return True
    if re.search(r"\$\{\w+:-?" + re.escape(v.rstrip("}")), line):
        return True           # ${DB_PASSWORD:postgres}: the environment's value, or a default
    if re.search(r"\{env:\w+:" + re.escape(v.rstrip("}")) + r"\}", line):
        return True           # tox's {env:DB_PASSWORD:password}: the same, in tox's spelling
    if kind == "Basic Auth Credentials":
        return _url_not_secret(v, line)
    if kind == "AWS Access Key" and re.fullmatch(r"[ACGTN]+", v[4:]):
        return True           # a DNA sequence (ACCA followed by bases) has the key's shape
    if kind == "Secret Keyword" and FILE_PATH.match(v):
        return True           # private_key_file=resources/key.pem names a file
    if kind == "Secret Keyword" and re.fullmatch(r"[A-Z][A-Z0-9]*(_[A-Z0-9]+)+", v):
        return True           # api_key_env="OPENAI_API_KEY": the name of the variable
    # "No API key provided.", `secrets: inherit`, token = "required"
    return kind == "Secret Keyword" and (" " in v or v.lower() in NOT_VALUES)


def _url_not_secret(password: str, line: str) -> bool:
    """user:password@host where the password is a stand-in (DB_PASSWORD, pass, the user's own
    name) or the host is nowhere another person reaches (localhost, example.com)."""
    for user, pw, host in URL_CREDENTIALS.findall(line):
        if pw != password and not pw.startswith(password):
            continue
        return bool(re.fullmatch(r"[A-Z][A-Z0-9_]*|<.*>|\$\{?\w+\}?|\{\w*\}|\*+|x+", pw)) or \
            pw.lower() in DEFAULT_PASSWORDS or pw == user or bool(NOWHERE.match(host))
    return False


def _notebook_lines(text: str) -> list[tuple[int, str]] | None:
    """A notebook's cell sources and text outputs as (line in the .ipynb file, text); None if
    it is not a notebook's JSON (then it is read as text)."""
    try:
        data = json.loads(text)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    where = _string_lines(text)
    cells = data.get("cells") or [c for w in data.get("worksheets", []) if isinstance(w, dict)
                                  for c in w.get("cells", [])]
    out: list[tuple[int, str]] = []

    def add(value: object) -> None:
        for piece in value if isinstance(value, list) else [value]:
            if isinstance(piece, str):
                seen = where.get(piece)
                number = seen.pop(0) if seen else 0
                out.extend((number, line) for line in piece.splitlines() or [""])
    for cell in cells if isinstance(cells, list) else []:
        if not isinstance(cell, dict):
            continue
        add(cell.get("source", cell.get("input")))
        for output in cell.get("outputs") or []:
            if not isinstance(output, dict):
                continue
            add(output.get("text"))
            add(output.get("traceback"))
            data_ = output.get("data") or {}
            for mime in NOTEBOOK_TEXT:
                value = data_.get(mime) if isinstance(data_, dict) else None
                add(json.dumps(value) if isinstance(value, dict | list) and mime ==
                    "application/json" else value)
    return out


def _string_lines(text: str) -> dict[str, list[int]]:
    """Each JSON string that stands alone on a line of the file (as nbformat writes a source
    line, or a "key": "value" pair), by its value: the lines it is on, in order."""
    out: dict[str, list[int]] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        m = _JSON_STRING.match(line)
        if m:
            try:
                out.setdefault(json.loads(m.group(1)), []).append(number)
            except ValueError:
                continue
    return out


_JSON_STRING = re.compile(r'^\s*(?:"(?:[^"\\]|\\.)*"\s*:\s*)?("(?:[^"\\]|\\.)*")\s*,?\s*$')


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
