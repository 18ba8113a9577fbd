"""One conformance suite over every registered scanner: its name is its registry key, it finds
evidence only for the catalog threats it declares, it reads only the files it says it applies
to, and nothing it scans is executed."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from mlthreat.catalog import load_catalog
from mlthreat.scanners import SCANNERS, ScanContext, Scanner, scan_paths
from tests.conftest import EXAMPLES
from tests.scanners.conftest import Payload

SECRET = "hf_" + "aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3z"   # the shape of a Hugging Face token


@pytest.fixture
def repo(tmp_path: Path, marker: Path) -> Path:
    """A small repository with something for every scanner to find (and a payload that would
    create `marker` if anything ran it)."""
    (tmp_path / "model.pkl").write_bytes(pickle.dumps(Payload(marker)))
    (tmp_path / "settings.py").write_text(f'HF_TOKEN = "{SECRET}"\n')
    (tmp_path / "requirements.txt").write_text("torch\nscikit-learn>=1.0\n")
    (tmp_path / "serve.py").write_text(
        "import pickle\nfrom fastapi import FastAPI\napp = FastAPI()\n"
        "model = pickle.load(open('model.pkl', 'rb'))\n"
        "@app.post('/predict')\ndef predict(x: list[float]):\n"
        "    return {'p': model.predict_proba([x]).tolist()}\n")
    (tmp_path / ".github" / "workflows").mkdir(parents=True)
    (tmp_path / ".github" / "workflows" / "ci.yml").write_text(
        "on: push\njobs:\n  t:\n    runs-on: ubuntu-latest\n    steps:\n"
        "      - uses: acme/lint@v1\n")
    return tmp_path


@pytest.mark.parametrize("name", sorted(SCANNERS))
def test_scanner_conforms(name: str, repo: Path, marker: Path) -> None:
    scanner = SCANNERS[name]
    assert isinstance(scanner, Scanner) and scanner.name == name
    known = {t.id for t in load_catalog().threats}
    assert scanner.threat_ids and set(scanner.threat_ids) <= known
    report = scan_paths([repo], [name])
    assert report.findings, f"{name} found nothing in a repository made to have something"
    for f in report.findings:
        assert f.scanner == name and f.threat_id in scanner.threat_ids
        assert scanner.applies_to(Path(f.file))
    assert not marker.exists()


@pytest.mark.parametrize("name", sorted(SCANNERS))
def test_scanner_is_not_run_on_files_it_does_not_apply_to(name: str, repo: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    scanner = SCANNERS[name]
    seen: list[Path] = []
    monkeypatch.setattr(type(scanner), "scan",
                        lambda self, path, ctx: seen.append(path) or [])
    scan_paths([repo, EXAMPLES / "credit-scoring"], [name])
    assert seen and all(scanner.applies_to(p) for p in seen)
    assert scanner.scan(repo / "model.pkl", ScanContext()) == []   # patched: nothing real ran
