"""Parity with the real loaders, shown differentially: for each structural trick a harmless twin
(its call is a marker function of a throw-away module) is loaded by the real loader in a
subprocess, which proves the loader runs code placed that way; the scanner must flag that very
call at high or above. The armed versions (os.system) are checked in test_payload_corpus."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from benchmarks import payloads

from mlthreat.scanners.modelfile import scan_path

LOADERS = {
    "pickle": "import pickle\nwith open(path, 'rb') as f:\n    pickle.load(f)",
    "joblib": "import joblib\njoblib.load(path)",
    "numpy": "import numpy as np\nnp.load(path, allow_pickle=True)",
    "torch": "import torch\ntorch.load(path, weights_only=False)",
}
TWIN_MODULE = "mlthreat_twin_marker"


def _twin_env(tmp_path: Path) -> dict[str, str]:
    (tmp_path / f"{TWIN_MODULE}.py").write_text(
        "def touch(path):\n    open(path, 'w').close()\n    return 0\n")
    return {**os.environ, "PYTHONPATH": str(tmp_path)}


def _load(loader: str, path: Path, env: dict[str, str]) -> None:
    code = f"path = {str(path)!r}\ntry:\n" + "".join(
        f"    {line}\n" for line in LOADERS[loader].splitlines()) + \
        "except Exception as exc:\n    print('load failed after running:', type(exc).__name__)\n"
    subprocess.run([sys.executable, "-c", code], env=env, cwd=path.parent, timeout=120,
                   capture_output=True, check=False)


def _flags_twin(findings: list) -> bool:  # type: ignore[type-arg]
    return any(f"{TWIN_MODULE}.touch" in f.message and f.severity in ("high", "critical")
               for f in findings)


@pytest.mark.parametrize("trick", sorted(payloads.STRUCTURE))
def test_loader_runs_the_twin_and_scanner_flags_it(trick: str, tmp_path: Path) -> None:
    build, name, loader = payloads.STRUCTURE[trick]
    if loader == "torch":
        pytest.importorskip("torch")
    env = _twin_env(tmp_path)
    marker = tmp_path / "ran"
    path = tmp_path / name
    path.write_bytes(build((TWIN_MODULE, "touch", str(marker))))
    findings = scan_path(path)
    _load(loader, path, env)
    assert marker.exists(), f"{loader} did not run the twin: the trick is not real"
    assert _flags_twin(findings), findings


def test_old_joblib_wrapper_opens_its_sibling(tmp_path: Path) -> None:
    env = _twin_env(tmp_path)
    marker = tmp_path / "ran"
    main, sibling = payloads.old_joblib_sibling(tmp_path, (TWIN_MODULE, "touch", str(marker)),
                                                "model")
    _load("joblib", main, env)
    assert marker.exists()
    [external] = [f for f in scan_path(main) if f.rule == "MF-JOBLIB-EXTERNAL"]
    assert external.severity == "high" and "model.data" in external.message
    assert _flags_twin(scan_path(sibling))
    assert _flags_twin(scan_path(tmp_path))     # and the folder scan finds the sibling's code


def test_text_that_starts_like_a_pickle_is_not_one(tmp_path: Path) -> None:
    # pickle.load on these fails before importing anything: nothing to report (issue #15)
    texts = {"conda.yaml": "channels:\n  - conda-forge\ndependencies:\n  - numpy>=1.14\n",
             "CITATION.cff": "cff-version: 1.2.0\nmessage: cite us\n",
             "cities.csv": "city,population\nBerlin,3.6\n",
             "requirements.txt": "click\nflask\n", "notes.md": "(see below)\n",
             "distutils-precedence.pth": "import os; var = 'SETUPTOOLS_USE_DISTUTILS'"}
    env = _twin_env(tmp_path)
    for name, text in texts.items():
        (tmp_path / name).write_text(text)
        _load("pickle", tmp_path / name, env)
        assert [f for f in scan_path(tmp_path / name) if f.severity != "low"] == [], name


@pytest.mark.parametrize("technique", sorted(payloads.ROUTES))
def test_routes_to_code_are_high_or_critical(technique: str, tmp_path: Path) -> None:
    path = tmp_path / "m.pkl"
    path.write_bytes(payloads.ROUTES[technique](f"touch {tmp_path / 'never'}"))
    found = scan_path(path)
    assert any(f.severity in ("high", "critical") for f in found), found
    assert not (tmp_path / "never").exists()


def test_resolution_follows_reexports_to_the_real_object() -> None:
    # Closed answers from the libraries themselves: where these names really lead.
    import torch.multiprocessing as tmp  # noqa: PLC0415

    from mlthreat.scanners.pickle_scan import canonical, judge
    assert canonical("torch.multiprocessing", "Process")[0] == tmp.Process.__module__
    assert canonical("posixpath", "os.system") == (os.system.__module__, "system")
    assert canonical("__builtin__", "exec") == ("builtins", "exec")
    assert judge("torch.multiprocessing", "Process")[0] == "code_execution"
    assert judge("torch.nn.modules.linear", "Linear")[0] == "allowed"
    assert judge("mypackage.models", "MyNet")[0] == "custom"       # the user's own class: low
    assert judge("sklearn.feature_selection._univariate_selection", "f_classif", False)[0] \
        == "allowed"                                              # a stored score function


def test_keras_functions_that_reach_outside_are_flagged(tmp_path: Path) -> None:
    def config(node: dict[str, object]) -> bytes:
        return json.dumps({"module": "keras", "class_name": "Sequential",
                           "config": {"layers": [node]}}).encode()
    cases = {  # node: flagged?
        '{"module": "keras.config", "class_name": "function", '
        '"config": "enable_unsafe_deserialization"}': True,
        '{"module": "keras.utils", "class_name": "function", "config": "get_file"}': True,
        '{"module": "keras.activations", "class_name": "function", "config": "relu"}': False,
        '{"module": "keras.layers", "class_name": "Dense", "config": {"units": 2}}': False,
    }
    for node, flagged in cases.items():
        path = tmp_path / "config.json"
        path.write_bytes(config(json.loads(node)))
        found = [f for f in scan_path(path) if f.rule == "MF-KERAS-FUNCTION"]
        assert bool(found) == flagged, node


def test_a_whole_module_save_of_your_own_class_is_low(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")

    net = _own_net(torch)
    torch.save(net, tmp_path / "whole.pt")
    found = scan_path(tmp_path / "whole.pt")
    assert found and {f.severity for f in found} == {"low"}, found
    assert any("OwnNet" in f.message and "your own code" in f.message for f in found)


def _own_net(torch: object) -> object:
    global OwnNet  # noqa: PLW0603 - torch.save pickles the class by its module-level name

    class OwnNet(torch.nn.Module):  # type: ignore[attr-defined,name-defined,misc]
        def __init__(self) -> None:
            super().__init__()
            self.fc = torch.nn.Linear(3, 2)  # type: ignore[attr-defined]

    OwnNet.__qualname__ = "OwnNet"
    return OwnNet()


def test_folder_scan_follows_links_and_reads_models_in_hidden_folders(tmp_path: Path) -> None:
    from mlthreat.scanners import scan_paths
    armed = payloads.stack_global("os", "system", f"touch {tmp_path / 'never'}")
    snapshot = payloads.hf_snapshot(tmp_path / "hf", armed)[0]
    project = payloads.hidden_folder(tmp_path / "p", armed, "venv")[0]
    (project / "venv" / "cache" / "leaked.py").write_text('API_KEY = "sk-live-0123456789abcdef"\n')
    (project / ".dvc").mkdir()
    (project / ".dvc" / "model.joblib").write_bytes(armed)
    report = scan_paths([snapshot, project])
    critical = {f.file for f in report.findings if f.severity == "critical"}
    assert "pytorch_model.bin" in critical                   # the blob behind the link
    assert {"venv/cache/model.pkl", ".dvc/model.joblib"} <= critical
    # the other scanners keep out of virtual environments and caches
    assert not [f for f in report.findings if f.scanner != "modelfile"]
    assert any("outside the scanned folder" in n for n in report.notes)


def test_functions_handed_to_forwarding_helpers_are_judged_as_called() -> None:
    from mlthreat.scanners.pickle_scan import scan_pickle_bytes
    # torch._tensor._rebuild_from_type_v2(func, type, args, state) calls func(*args)
    ops = (b"\x80\x04" + payloads._str("torch._tensor") + payloads._str("_rebuild_from_type_v2")
           + b"\x93(" + payloads._str("torch") + payloads._str("set_default_dtype") + b"\x93"
           + payloads._str("torch") + payloads._str("Tensor") + b"\x93" + b")NtR.")
    verdicts = {h.dotted: (h.verdict, h.called) for h in scan_pickle_bytes(ops).hits}
    assert verdicts["torch.set_default_dtype"] == ("unknown", True)


def test_code_carried_by_cloudpickle_is_critical() -> None:
    cloudpickle = pytest.importorskip("cloudpickle")

    from mlthreat.scanners.modelfile import scan_bytes
    data = cloudpickle.dumps(lambda x: x + 1)
    assert any(f.severity == "critical" for f in scan_bytes(data, "f.pkl", name="f.pkl"))


KERAS_BUILD = """
import os, sys
os.environ["KERAS_BACKEND"] = "torch"
import keras
path, marker = sys.argv[1], sys.argv[2]
f = eval(f"lambda x: (__import__('mlthreat_twin_marker').touch({marker!r}), x)[1]")
keras.Sequential([keras.Input((3,)), keras.layers.Lambda(f)]).save(path)
"""
KERAS_LOAD = """
import os, sys
from pathlib import Path
os.environ["KERAS_BACKEND"] = "torch"
import keras
marker = Path(sys.argv[1])
for path in sys.argv[2:]:
    marker.unlink(missing_ok=True)
    try:
        keras.models.load_model(path, safe_mode=False)
    except Exception as exc:
        print("failed after running:", type(exc).__name__, exc)
    print(Path(path).name, "ran" if marker.exists() else "did-not-run")
"""


def _repack(src: Path, dst: Path, drop: set[str], junk: bytes = b"") -> None:
    import zipfile
    with zipfile.ZipFile(src) as z:
        members = {n: z.read(n) for n in z.namelist() if n not in drop}
    import io
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as out:
        for name, data in members.items():
            out.writestr(name, data)
    dst.write_bytes(junk + buf.getvalue())


def test_keras_loads_the_lambda_twins_and_scanner_flags_them(tmp_path: Path) -> None:
    import importlib.util
    if importlib.util.find_spec("keras") is None:
        pytest.skip("keras is not installed")
    env = _twin_env(tmp_path)
    marker = tmp_path / "ran"
    saved = tmp_path / "saved.keras"
    subprocess.run([sys.executable, "-c", KERAS_BUILD, str(saved), str(marker)], env=env,
                   check=True, capture_output=True, timeout=300)
    tricks = {"plain.keras": (set(), b""), "no-metadata.keras": ({"metadata.json"}, b""),
              "behind-junk.keras": (set(), b"JUNK" * 64)}
    for name, (drop, junk) in tricks.items():
        _repack(saved, tmp_path / name, drop, junk)
    done = subprocess.run([sys.executable, "-c", KERAS_LOAD, str(marker),
                           *(str(tmp_path / n) for n in tricks)], env=env,
                          capture_output=True, text=True, timeout=300, check=False)
    for name in tricks:
        assert f"{name} ran" in done.stdout, f"Keras did not run the twin: {done.stdout[-400:]}"
        assert any(f.rule == "MF-KERAS-LAMBDA" for f in scan_path(tmp_path / name)), name


def test_real_files_of_installed_libraries_are_not_flagged(tmp_path: Path) -> None:
    # joblib's own test data: files of joblib 0.8-0.9 (the "ZF" zlib format, sibling .npy files)
    import joblib
    data = Path(joblib.__file__).parent / "test" / "data"
    old = sorted(data.glob("joblib_0.*")) if data.exists() else []
    if not old:
        pytest.skip("joblib's test data is not installed")
    flagged = [(p.name, f.rule) for p in old for f in scan_path(p) if f.severity != "low"]
    assert flagged == []
    # an ONNX test input (a TensorProto .pb, not a model) is no model to judge
    onnx = pytest.importorskip("onnx")
    import numpy as np
    from onnx import numpy_helper
    (tmp_path / "input_0.pb").write_bytes(
        numpy_helper.from_array(np.arange(6.0).reshape(2, 3)).SerializeToString())
    assert scan_path(tmp_path / "input_0.pb") == []
    assert onnx


def test_chat_templates_and_yaml_tags_that_run_code_are_flagged(tmp_path: Path) -> None:
    cases = {
        "model.gguf": (payloads.gguf(payloads.SSTI), "MF-TEMPLATE-INJECTION"),
        "ok.gguf": (payloads.gguf(payloads.BENIGN_TEMPLATE), None),
        "tokenizer_config.json": (json.dumps({"chat_template": payloads.SSTI}).encode(),
                                  "MF-TEMPLATE-INJECTION"),
        "config.yaml": (payloads.YAML_APPLY.encode(), "MF-YAML-PYTHON"),
        "params.yaml": (b"lr: 0.1\nname: !!str run-1\nlayers: [1, 2]\n", None),
    }
    for name, (data, rule) in cases.items():
        (tmp_path / name).write_bytes(data)
        rules = {f.rule for f in scan_path(tmp_path / name)}
        assert rules == ({rule} if rule else set()), (name, rules)


def test_archive_paths_that_leave_the_folder_are_flagged(tmp_path: Path) -> None:
    import io
    import tarfile
    import zipfile
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("../../.bashrc", b"echo hi")
    (tmp_path / "a.zip").write_bytes(buf.getvalue())
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("/etc/cron.d/x")
        info.size = 2
        tar.addfile(info, io.BytesIO(b"hi"))
    (tmp_path / "b.tar").write_bytes(buf.getvalue())
    for name in ("a.zip", "b.tar"):
        assert [f.rule for f in scan_path(tmp_path / name)] == ["MF-ARCHIVE-PATH"], name
