"""Drafting a pipeline spec from a repository (`mlthreat discover DIR`).

Finds data files, training scripts and notebooks, model artifacts (identified by content),
serving apps (FastAPI/Flask by syntax tree; TorchServe configs), DVC stages (dvc.yaml, with the
flows their deps and outs imply), MLflow models (MLmodel), Dockerfiles and CI workflows. Every
guess is written into the component's notes ("guessed: ..."), so a reviewer knows what to check;
the draft always passes `mlthreat validate`.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mlthreat.scanners import SKIP_DIRS
from mlthreat.scanners.modelfile import sniff
from mlthreat.scanners.serving import serving_apps

DATA_SUFFIXES = {".csv", ".tsv", ".parquet", ".jsonl", ".feather", ".arrow", ".avro", ".orc"}
MODEL_SUFFIXES = {".pkl", ".pickle", ".joblib", ".pt", ".pth", ".ckpt", ".bin", ".safetensors",
                  ".onnx", ".h5", ".keras", ".npz", ".sav", ".model", ".ubj", ".xgb", ".lgb"}
# Model formats the model-file scanner does not look inside; recognised by extension only.
OPAQUE_MODELS = {".tflite", ".mlmodel", ".mlpackage", ".pb", ".gguf", ".pte", ".engine", ".plan"}
CI_FILES = (".github/workflows", ".gitlab-ci.yml", "Jenkinsfile", "azure-pipelines.yml",
            ".circleci/config.yml", "bitbucket-pipelines.yml")
TRAIN_HINT = re.compile(r"\.fit\(|Trainer\(|trainer\.train\(|\.train\(|optimizer\.step\(|"
                        r"lightgbm\.train|xgboost\.train|xgb\.train|lgb\.train")
STAGE_KINDS = [(re.compile(r"train|fit|tune"), "training"),
               (re.compile(r"eval|valid|test|metric|score"), "validation"),
               (re.compile(r"serve|deploy|api"), "serving"),
               (re.compile(r"download|fetch|ingest|collect|scrape"), "data_source"),
               (re.compile(r"label|annotat"), "labeling")]
MAX_LISTED = 25


@dataclass
class Draft:
    root: Path
    components: dict[str, dict[str, Any]] = field(default_factory=dict)
    flows: list[tuple[str, str, str]] = field(default_factory=list)

    def add(self, cid: str, kind: str, name: str, guessed: str, **extra: Any) -> str:
        if cid not in self.components:
            self.components[cid] = {"id": cid, "kind": kind, "name": name, **extra,
                                    "notes": f"guessed: {guessed}"}
        return cid

    def artifact(self, cid: str, key: str, path: Path) -> None:
        items = self.components[cid].setdefault("artifacts", {}).setdefault(key, [])
        rel = os.path.relpath(path, self.root)
        if rel not in items and len(items) < MAX_LISTED:
            items.append(rel)

    def flow(self, a: str, b: str, data: str) -> None:
        if a != b and a in self.components and b in self.components and (a, b, data) not in \
                self.flows and not any(f[:2] == (a, b) for f in self.flows):
            self.flows.append((a, b, data))


def _files(root: Path) -> list[Path]:
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS and not d.startswith("."))
        if Path(dirpath).name == ".github":
            continue
        out += [Path(dirpath) / f for f in sorted(filenames)]
    for hidden in (root / ".github" / "workflows").glob("*.y*ml"):
        out.append(hidden)
    return out


def _slug(text: str) -> str:
    s = re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_.-") or "stage"
    return s if s[0].isalpha() else f"s_{s}"


def _is_model(path: Path) -> bool:
    if path.suffix.lower() in OPAQUE_MODELS:
        return True
    if path.suffix.lower() not in MODEL_SUFFIXES:
        return False
    try:
        with path.open("rb") as f:
            head = f.read(16)
    except OSError:
        return False
    return sniff(head) != "unknown" or path.suffix.lower() in {".onnx", ".safetensors", ".h5"}


def discover(root: Path) -> Draft:
    draft = Draft(root)
    files = _files(root)
    draft.add("repo", "code_repository", "Code repository", "the repository itself")
    _dvc(draft, root)
    for path in files:
        _classify(draft, path)
    _connect(draft)
    return draft


def _classify(draft: Draft, path: Path) -> None:
    suffix, name = path.suffix.lower(), path.name
    if suffix in DATA_SUFFIXES and not _in_stage(draft, path):
        draft.add("datasets", "data_store", "Data files", "data files found in the repository")
        draft.artifact("datasets", "data", path)
    elif name == "MLmodel":
        _mlflow(draft, path)
    elif _is_model(path) and not _in_stage(draft, path) and not _under_mlflow(path, draft.root):
        draft.add("model_store", "model_registry", "Model artifacts",
                  "model files found in the repository (format read from their content)")
        draft.artifact("model_store", "model", path)
    elif suffix == ".py":
        _python(draft, path)
    elif suffix == ".sql" and not _in_stage(draft, path):
        draft.add("feature_jobs", "preprocessing", "SQL feature jobs", "SQL files are assumed to "
                  "build features")
        draft.artifact("feature_jobs", "code", path)
    elif suffix == ".ipynb":
        draft.add("training", "training", "Training notebooks and scripts",
                  "notebooks are assumed to train or explore models")
        draft.artifact("training", "code", path)
    elif name == "config.properties" and "inference_address" in _text(path):
        draft.add("serving", "serving", "Model server", "a TorchServe config",
                  exposure="public")
        draft.artifact("serving", "code", path)
    elif name.startswith("Dockerfile"):
        exposed = re.findall(r"(?m)^\s*EXPOSE\s+(\S+)", _text(path))
        if exposed and "serving" in draft.components:
            draft.artifact("serving", "code", path)
        draft.add("repo", "code_repository", "Code repository", "the repository itself")
        draft.artifact("repo", "code", path)
    elif any(str(path.relative_to(draft.root)).startswith(c) for c in CI_FILES):
        draft.add("ci", "ci_cd", "CI/CD pipeline", "CI workflow files")
        draft.artifact("ci", "code", path)


def _under_mlflow(path: Path, root: Path) -> bool:
    return any((parent / "MLmodel").exists() for parent in path.parents
               if parent == root or root in parent.parents)


def _text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")[:2_000_000]
    except OSError:
        return ""


def _python(draft: Draft, path: Path) -> None:
    if serving_apps(path):
        draft.add("serving", "serving", "Serving API", "a FastAPI/Flask app; exposure not known, "
                  "assumed public until you say otherwise", exposure="public")
        draft.artifact("serving", "code", path)
    elif TRAIN_HINT.search(_text(path)) and not _in_stage(draft, path):
        draft.add("training", "training", "Training notebooks and scripts",
                  "scripts that call fit/train")
        draft.artifact("training", "code", path)


def _in_stage(draft: Draft, path: Path) -> bool:
    rel = os.path.relpath(path, draft.root)
    return any(rel in c.get("artifacts", {}).get(k, []) for c in draft.components.values()
               if c.get("_stage") for k in ("code", "data", "model"))


def _mlflow(draft: Draft, path: Path) -> None:
    try:
        meta = yaml.safe_load(_text(path)) or {}
    except yaml.YAMLError:
        meta = {}
    flavors = meta.get("flavors", {}) if isinstance(meta, dict) else {}
    fmt = None
    for flavor in flavors.values() if isinstance(flavors, dict) else []:
        if isinstance(flavor, dict) and str(flavor.get("serialization_format", "")).endswith(
                "pickle") or isinstance(flavor, dict) and str(flavor.get("pickled_model", "")):
            fmt = "pickle"
    cid = _slug(f"mlflow_{path.parent.name}")
    draft.add(cid, "model_registry", f"MLflow model {path.parent.name}",
              f"an MLmodel file (flavors: {', '.join(flavors) or 'unknown'})")
    draft.artifact(cid, "model", path.parent)
    if fmt:
        draft.components[cid]["artifacts"]["model_format"] = fmt


def _dvc(draft: Draft, root: Path) -> None:
    path = root / "dvc.yaml"
    if not path.exists():
        return
    try:
        stages = (yaml.safe_load(_text(path)) or {}).get("stages", {})
    except (yaml.YAMLError, AttributeError):
        return
    outputs: dict[str, str] = {}
    for name, stage in (stages or {}).items():
        if not isinstance(stage, dict):
            continue
        cmd = str(stage.get("cmd", ""))
        kind = next((k for pattern, k in STAGE_KINDS if pattern.search(f"{name} {cmd}")),
                    "preprocessing")
        cid = draft.add(_slug(name), kind, f"DVC stage {name}",
                        f"DVC stage '{name}' (kind from its name and command: {cmd[:60]!r})")
        draft.components[cid]["_stage"] = True
        for dep in _as_list(stage.get("deps")):
            _stage_artifact(draft, cid, root / dep)
        for out in _as_list(stage.get("outs")):
            outputs[str(out)] = cid
            _stage_artifact(draft, cid, root / out)
    for name, stage in (stages or {}).items():
        for dep in _as_list(stage.get("deps") if isinstance(stage, dict) else None):
            if str(dep) in outputs:
                draft.flow(outputs[str(dep)], _slug(name), f"{dep} (dvc)")
            elif Path(str(dep)).suffix.lower() in DATA_SUFFIXES or (root / str(dep)).is_dir():
                draft.add("datasets", "data_store", "Data files", "data files used by DVC stages")
                draft.artifact("datasets", "data", root / str(dep))
                draft.flow("datasets", _slug(name), f"{dep} (dvc)")


def _stage_artifact(draft: Draft, cid: str, path: Path) -> None:
    suffix = path.suffix.lower()
    key = "code" if suffix in (".py", ".ipynb", ".sh") else "model" if suffix in \
        MODEL_SUFFIXES else "data"
    draft.artifact(cid, key, path)


def _as_list(value: object) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list):
        return [str(next(iter(v))) if isinstance(v, dict) else str(v) for v in value]
    return [str(value)]


def _connect(draft: Draft) -> None:
    c = draft.components
    trainers = [k for k, v in c.items() if v["kind"] == "training"]
    preps = [k for k, v in c.items() if v["kind"] == "preprocessing" and not v.get("_stage")]
    stores = [k for k, v in c.items() if v["kind"] == "model_registry"]
    servers = [k for k, v in c.items() if v["kind"] == "serving"]
    if "datasets" in c and not any(f[0] == "datasets" for f in draft.flows):
        for target in (preps or trainers)[:1]:
            draft.flow("datasets", target, "training data (guessed)")
    for p in preps:
        for t in trainers:
            draft.flow(p, t, "features (guessed)")
    for t in trainers:
        for s in stores:
            if not any(f[0] == t for f in draft.flows):
                draft.flow(t, s, "trained model (guessed)")
    for s in stores + trainers:
        for srv in servers:
            draft.flow(s, srv, "model (guessed)")
    for target in trainers + servers:
        draft.flow("ci" if "ci" in c else "repo", target, "code (guessed)")
    if "ci" in c:
        draft.flow("repo", "ci", "code")


def to_yaml(draft: Draft, spec_dir: Path, name: str) -> str:
    components = []
    for comp in draft.components.values():
        comp = {k: v for k, v in comp.items() if not k.startswith("_")}
        arts = comp.get("artifacts")
        if arts:
            for key in ("data", "model", "code"):
                if key in arts:
                    arts[key] = [os.path.relpath(draft.root / p, spec_dir) for p in arts[key]]
        components.append(comp)
    spec = {"version": 1, "name": name,
            "description": "Drafted by `mlthreat discover`; check every 'guessed' note, the "
                           "exposures, owners and controls, then run `mlthreat validate`.",
            "components": components,
            "flows": [{"from": a, "to": b, "data": d} for a, b, d in draft.flows]}
    header = ("# Draft pipeline spec written by `mlthreat discover` (docs/scanning.md).\n"
              "# Everything marked 'guessed' is a guess: correct kinds, exposures and flows,\n"
              "# add owners and the controls you run, then `mlthreat model` this file.\n")
    return header + yaml.safe_dump(spec, sort_keys=False, width=100, allow_unicode=True)
