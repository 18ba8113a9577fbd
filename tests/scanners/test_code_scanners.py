"""Secrets, dependencies and serving code: what each must find, and stay quiet about."""

from __future__ import annotations

import json
from pathlib import Path

from mlthreat.scanners import SCANNERS, ScanContext, scan_paths
from mlthreat.scanners.dependencies import scan_dependencies
from mlthreat.scanners.secrets import scan_secrets
from mlthreat.scanners.serving import scan_python, scan_torchserve

# Assembled at run time so that no secret-looking literal sits in this repository.
HF = "hf_" + "aB3dE5gH7jK9mN1pQ3sT5vW7yZ9bC1dE3f"
AWS = "AKIA" + "Q3RZ7XKMB2PLW4TN"
AWS_DOCS = "AKIA" + "IOSFODNN7EXAMPLE"      # the example key of AWS's own documentation


def test_secrets_in_code_config_and_notebook_outputs(tmp_path: Path) -> None:
    (tmp_path / "train.py").write_text(f'import os\nTOKEN = "{HF}"\nx = 1\n')
    (tmp_path / "config.yaml").write_text(f"aws:\n  key: {AWS}\n")
    nb = {"cells": [{"cell_type": "code", "source": ["print(token)"],
                     "outputs": [{"output_type": "stream", "text": [f"{HF}\n"]}]}]}
    (tmp_path / "explore.ipynb").write_text(json.dumps(nb, indent=1))
    (tmp_path / "clean.py").write_text("def f(x):\n    return x + 1\n")
    py = scan_secrets(tmp_path / "train.py")
    assert any(f.line == 2 and "Hugging Face" in f.message for f in py)
    assert any("AWS" in f.message for f in scan_secrets(tmp_path / "config.yaml"))
    nb_findings = scan_secrets(tmp_path / "explore.ipynb")
    assert any("notebook" in f.message for f in nb_findings)
    assert scan_secrets(tmp_path / "clean.py") == []
    assert all(f.threat_id == "cls-secrets-in-code" for f in py)


def test_tracking_uri_with_credentials(tmp_path: Path) -> None:
    (tmp_path / "mlflow.env").write_text("MLFLOW_TRACKING_URI=https://alice:s3cret@mlflow.corp\n")
    (tmp_path / "ok.env").write_text("MLFLOW_TRACKING_URI=https://mlflow.corp\n")
    assert any("tracking" in f.message for f in scan_secrets(tmp_path / "mlflow.env"))
    assert scan_secrets(tmp_path / "ok.env") == []


def test_dependency_pinning(tmp_path: Path) -> None:
    (tmp_path / "base.txt").write_text("requests==2.31.0\n")
    (tmp_path / "requirements.txt").write_text(
        "# ml\nnumpy\nscikit-learn>=1.3\ntorch==2.13.0 --hash=sha256:abc\n-r base.txt\n"
        "git+https://github.com/x/y.git\n")
    findings = scan_dependencies(tmp_path / "requirements.txt", None)
    by_rule = {(f.rule, f.line) for f in findings}
    assert ("DEP-UNPINNED", 2) in by_rule and ("DEP-LOOSE", 3) in by_rule
    assert ("DEP-URL", 6) in by_rule
    assert not any("torch" in f.message or "requests" in f.message for f in findings)


def test_pyproject_and_conda(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "x"\ndependencies = ["pandas", "numpy==2.0.0"]\n'
        '[tool.poetry.dependencies]\npython = "^3.11"\nxgboost = "^2.0"\n')
    (tmp_path / "environment.yml").write_text(
        "dependencies:\n  - python=3.11\n  - numpy=1.26.4\n  - scipy\n  - pip:\n"
        "    - lightgbm>=4\n")
    rules = {(f.rule, f.message.split()[0]) for f in scan_dependencies(
        tmp_path / "pyproject.toml", None)}
    assert ("DEP-UNPINNED", "pandas") in rules and ("DEP-LOOSE", "xgboost>=2.0") in rules
    conda = {f.message.split()[0] for f in scan_dependencies(tmp_path / "environment.yml", None)}
    assert conda == {"scipy", "lightgbm>=4"}


def test_known_vulnerable_versions_from_osv(tmp_path: Path) -> None:
    advisory = {"id": "GHSA-test-0001", "summary": "pickle RCE in loader",
                "affected": [{"package": {"ecosystem": "PyPI", "name": "Torch"},
                              "ranges": [{"type": "ECOSYSTEM",
                                          "events": [{"introduced": "0"}, {"fixed": "2.6.0"}]}]}]}
    (tmp_path / "requirements.txt").write_text("torch==2.5.1\nnumpy==2.0.0\n")
    found = scan_dependencies(tmp_path / "requirements.txt", [advisory])
    vulnerable = [f for f in found if f.rule == "DEP-VULNERABLE"]
    assert len(vulnerable) == 1 and "GHSA-test-0001" in vulnerable[0].message
    (tmp_path / "requirements.txt").write_text("torch==2.6.0\n")
    assert not [f for f in scan_dependencies(tmp_path / "requirements.txt", [advisory])
                if f.rule == "DEP-VULNERABLE"]


FASTAPI = '''
from fastapi import Depends, FastAPI
import joblib, pickle, torch
app = FastAPI(debug=True)
model = joblib.load("m.joblib")
net = torch.load("n.pt")
safe = torch.load("n.pt", weights_only=True)

def verify_api_key(): ...

@app.post("/score")
def score(x: dict):
    return {"proba": model.predict_proba([x["f"]]).tolist()}

@app.post("/label")
def label(x: dict, user=Depends(verify_api_key)):
    return {"label": int(model.predict([x["f"]])[0])}
'''
FLASK = '''
from flask import Flask
from flask_limiter import Limiter
app = Flask(__name__)
limiter = Limiter(app)

@app.route("/predict")
def predict():
    return {"p": round(float(model.predict_proba(x)[0][1]), 1)}

app.run(host="0.0.0.0", debug=True)
'''


def test_fastapi_app(tmp_path: Path) -> None:
    path = tmp_path / "serve.py"
    path.write_text(FASTAPI)
    found = {(f.rule, f.line) for f in scan_python(path)}
    assert ("SRV-DEBUG", 4) in found
    assert ("SRV-PICKLE-LOAD", 5) in found and ("SRV-TORCH-LOAD", 6) in found
    assert not any(rule == "SRV-TORCH-LOAD" and line == 7 for rule, line in found)
    assert ("SRV-NO-AUTH", 12) in found and ("SRV-FULL-SCORES", 12) in found
    assert not any(line == 16 for _, line in found)      # authenticated, label only
    assert ("SRV-NO-RATE-LIMIT", 4) in found


def test_flask_app(tmp_path: Path) -> None:
    path = tmp_path / "app.py"
    path.write_text(FLASK)
    found = {(f.rule, f.line) for f in scan_python(path)}
    assert ("SRV-NO-AUTH", 8) in found
    assert ("SRV-BIND-ALL", 11) in found and ("SRV-DEBUG", 11) in found
    assert not any(r == "SRV-NO-RATE-LIMIT" for r, _ in found)   # flask-limiter is there
    assert not any(r == "SRV-FULL-SCORES" for r, _ in found)     # scores are rounded


def test_torchserve_config(tmp_path: Path) -> None:
    path = tmp_path / "config.properties"
    path.write_text("inference_address=http://0.0.0.0:8080\nmanagement_address=http://0.0.0.0:8081"
                    "\ndisable_token_authorization=true\n")
    found = {(f.rule, f.line, f.severity) for f in scan_torchserve(path)}
    assert ("SRV-NO-AUTH", 3, "high") in found and ("SRV-BIND-ALL", 2, "high") in found


def _notebook(cells: list[dict[str, object]]) -> str:
    """As nbformat writes one: keys sorted, one-space indents, a source line per string."""
    nb = {"cells": cells, "metadata": {"kernelspec": {"name": "python3"}, "vscode": {
        "interpreter": {"hash": "916dbcbb3f70747c44a77c7bcd40155683ae19c65e1c03b4aa3499c5328201f1"}}},
        "nbformat": 4, "nbformat_minor": 5}
    return json.dumps(nb, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def test_notebooks_are_read_for_their_code_and_text_not_images_widgets_or_ids(
        tmp_path: Path) -> None:
    import base64
    import random
    rng = random.Random(0)
    png = base64.b64encode(b"\x89PNG\r\n\x1a\n" + bytes(rng.randrange(256) for _ in range(3000)))
    widget = "".join(rng.choice("0123456789abcdef") for _ in range(32))
    cells = [
        {"cell_type": "code", "execution_count": 1, "id": "a3f1c9e0", "metadata": {},
         "source": ["import os\n", "client = Client()\n", f'TOKEN = "{HF}"\n'],
         "outputs": [{"output_type": "display_data", "metadata": {},
                      "data": {"image/png": png.decode(), "text/plain": ["<Figure>"]}},
                     {"output_type": "display_data", "metadata": {}, "data": {
                         "application/vnd.jupyter.widget-view+json": {"model_id": widget},
                         "text/plain": ["HBox(children=(FloatProgress(value=0.0)))"]}}]},
        {"cell_type": "code", "execution_count": 2, "id": "b7d2", "metadata": {},
         "source": ["print(os.environ['AWS_KEY'])"],
         "outputs": [{"output_type": "stream", "name": "stdout", "text": [f"{AWS}\n"]}]},
        {"cell_type": "markdown", "id": "c1", "metadata": {},
         "source": ["Set `api_key = \"your-api-key\"` first; the run's hash is\n",
                    "`sha256: 8071f8c6175eca3e18fb18842fbea041b655e67ca9cf317ca1066c8b060a000c`"]},
    ]
    text = _notebook(cells)
    (tmp_path / "nb.ipynb").write_text(text)
    found = scan_secrets(tmp_path / "nb.ipynb")
    lines = text.splitlines()
    hf_line = next(n for n, line in enumerate(lines, 1) if HF in line)
    aws_line = next(n for n, line in enumerate(lines, 1) if AWS in line)
    assert {(f.line, f.severity) for f in found} >= {(hf_line, "high"), (aws_line, "high")}
    assert {f.line for f in found} == {hf_line, aws_line}, found
    assert all("notebook" in f.message for f in found)


def test_placeholders_prose_and_named_ids_are_not_secrets(tmp_path: Path) -> None:
    ids = ['commit = "b4bba4717f5ba04ee25580fe8f88eed63ef0c5dc"',
           'run = {"hash": "8071f8c6175eca3e18fb18842fbea041b655e67ca9cf317ca1066c8b060a000c"}',
           'model_uuid = "af9c5bab12c64dc396c28154ea13f516"',
           'request = "3fa85f64-5717-4562-b3fc-2c963f66afa6"']
    fills = ['api_key = "your-client-secret"', 'token = "<YOUR_TOKEN>"',
             'password = "${DB_PASSWORD}"', 'secret = "xxxxxxxxxxxx"',
             'api_key = "No API key provided."', f'aws_key = "{AWS_DOCS}"']
    (tmp_path / "quiet.py").write_text("\n".join(ids + fills) + "\n")
    assert scan_secrets(tmp_path / "quiet.py") == []
    real = ['password = "hunter2hunter2"', 'blob = "q8ZLw3nVx0TfJr5sKp2mYb7dHc9gAe4u"',
            'other = "Zt6pQ1mWx8rNc3vLk5jHs0dFg7bYe2aU"', 'db_password = "letmein"',
            'secret = "my-team-secret"']
    (tmp_path / "loud.py").write_text("\n".join(real) + "\n")
    found = scan_secrets(tmp_path / "loud.py")
    # weak but real passwords stay findings: only placeholders and prose are let go; random
    # strings with no key name or known format (lines 2, 3) are not reported at all
    assert [(f.line, f.severity) for f in found] == [(1, "high"), (4, "high"), (5, "high")]


def _deps(path: Path, advisories: list[dict[str, object]] | None = None
          ) -> list[tuple[int | None, str, str]]:
    return [(f.line, f.rule, f.message.split(" ")[0]) for f in scan_dependencies(path, advisories)]


def test_conda_match_specs_are_read_as_conda_reads_them(tmp_path: Path) -> None:
    env = tmp_path / "environment.yml"
    env.write_text("name: x\n# numpy is pinned below\ndependencies:\n"
                   "  - python=3.11\n"
                   "  - numpy>=1.14.3\n"                 # 5: a range, not a pin
                   "  - scikit-learn>0.19.1\n"           # 6: the name is scikit-learn
                   "  - conda-forge::pandas=2.1\n"       # 7: 2.1.* (fuzzy): loose
                   "  - scipy=1.11.4\n"                  # exact
                   "  - lightgbm==4.1.0=py311_0\n"       # exact, with a build
                   "  - matplotlib\n"                    # 10: unpinned
                   "  - pip:\n      - requests==2.31.0\n")
    assert _deps(env) == [(5, "DEP-LOOSE", "numpy>=1.14.3"),
                          (6, "DEP-LOOSE", "scikit-learn>0.19.1"),
                          (7, "DEP-LOOSE", "pandas==2.1.*"),
                          (10, "DEP-UNPINNED", "matplotlib")]


def test_a_lock_file_pins_its_projects_ranges_and_is_checked_against_advisories(
        tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "x"\n# we need numpy for the features\n'
        'dependencies = [\n  "numpy>=1.20",\n  "requests",\n]\n')
    assert _deps(tmp_path / "pyproject.toml") == [(5, "DEP-LOOSE", "numpy>=1.20"),
                                                  (6, "DEP-UNPINNED", "requests")]
    lock = ('version = 1\n\n[[package]]\nname = "numpy"\nversion = "1.21.0"\n'
            'sdist = { url = "https://x/numpy-1.21.0.tar.gz", hash = "sha256:00" }\n')
    advisory = {"id": "PYSEC-TEST-1", "summary": "test advisory", "affected": [{
        "package": {"ecosystem": "PyPI", "name": "NumPy"},
        "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1.22.0"}]}]}]}
    for name in ("uv.lock", "poetry.lock"):
        (tmp_path / name).write_text(lock)
        # numpy is resolved by the lock; requests is not in it and stays unpinned
        assert _deps(tmp_path / "pyproject.toml") == [(6, "DEP-UNPINNED", "requests")]
        assert _deps(tmp_path / name) == []
        assert _deps(tmp_path / name, [advisory]) == [(4, "DEP-VULNERABLE", "numpy==1.21.0")]
        (tmp_path / name).unlink()
    (tmp_path / "Pipfile.lock").write_text(json.dumps({"default": {
        "numpy": {"version": "==1.21.0", "hashes": ["sha256:00"]}}}, indent=4))
    assert _deps(tmp_path / "Pipfile.lock", [advisory])[0][1:] == ("DEP-VULNERABLE",
                                                                   "numpy==1.21.0")


SERVICE = '''\
from fastapi import APIRouter, FastAPI
from fastapi.responses import HTMLResponse

app = FastAPI()
router = APIRouter()
model = load()


def run_model(features):
    return model.predict([features])


@app.get("/health")
def health():
    return {"ok": True}


@app.get("/", response_class=HTMLResponse)
def index():
    return "<h1>hello</h1>"


@app.post("/score")
def score(features: list[float]):
    return {"label": int(run_model(features)[0])}


@router.get("/items")
def items():
    return []
'''


def test_authentication_is_judged_on_routes_that_reach_a_model(tmp_path: Path) -> None:
    path = tmp_path / "service.py"
    path.write_text(SERVICE)
    found = {(f.rule, f.line) for f in scan_python(path)}
    no_auth = sorted(line for rule, line in found if rule == "SRV-NO-AUTH")
    assert no_auth == [24]               # /score, through run_model; not /health, / or /items
    limits = [line for rule, line in found if rule == "SRV-NO-RATE-LIMIT"]
    assert limits == [4]                 # once, for the app; the router is not another app


def test_every_way_of_binding_all_interfaces_and_of_running_downloaded_code(
        tmp_path: Path) -> None:
    (tmp_path / "wsgi.py").write_text(
        "from gevent.pywsgi import WSGIServer\nfrom app import app\n"
        "WSGIServer(('0.0.0.0', 5000), app).serve_forever()\n"
        "WSGIServer(('127.0.0.1', 5001), app).serve_forever()\n")
    (tmp_path / "gunicorn.conf.py").write_text('bind = "0.0.0.0:8000"\nworkers = 4\n')
    (tmp_path / "load.py").write_text(
        "import torch\nfrom transformers import AutoModel\n"
        "a = torch.hub.load('ultralytics/yolov5', 'yolov5s', skip_validation=True)\n"
        "b = torch.hub.load('pytorch/vision:v0.17.0', 'resnet18')\n"
        "c = AutoModel.from_pretrained('org/model', trust_remote_code=True)\n"
        "d = AutoModel.from_pretrained('org/model', revision='abc123')\n")

    # `app` imported from flask (the module), then bound to the application (holdout-5's
    # Diabetes app): its run() is the app's
    (tmp_path / "shadow.py").write_text(
        "from flask import Flask, request, app\napp = Flask(__name__)\n"
        "if __name__ == '__main__':\n    app.run(host='0.0.0.0')\n")

    def rules(name: str) -> list[tuple[str, int | None, str]]:
        return [(f.rule, f.line, f.severity) for f in scan_python(tmp_path / name)]
    assert rules("shadow.py") == [("SRV-BIND-ALL", 4, "low")]
    assert rules("wsgi.py") == [("SRV-BIND-ALL", 3, "low")]
    assert rules("gunicorn.conf.py") == [("SRV-BIND-ALL", 1, "low")]
    assert rules("load.py") == [("SRV-TORCH-HUB", 3, "high"), ("SRV-TORCH-HUB", 4, "medium"),
                                ("SRV-REMOTE-CODE", 5, "high")]


def test_unsafe_loads_are_found_under_any_import_name(tmp_path: Path) -> None:
    (tmp_path / "restore.py").write_text(
        "import pickle as pkl\nfrom torch import load\nfrom joblib import load as jl\n"
        "import torch.hub as th\nfrom json import load as jload\n\n"
        "a = pkl.load(open('a.pkl', 'rb'))\n"          # 7
        "b = load('b.pt')\n"                           # 8
        "c = jl('c.joblib')\n"                         # 9
        "d = load('d.pt', weights_only=True)\n"        # safe
        "e = jload(open('e.json'))\n"                  # json: safe
        "f = th.load('org/repo', 'm')\n")              # 12
    found = [(f.rule, f.line) for f in scan_python(tmp_path / "restore.py")]
    assert found == [("SRV-PICKLE-LOAD", 7), ("SRV-TORCH-LOAD", 8), ("SRV-PICKLE-LOAD", 9),
                     ("SRV-TORCH-HUB", 12)]


def test_secrets_defaults_paths_dna_and_encoded_data_are_not_secrets(tmp_path: Path) -> None:
    """Shapes that fooled the scanner on public repositories, each beside the real secret of the
    same shape, which must stay."""
    cases = {
        # user:password@host: stand-in names, documented defaults, nowhere hosts vs a real one
        "urls.md": ("postgresql://DB_USER:DB_PASSWORD@db.internal:5432/x\n"
                    "postgres://postgres:postgres@localhost:5432/main\n"
                    "mssql://user:pass@server:1433/testdb\n"
                    "http://user:hunter2@proxy.example.com:8080\n"
                    "postgres://svc:Zq8vTn3LwP2k@db.prod.corp.net:5432/main\n"),
        # an environment variable with a default; a key file's path; a test double
        "settings.yaml": ("rabbit:\n  password: ${RABBITMQ_PASSWORD:guest}\n"
                          "private_key_file=resources/key.pem\n"
                          'api_key = "sk-123"\napi_key = "test_key"\n'
                          'password = "Zq8vTn3LwP2k"\n'),
        # a DNA read that starts like an AWS key id, and a real-looking one
        "reads.txt": "ACCAGTTGACCATGGTACCAGTAC\n" + f"aws_id = {AWS}\n",
    }
    for name, text in cases.items():
        (tmp_path / name).write_text(text)
    assert [f.line for f in scan_secrets(tmp_path / "urls.md")] == [5]
    assert [f.line for f in scan_secrets(tmp_path / "settings.yaml")] == [6]
    assert [f.line for f in scan_secrets(tmp_path / "reads.txt")] == [2]
    # a word and what the value stands for (a local test database's deepface_pass) against a
    # real password in the same place
    (tmp_path / "docker-compose.yml").write_text(
        "services:\n  db:\n    environment:\n      POSTGRES_PASSWORD: deepface_pass\n"
        "  db2:\n    environment:\n      POSTGRES_PASSWORD: Zq8vTn3LwP2k\n")
    assert [f.line for f in scan_secrets(tmp_path / "docker-compose.yml")] == [7]
    # tox's spelling of an environment variable with a default (holdout-6's test database)
    (tmp_path / "tox.ini").write_text(
        "[testenv]\nsetenv =\n  DB_PASSWORD={env:DB_PASSWORD:password}\n"
        "[testenv:deploy]\nsetenv =\n  DB_PASSWORD=Zq8vTn3LwP2k\n")
    assert [f.line for f in scan_secrets(tmp_path / "tox.ini")] == [6]


def test_requirements_a_published_setup_py_reads_are_package_metadata(tmp_path: Path) -> None:
    (tmp_path / "requirements.txt").write_text("numpy>=1.14\npandas\n")
    (tmp_path / "requirements-dev.txt").write_text("pytest>=8\n")
    setup = ('from setuptools import setup\nwith open("requirements.txt") as f:\n'
             '    reqs = f.read().splitlines()\n'
             'setup(name="x", url="https://github.com/o/x", install_requires=reqs{})\n')
    (tmp_path / "setup.py").write_text(setup.format(""))
    # a development environment beside it is still an environment
    assert scan_dependencies(tmp_path / "requirements.txt", None) == []
    assert [f.rule for f in scan_dependencies(tmp_path / "requirements-dev.txt", None)] == [
        "DEP-LOOSE"]
    # a setup.py that is no published package (no url, classifiers or keywords) keeps the file
    # an environment, and so does one that does not read the file
    (tmp_path / "setup.py").write_text(setup.format("").replace(
        'url="https://github.com/o/x", ', ""))
    assert [f.rule for f in scan_dependencies(tmp_path / "requirements.txt", None)] == [
        "DEP-LOOSE", "DEP-UNPINNED"]
    (tmp_path / "setup.py").write_text(
        'from setuptools import setup\nsetup(name="x", url="u", install_requires=["numpy"])\n')
    assert len(scan_dependencies(tmp_path / "requirements.txt", None)) == 2


def test_pages_health_apps_tests_and_torch_defaults(tmp_path: Path) -> None:
    """What fooled the serving scanner on public repositories: an HTML page whose text says
    "Prediction", an app with only a health check, apps in a test suite, torch.load on a
    PyTorch whose default is weights_only=True."""
    (tmp_path / "app.py").write_text(
        "from flask import Flask\napp = Flask(__name__)\n"
        "@app.route('/')\ndef get_info():\n    return '<h1>Ride Prediction Service</h1>'\n"
        "@app.route('/predict', methods=['POST'])\ndef score():\n"
        "    return str(model.predict([[1]]))\n")
    (tmp_path / "healthcheck.py").write_text(
        "from fastapi import FastAPI\napp = FastAPI()\n"
        "@app.get('/healthz')\ndef healthz():\n    return {'ok': True}\n")
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_api.py").write_text((tmp_path / "app.py").read_text())
    (tmp_path / "ckpt.py").write_text(
        "import torch\na = torch.load('a.pt')\nb = torch.load('b.pt', weights_only=False)\n")
    found = {(f.file, f.rule, f.line, f.severity)
             for f in scan_paths([tmp_path], ["serving"]).findings}
    assert found == {("app.py", "SRV-NO-AUTH", 7, "high"),
                     ("app.py", "SRV-NO-RATE-LIMIT", 2, "medium"),
                     ("ckpt.py", "SRV-TORCH-LOAD", 2, "low"),
                     ("ckpt.py", "SRV-TORCH-LOAD", 3, "high")}
    # a test file named on its own is scanned: the user asked for it
    assert scan_paths([tmp_path / "tests" / "test_api.py"], ["serving"]).findings


def test_loaders_under_other_names_and_weight_downloads(tmp_path: Path) -> None:
    sha = "0123456789abcdef0123456789abcdef01234567"
    (tmp_path / "serve.py").write_text(
        "import functools, pickle, torch, urllib.request\n"
        "from huggingface_hub import hf_hub_download\n"
        "restore = functools.partial(torch.load, map_location='cpu')\n"      # 3
        "safe = functools.partial(torch.load, weights_only=True)\n"
        "class M:\n    loader = pickle.load\n"
        "    def get(self, f):\n        return self.loader(f)\n"              # 8
        "a = restore('m.pt')\n"                                              # 9
        "b = safe('m.pt')\n"
        "c = hf_hub_download('org/model', 'model.safetensors')\n"            # 11
        f"d = hf_hub_download('org/model', 'model.safetensors', revision='{sha}')\n"
        "e = hf_hub_download('org/model', 'model.safetensors', revision='main')\n"   # 13
        "f = torch.hub.load_state_dict_from_url('https://x.org/r.pth', check_hash=True)\n"
        "g = urllib.request.urlretrieve('https://x.org/m/resnet.pth', 'r.pth')\n"    # 15
        "h = urllib.request.urlretrieve('https://x.org/data/train.csv', 't.csv')\n"
        "i = hf_hub_download(repo, name)\n")                   # where from is not in this file
    found = [(f.rule, f.line, f.severity) for f in scan_python(tmp_path / "serve.py")]
    assert found == [("SRV-PICKLE-LOAD", 8, "high"), ("SRV-TORCH-LOAD", 9, "low"),
                     ("SRV-WEIGHTS-DOWNLOAD", 11, "medium"), ("SRV-WEIGHTS-DOWNLOAD", 13, "medium"),
                     ("SRV-WEIGHTS-DOWNLOAD", 15, "medium")]


def test_dockerfile_commands_that_bind_every_interface(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text(
        "FROM python:3.12-slim\nEXPOSE 8000\n"
        'CMD ["uvicorn", "app:app", "--host", "0.0.0.0", "--port", "8000"]\n')
    (tmp_path / "mlflow.Dockerfile").write_text(
        "FROM python:3.12\nRUN pip install mlflow\n"
        "ENTRYPOINT mlflow server \\\n    --host 0.0.0.0 --port 5000\n")
    (tmp_path / "Dockerfile.auth").write_text(
        "FROM python:3.12\nCMD mlflow server --host 0.0.0.0 --app-name basic-auth\n")
    (tmp_path / "Dockerfile.local").write_text(
        "FROM python:3.12\nCMD uvicorn app:app --host 127.0.0.1\n")
    scanner = SCANNERS["serving"]

    def rules(name: str) -> list[tuple[str, str, int | None, str]]:
        return [(f.rule, f.threat_id, f.line, f.severity)
                for f in scanner.scan(tmp_path / name, ScanContext())]
    assert rules("Dockerfile") == [("SRV-BIND-ALL", "cls-public-app-exploit", 3, "low")]
    assert rules("mlflow.Dockerfile") == [("SRV-BIND-ALL", "cls-unauthenticated-api", 3, "high")]
    assert rules("Dockerfile.auth") == [("SRV-BIND-ALL", "cls-public-app-exploit", 2, "low")]
    assert rules("Dockerfile.local") == []
    # the command is ENTRYPOINT followed by CMD's arguments; a later stage starts afresh
    (tmp_path / "Dockerfile.split").write_text(
        'FROM python:3.12\nENTRYPOINT ["uvicorn"]\nCMD ["api.main:app", "--host", "0.0.0.0"]\n')
    (tmp_path / "Dockerfile.stages").write_text(
        'FROM python:3.12 AS build\nENTRYPOINT ["uvicorn"]\nFROM python:3.12\n'
        'CMD ["report.html", "--host", "0.0.0.0"]\n')
    assert rules("Dockerfile.split") == [("SRV-BIND-ALL", "cls-public-app-exploit", 3, "low")]
    assert rules("Dockerfile.stages") == []


def test_a_route_reaches_a_model_through_a_helper_named_in_snake_case(tmp_path: Path) -> None:
    # face_recognition's web service: the page's POST runs the model through a helper whose
    # name, not its body's words, says what it does
    (tmp_path / "svc.py").write_text(
        "import face_recognition\nfrom flask import Flask, request\napp = Flask(__name__)\n"
        "@app.route('/', methods=['GET', 'POST'])\ndef upload_image():\n"
        "    if request.method == 'POST':\n"
        "        return detect_faces_in_image(request.files['file'])\n"
        "    return '<form method=post></form>'\n"
        "def detect_faces_in_image(f):\n"
        "    return face_recognition.face_encodings(face_recognition.load_image_file(f))\n"
        "@app.route('/about')\ndef about_page():\n    return render_template('about.html')\n")
    found = {(f.rule, f.line) for f in scan_python(tmp_path / "svc.py")}
    assert found == {("SRV-NO-AUTH", 5), ("SRV-NO-RATE-LIMIT", 3)}


def test_a_published_packages_ranges_and_git_commits_are_not_unpinned_installs(
        tmp_path: Path) -> None:
    lib, app = tmp_path / "lib", tmp_path / "app"
    lib.mkdir(), app.mkdir()
    body = '[project]\nname = "x"\ndependencies = ["numpy>=1.24", "torch"]\n'
    (lib / "pyproject.toml").write_text(
        body + 'classifiers = ["Programming Language :: Python :: 3"]\n')
    (app / "pyproject.toml").write_text(body)
    assert scan_dependencies(lib / "pyproject.toml", None) == []
    assert [(f.rule, f.line) for f in scan_dependencies(app / "pyproject.toml", None)] == [
        ("DEP-LOOSE", 3), ("DEP-UNPINNED", 3)]
    sha = "2ab75add4b30c2fc44a8bf575156d448d9ed8700"
    (app / "requirements.txt").write_text(
        f"git+https://github.com/org/lib.git@{sha}\n"
        "git+https://github.com/org/lib.git@main\n"
        f"lib @ git+https://github.com/org/lib.git@{sha}\n")
    assert [(f.rule, f.line) for f in scan_dependencies(app / "requirements.txt", None)] == [
        ("DEP-URL", 2)]


def test_torch_load_forced_unsafe_by_a_patch_a_switch_or_a_library_wrapper(
        tmp_path: Path) -> None:
    (tmp_path / "patch.py").write_text(
        "import os, torch\n"
        "from ultralytics.utils.patches import torch_load\n"
        "_orig = torch.load\n"
        "def patched(*args, **kwargs):\n"
        "    kwargs['weights_only'] = False\n"                               # 5
        "    return _orig(*args, **kwargs)\n"
        "torch.load = patched\n"
        "os.environ['TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD'] = '1'\n"             # 8
        "opts = {}\nopts.setdefault('weights_only', False)\n"                # 10
        "ckpt = torch_load('w.pt', map_location='cpu')\n"                    # 11
        "safe = torch_load('w.pt', weights_only=True)\n"
        "os.environ['TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD'] = '0'\n"
        "flags = {'weights_only': True}\n")
    found = [(f.rule, f.line, f.severity) for f in scan_python(tmp_path / "patch.py")]
    # line 6 calls the saved torch.load under another name: the same unsafe load (low on its
    # own; the forcing at line 5 is the high one)
    assert found == [("SRV-TORCH-LOAD", 5, "high"), ("SRV-TORCH-LOAD", 6, "low"),
                     ("SRV-TORCH-LOAD", 8, "high"), ("SRV-TORCH-LOAD", 10, "high"),
                     ("SRV-TORCH-LOAD", 11, "high")]


def test_jupyter_without_a_token_in_a_container_is_critical(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text(
        'FROM python:3.12\nCMD ["jupyter", "notebook", "--ip=0.0.0.0", "--port=8888", '
        '"--IdentityProvider.token=\'\'"]\n')
    (tmp_path / "Dockerfile.token").write_text(
        'FROM python:3.12\nCMD ["jupyter", "lab", "--ip=0.0.0.0"]\n')
    scanner = SCANNERS["serving"]
    assert [(f.line, f.severity) for f in scanner.scan(tmp_path / "Dockerfile",
                                                       ScanContext())] == [(2, "critical")]
    assert [(f.line, f.severity) for f in scanner.scan(tmp_path / "Dockerfile.token",
                                                       ScanContext())] == [(2, "low")]


def test_downloads_of_metadata_and_routes_under_a_status_path(tmp_path: Path) -> None:
    (tmp_path / "fetch.py").write_text(
        "from huggingface_hub import hf_hub_download\n"
        "a = hf_hub_download(repo_id=args.repo, filename='vae/model.safetensors')\n"
        "b = hf_hub_download(repo_id='org/meta', filename='tags.json')\n"
        "c = hf_hub_download('org/data', 'x.bin', repo_type='dataset')\n"
        "d = hf_hub_download('org/model', filename='model.safetensors')\n")         # 5
    assert [(f.rule, f.line) for f in scan_python(tmp_path / "fetch.py")] == [
        ("SRV-WEIGHTS-DOWNLOAD", 5)]
    (tmp_path / "api.py").write_text(
        "from fastapi import FastAPI\napp = FastAPI()\n"
        "@app.get('/api/status')\ndef get_status():\n    return {'model': cfg.model}\n"
        "@app.post('/api/infer')\ndef infer(x: dict):\n    return pipe.generate(x)\n")
    assert [(f.rule, f.line) for f in scan_python(tmp_path / "api.py")
            if f.rule == "SRV-NO-AUTH"] == [("SRV-NO-AUTH", 7)]


def test_weights_only_passed_through_a_keyword_dict(tmp_path: Path) -> None:
    (tmp_path / "load.py").write_text(
        "import torch\n"
        "kw = {'weights_only': True} if new_torch else {}\n"
        "a = torch.load(path, map_location='cpu', **kw)\n"
        "b = torch.load(path, **dict(weights_only=True))\n"
        "c = torch.load(path, **other)\n")                                       # 5
    assert [(f.line, f.severity) for f in scan_python(tmp_path / "load.py")] == [(5, "low")]


def test_includes_library_requirements_and_variable_names(tmp_path: Path) -> None:
    """Found on the hold-out repositories: an -r include reported twice, a published library's
    requirements.txt mirroring its pyproject, an environment variable's name as a 'secret'."""
    (tmp_path / "requirements-core.txt").write_text("scipy\n")
    (tmp_path / "requirements-dev.txt").write_text("-r requirements-core.txt\ntorch\n")
    found = scan_paths([tmp_path], ["dependencies"]).findings
    assert sorted((f.file, f.line) for f in found) == [("requirements-core.txt", 1),
                                                       ("requirements-dev.txt", 2)]
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "pyproject.toml").write_text(
        '[project]\nname = "x"\nclassifiers = ["X"]\ndependencies = ["numpy", "torch"]\n')
    (lib / "requirements.txt").write_text("numpy\ntorch\n")
    assert scan_dependencies(lib / "requirements.txt", None) == []
    (lib / "requirements.txt").write_text("numpy\ntorch\nflask\n")     # more than the package
    assert len(scan_dependencies(lib / "requirements.txt", None)) == 3
    (tmp_path / "config.py").write_text(
        'api_key_env = "OPENAI_API_KEY"\n_KEY_ENV = "LANGSMITH_PROMPT_API_KEY"\n'
        'api_key = "Zq8vTn3LwP2kR7sX"\n')
    assert [f.line for f in scan_secrets(tmp_path / "config.py")] == [3]


def test_a_route_that_starts_training_without_authentication_is_found(tmp_path: Path) -> None:
    """holdout-5's wafer app: POST /train retrains on a folder the client names. A route whose
    code calls something named for training (camelCase or snake_case, or .fit) and has no
    authentication is found; with a login decorator it is not; a route whose only link to
    training is in its strings (a page about training) is not."""
    (tmp_path / "main.py").write_text(
        "from flask import Flask, request\nfrom trainingModel import trainModel\n"
        "app = Flask(__name__)\n"
        "@app.route('/train', methods=['POST'])\ndef trainRouteClient():\n"        # 5
        "    obj = trainModel()\n    obj.trainingModel()\n    return 'ok'\n"
        "@app.route('/refit', methods=['POST'])\n@login_required\ndef refit():\n"   # 11
        "    clf.fit(X, y)\n    return 'ok'\n"
        "@app.route('/docs/training')\ndef training_page():\n"                      # 15
        "    return render_template('t.html', title='How we train the model')\n"
        "@app.route('/outfit')\ndef outfit():\n    return pick_outfit()\n")
    found = {(f.rule, f.line) for f in scan_python(tmp_path / "main.py")}
    assert ("SRV-NO-AUTH", 5) in found
    assert not {line for rule, line in found if rule == "SRV-NO-AUTH"} - {5}
    message = next(f.message for f in scan_python(tmp_path / "main.py") if f.line == 5)
    assert "retrain the model on data they choose" in message


def test_azure_ml_web_services_without_keys_are_found(tmp_path: Path) -> None:
    """holdout-5's MLOpsPython: an ACI deployment configuration without authEnabled answers
    anyone (ACI is keyless by default), while AKS is keyed unless turned off. The same in the
    SDK's deploy_configuration; a Kubernetes manifest named like a deployment is not read as one."""
    from mlthreat.scanners.serving import ServingScanner
    cases = {
        "deployment_config_aci.yml": ("computeType: ACI\ncontainerResourceRequirements:\n"
                                      "  cpu: 1\n", [1]),
        "deploy_config_aci_keyed.yml": ("computeType: ACI\nauthEnabled: True\n", []),
        "deployment_config_aks.yml": ("computeType: AKS\nautoScaler:\n  minReplicas: 1\n", []),
        "deployment_config_aks_open.yml": ("computeType: AKS\nauthEnabled: false\n", [2]),
        "deployment_config_token.json": ('{"computeType": "AKS", "authEnabled": false,\n'
                                         ' "tokenAuthEnabled": true}\n', []),
        "k8s-deployment-config.yaml": ("apiVersion: apps/v1\nkind: Deployment\n", []),
    }
    scanner = ServingScanner()
    for name, (text, lines) in cases.items():
        (tmp_path / name).write_text(text)
        assert scanner.applies_to(tmp_path / name), name
        found = scanner.scan(tmp_path / name, None)  # type: ignore[arg-type]
        assert [(f.rule, f.line) for f in found] == [("SRV-NO-AUTH", n) for n in lines], name
    (tmp_path / "deploy.py").write_text(
        "from azureml.core.webservice import AciWebservice, AksWebservice\n"
        "a = AciWebservice.deploy_configuration(cpu_cores=1, memory_gb=1)\n"        # 2
        "b = AciWebservice.deploy_configuration(auth_enabled=True)\n"
        "c = AksWebservice.deploy_configuration(autoscale_enabled=True)\n"
        "d = AksWebservice.deploy_configuration(auth_enabled=False)\n"              # 5
        "e = AksWebservice.deploy_configuration(auth_enabled=False, token_auth_enabled=True)\n"
        "f = AciWebservice.deploy_configuration(auth_enabled=flag)\n")
    assert [(f.rule, f.line) for f in scan_python(tmp_path / "deploy.py")] == [
        ("SRV-NO-AUTH", 2), ("SRV-NO-AUTH", 5)]


def test_routes_reach_models_and_routers_across_the_repositorys_modules(tmp_path: Path) -> None:
    """holdout-6: a route calling a function of another module of the repository that runs the
    model (dvc-fastapi-mlops), and an app that includes a router of model routes
    (fast-ml-deploy), are judged as if the code were in one file; a library's function and a
    router without model routes are not."""
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "__init__.py").write_text("")
    (tmp_path / "app" / "core.py").write_text(
        "from src.model import ProjectModel\nproject_model = ProjectModel.load('m')\n"
        "def post_example_core(body):\n    return answer(body)\n"
        "def answer(body):\n    return project_model.predict(body)\n"
        "def describe(body):\n    return {'name': body.name}\n")
    (tmp_path / "app" / "main.py").write_text(
        "from fastapi import FastAPI\nfrom .core import post_example_core, describe\n"
        "from json import dumps\napp = FastAPI()\n"
        "@app.post('/')\ndef post_example(body: dict):\n    return post_example_core(body)\n"
        "@app.post('/about')\ndef about(body: dict):\n    return dumps(describe(body))\n")
    found = {(f.rule, f.line) for f in scan_python(tmp_path / "app" / "main.py")}
    assert found == {("SRV-NO-AUTH", 6), ("SRV-NO-RATE-LIMIT", 4)}

    (tmp_path / "routes" / "v1").mkdir(parents=True)
    (tmp_path / "routes" / "v1" / "iris.py").write_text(
        "from fastapi import APIRouter\nimport models.ml.classifier as clf\n"
        "router = APIRouter()\n@router.post('/iris/predict')\ndef get_prediction(x: dict):\n"
        "    return clf.model.predict(x['data']).tolist()\n")
    (tmp_path / "routes" / "pages.py").write_text(
        "from fastapi import APIRouter\npages = APIRouter()\n"
        "@pages.get('/')\ndef home():\n    return 'hello'\n")
    (tmp_path / "main.py").write_text(
        "from fastapi import FastAPI\nfrom routes.v1.iris import router\n"
        "from routes.pages import pages\napp = FastAPI()\n"
        "app.include_router(pages)\napp.include_router(router, prefix='/v1')\n")
    assert {(f.rule, f.line) for f in scan_python(tmp_path / "main.py")} == \
        {("SRV-NO-RATE-LIMIT", 4)}
    (tmp_path / "main.py").write_text(
        "from fastapi import FastAPI\nfrom routes.pages import pages\napp = FastAPI()\n"
        "app.include_router(pages)\n")
    assert scan_python(tmp_path / "main.py") == []
    # the router limits its own requests: the app is limited
    (tmp_path / "routes" / "v1" / "iris.py").write_text(
        "from fastapi import APIRouter\nimport models.ml.classifier as clf\n"
        "from slowapi import Limiter\nlimiter = Limiter(key_func=None)\n"
        "router = APIRouter()\n@router.post('/iris/predict')\n@limiter.limit('5/minute')\n"
        "def get_prediction(x: dict):\n    return clf.model.predict(x['data']).tolist()\n")
    # (the router file changed since it was last read: it is read again)
    (tmp_path / "main.py").write_text(
        "from fastapi import FastAPI\nfrom routes.v1.iris import router\napp = FastAPI()\n"
        "app.include_router(router)\n")
    assert scan_python(tmp_path / "main.py") == []


def test_a_download_url_spelled_by_module_constants_is_read(tmp_path: Path) -> None:
    # ml-deployment-k8s-fastapi: the model's URL is an f-string of module constants
    (tmp_path / "main.py").write_text(
        "import urllib.request\nMODEL_FN = 'resnet50.onnx'\n"
        "BASE = 'https://github.com/o/r/releases/download/v1.0.0/'\n"
        "DEFAULT_MODEL_URL = f'{BASE}{MODEL_FN}'\nLABELS_URL = BASE + 'labels.txt'\n"
        "def load(url):\n"
        "    urllib.request.urlretrieve(DEFAULT_MODEL_URL, MODEL_FN)\n"   # 7: weights, fixed URL
        "    urllib.request.urlretrieve(url, MODEL_FN)\n"                 # URL decided at run time
        "    urllib.request.urlretrieve(LABELS_URL, 'labels.txt')\n")     # not weights
    found = [(f.rule, f.line) for f in scan_python(tmp_path / "main.py")]
    assert found == [("SRV-WEIGHTS-DOWNLOAD", 7)]


def test_debug_in_a_test_configuration_class_is_the_tests_own(tmp_path: Path) -> None:
    (tmp_path / "config.py").write_text(
        "class Config:\n    DEBUG = False\n"
        "class DevelopmentConfig(Config):\n    DEBUG = True\n"                # 4: run.py uses it
        "class TestingConfig(Config):\n    DEBUG = True\n    TESTING = True\n"
        "class TestConfig(Config):\n    DEBUG = True\n")
    assert [(f.rule, f.line) for f in scan_python(tmp_path / "config.py")] == [("SRV-DEBUG", 4)]


def test_openapi_operations_routed_to_model_functions_without_security(tmp_path: Path) -> None:
    """connexion routes an OpenAPI file's operations to Python functions by operationId: an
    operation whose function (in this repository) runs a model, with no security scheme, answers
    anyone; a secured spec, a health operation and a library's function are not findings."""
    from mlthreat.scanners.serving import ServingScanner
    (tmp_path / "api" / "spec").mkdir(parents=True)
    (tmp_path / "api" / "__init__.py").write_text("")
    (tmp_path / "api" / "controller.py").write_text(
        "from model_pkg.predict import make_prediction\n"
        "def health():\n    return {'status': 'ok'}\n"
        "def predict():\n    return make_prediction(input_data=request.get_json())\n")
    spec = ("openapi: 3.0.0\npaths:\n  /:\n    get:\n      operationId: api.controller.health\n"
            "  /v1/predictions:\n    post:\n      operationId: api.controller.predict\n"
            "  /v1/other:\n    post:\n      operationId: json.dumps\n")
    (tmp_path / "api" / "spec" / "api.yaml").write_text(spec)
    scanner = ServingScanner()
    path = tmp_path / "api" / "spec" / "api.yaml"
    assert scanner.applies_to(path)
    assert [(f.rule, f.line) for f in scanner.scan(path, None)] == [  # type: ignore[arg-type]
        ("SRV-NO-AUTH", 8)]
    path.write_text(spec + "security:\n  - api_key: []\n")
    assert scanner.scan(path, None) == []  # type: ignore[arg-type]
    # an operation's empty `security` switches the file's off for it
    path.write_text(spec.replace("operationId: api.controller.predict\n",
                                 "operationId: api.controller.predict\n      security: []\n")
                    + "security:\n  - api_key: []\n")
    assert [(f.rule, f.line) for f in scanner.scan(path, None)] == [  # type: ignore[arg-type]
        ("SRV-NO-AUTH", 8)]
    (tmp_path / "data.json").write_text('{"paths": {"/x": {"post": {"operationId": "a.b"}}}}')
    assert scanner.scan(tmp_path / "data.json", None) == []  # type: ignore[arg-type]


def test_a_connexion_app_is_judged_on_the_operations_of_its_openapi_file(tmp_path: Path) -> None:
    (tmp_path / "api" / "spec").mkdir(parents=True)
    (tmp_path / "api" / "__init__.py").write_text("")
    (tmp_path / "api" / "controller.py").write_text(
        "from model_pkg.predict import make_prediction\n"
        "def predict():\n    return make_prediction(input_data=request.get_json())\n")
    (tmp_path / "api" / "spec" / "api.yaml").write_text(
        "openapi: 3.0.0\nsecurity:\n  - key: []\npaths:\n  /v1/predictions:\n    post:\n"
        "      operationId: api.controller.predict\n")
    app = ("import connexion\n\ndef create_app():\n"
           "    app = connexion.App(__name__, specification_dir='spec/')\n"
           "    app.add_api('api.yaml')\n    return app\n")
    (tmp_path / "api" / "app.py").write_text(app)
    assert [(f.rule, f.line) for f in scan_python(tmp_path / "api" / "app.py")] == [
        ("SRV-NO-RATE-LIMIT", 4)]         # authenticated, but not limited
    (tmp_path / "api" / "app.py").write_text(
        app.replace("    return app\n", "    Limiter(app.app, default_limits=['5/minute'])\n"
                    "    return app\n").replace("import connexion\n",
                                               "import connexion\nfrom flask_limiter import Limiter\n"))
    assert scan_python(tmp_path / "api" / "app.py") == []
    (tmp_path / "api" / "app.py").write_text(app.replace("api.yaml", "other.yaml"))
    assert scan_python(tmp_path / "api" / "app.py") == []    # no such file: nothing to judge


def test_modules_above_the_projects_root_are_not_looked_for(tmp_path: Path) -> None:
    (tmp_path / "helpers.py").write_text("def answer(x):\n    return model.predict(x)\n")
    (tmp_path / "proj").mkdir()
    (tmp_path / "proj" / "main.py").write_text(
        "from fastapi import FastAPI\nfrom helpers import answer\napp = FastAPI()\n"
        "@app.post('/')\ndef post(x: dict):\n    return answer(x)\n")
    assert {f.rule for f in scan_python(tmp_path / "proj" / "main.py")} == {
        "SRV-NO-AUTH", "SRV-NO-RATE-LIMIT"}          # found one level up
    (tmp_path / "proj" / "pyproject.toml").write_text("[project]\nname = 'p'\n")
    assert scan_python(tmp_path / "proj" / "main.py") == []  # the project ends at pyproject.toml
