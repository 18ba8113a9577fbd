"""Serving code, read as a syntax tree (never imported): FastAPI and Flask apps, TorchServe's
config.properties, the command a Dockerfile starts, and Azure ML web-service deployment
configurations (keyless ACI or AKS services).

Per route that reaches a model (health checks, API docs, static files and pages left out): no
authentication dependency, full probability vectors or logits returned; per app (not per router):
no rate limiting, debug mode, binding to all interfaces (app.run, uvicorn.run, WSGIServer and
make_server, gunicorn's bind); anywhere: models loaded with pickle, joblib, dill or torch.load
without weights_only=True, torch.hub.load (runs a downloaded repository's code), and
from_pretrained(trust_remote_code=True); model weights downloaded with nothing pinning them
(hf_hub_download without a commit revision, load_state_dict_from_url without check_hash, ...).
Loaders bound to other names (`load = torch.load`, `partial(pickle.load, ...)`) count as loads;
apps and loads in a test suite found in a scanned folder do not (the Scanner's reads_tests).
"""

from __future__ import annotations

import ast
import functools
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from mlthreat.scanners.interface import ScanContext, ScanFinding, Scanner

ROUTE_METHODS = {"get", "post", "put", "patch", "delete", "route", "api_route", "websocket"}
AUTH_HINTS = re.compile(r"auth|token|api_?key|current_user|verify|login|security|jwt|oauth|"
                        r"credential|permission|require", re.I)
LIMIT_HINTS = re.compile(r"limiter|ratelimit|rate_limit|throttl|slowapi|RateLimiter", re.I)
PROBA_HINTS = re.compile(r"predict_proba|decision_function|softmax|logits|predict_log_proba", re.I)
# a route reaches a model when its body (or a function of the file it calls) uses one
# a hint is a whole word of an identifier, snake_case parts included (detect_faces_in_image)
MODEL_HINTS = re.compile(r"(?<![A-Za-z0-9])(predict\w*|model\w*|classif\w*|infer\w*|generate|"
                         r"forward|embed\w*|pipeline|encode|decode|transcribe|detect|"
                         r"recommend\w*|rank|tokeni[sz]\w*|llm|chain|agent|completion\w*|"
                         r"evaluat\w*|score\w*)(?![A-Za-z0-9])", re.I)
# routes that never reach a model: health and readiness checks, API docs, static files
PLUMBING = re.compile(r"(^|/)(health\w*|ready\w*|live\w*|ping|status|metrics|version|docs|redoc|"
                      r"openapi(\.json)?|favicon\.ico|robots\.txt)/?$|(^|/)static(/.*)?$", re.I)
# files that mark a project's root: absolute imports are not looked for above it
PROJECT_ROOTS = (".git", "pyproject.toml", "setup.py", "setup.cfg")
# connexion's app classes: routes come from an OpenAPI file given to add_api
CONNEXION_APPS = {"connexion.App", "connexion.FlaskApp", "connexion.AsyncApp",
                  "connexion.apps.flask_app.FlaskApp"}
# a configuration class for the test suite (TestingConfig, TestConfig): its DEBUG is the tests'
TEST_CLASS = re.compile(r"^Test|Test(ing)?(Config|Settings)$")
BIND_CALLS = ("WSGIServer", "make_server", "HTTPServer", "ThreadingHTTPServer", "serve")
# calls that fetch model weights from outside when they run, and the argument that pins or checks
# what arrives (a revision, a hash); None: nothing can pin it
DOWNLOADS = {"hf_hub_download": "revision", "snapshot_download": "revision",
             "load_state_dict_from_url": "check_hash", "download_url_to_file": "hash_prefix",
             "get_file": "file_hash", "urlretrieve": None, "gdown.download": None,
             "wget.download": None}
WEIGHT_FILE = re.compile(r"(?i)\.(pt|pth|bin|ckpt|pkl|pickle|joblib|h5|keras|onnx|safetensors|"
                         r"gguf|tflite|pb|npz|model|weights)(\?.*)?$")
# loaders of installed libraries that call torch.load with weights_only=False unless told otherwise
KNOWN_WRAPPERS = {"ultralytics.utils.patches.torch_load": "ultralytics' torch_load"}
UNSAFE_LOADS = {("pickle", "load"), ("pickle", "loads"), ("joblib", "load"), ("dill", "load"),
                ("dill", "loads"), ("cloudpickle", "load"), ("cloudpickle", "loads"),
                ("torch", "load"), ("np", "load"), ("numpy", "load"), ("pd", "read_pickle"),
                ("pandas", "read_pickle"), ("_pickle", "load"), ("cPickle", "load")}


@dataclass
class _App:
    name: str
    framework: str
    line: int
    app_auth: bool = False
    limited: bool = False
    routes: int = 0
    model_routes: int = 0         # routes that reach a model: rate limiting is judged on them
    router: bool = False          # an APIRouter or Blueprint: rate limits sit on the app
    spec_dir: str = ""            # connexion: where its OpenAPI files are


@dataclass
class _Visitor(ast.NodeVisitor):
    path: str
    source: str
    apps: dict[str, _App] = field(default_factory=dict)
    findings: list[ScanFinding] = field(default_factory=list)

    def add(self, node: ast.AST, rule: str, threat: str, family: str, severity: str,
            message: str) -> None:
        self.findings.append(ScanFinding("serving", rule, threat, family, severity, self.path,
                                         getattr(node, "lineno", None), message))

    # -------------------------------------------------------------- apps
    def visit_Assign(self, node: ast.Assign) -> None:  # noqa: N802 - ast visitor API
        loader, keywords = self._loader_alias(node.value)
        if loader:                    # load = torch.load; restore = partial(pickle.load, ...)
            for target in node.targets:
                if isinstance(target, ast.Name | ast.Attribute):
                    bound = ast.unparse(target)
                    self.aliases[bound] = loader
                    self.partial_kwargs[bound] = keywords
        if _sets_weights_only(node.value):   # kw = {"weights_only": True} if ... else {}
            self.safe_splats.update(ast.unparse(t) for t in node.targets)
        for target in node.targets:   # kwargs["weights_only"] = False; os.environ[...] = "1"
            if isinstance(target, ast.Subscript) and _forces_unsafe(target.slice, node.value):
                self._forced(node)
        call = node.value
        if isinstance(call, ast.Call) and self._resolved(_dotted(call.func)) in CONNEXION_APPS:
            for target in node.targets:   # app = connexion.App(__name__, specification_dir=...)
                if isinstance(target, ast.Name):
                    app = _App(target.id, "connexion", node.lineno)
                    folder = _kw(call, "specification_dir")
                    app.spec_dir = folder.value if isinstance(folder, ast.Constant) and \
                        isinstance(folder.value, str) else ""
                    self.apps[target.id] = app
        if isinstance(call, ast.Call):
            ctor = _dotted(call.func).rsplit(".", 1)[-1]
            if ctor in ("FastAPI", "APIRouter", "Flask", "Blueprint"):
                for target in node.targets:
                    if isinstance(target, ast.Name):
                        app = _App(target.id, "flask" if ctor in ("Flask", "Blueprint")
                                   else "fastapi", node.lineno,
                                   router=ctor in ("APIRouter", "Blueprint"))
                        app.app_auth = any(kw.arg == "dependencies" and
                                           AUTH_HINTS.search(ast.unparse(kw.value))
                                           for kw in call.keywords)
                        self.apps[target.id] = app
                        # `from flask import app` then `app = Flask(...)`: the name is the app
                        self.aliases.pop(target.id, None)
                if ctor == "FastAPI" and _kw_true(call, "debug"):
                    self.add(node, "SRV-DEBUG", "cls-public-app-exploit", "classical", "high",
                             "FastAPI(debug=True): tracebacks with code and data go to clients")
        if Path(self.path).name.startswith("gunicorn") and any(
                isinstance(t, ast.Name) and t.id == "bind" for t in node.targets) and \
                "0.0.0.0" in ast.unparse(node.value):
            self.add(node, "SRV-BIND-ALL", "cls-public-app-exploit", "classical", "low",
                     "gunicorn binds every interface; put it behind a gateway that "
                     "authenticates and limits")
        for target in node.targets:   # app.debug = True / app.config["DEBUG"] = True
            text = ast.unparse(target)
            if (text.endswith(".debug") or "DEBUG" in text) and _is_true(node.value) and \
                    not any(TEST_CLASS.search(c) for c in self.classes):
                self.add(node, "SRV-DEBUG", "cls-public-app-exploit", "classical", "high",
                         f"{text} = True: the debugger lets anyone who reaches it run code")
        self.generic_visit(node)

    aliases: dict[str, str] = field(default_factory=dict)
    classes: list[str] = field(default_factory=list)
    constants: dict[str, str] = field(default_factory=dict)   # module-level NAME = "text"
    # name -> (module, level, name in it) of every `from ... import`; routers an app includes
    imported: dict[str, tuple[str, int, str]] = field(default_factory=dict)
    included: list[tuple[str, str]] = field(default_factory=list)

    def visit_ClassDef(self, node: ast.ClassDef) -> None:  # noqa: N802
        self.classes.append(node.name)   # class TestingConfig: DEBUG = True is the tests' own
        self.generic_visit(node)
        self.classes.pop()

    def visit_Import(self, node: ast.Import) -> None:  # noqa: N802
        for a in node.names:          # import pickle as pkl
            if a.asname:
                self.aliases[a.asname] = a.name

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:  # noqa: N802
        for a in node.names:          # from torch import load (as tload)
            if node.module and a.name != "*":
                self.aliases[a.asname or a.name] = f"{node.module}.{a.name}"
            if a.name != "*":         # from .core import post_example_core: maybe this repo's
                self.imported[a.asname or a.name] = (node.module or "", node.level, a.name)

    def _loader_alias(self, value: ast.expr) -> tuple[str, list[ast.keyword]]:
        """The unsafe loader an expression names (a bare reference, or functools.partial of it
        with the keywords it binds), else ("", [])."""
        keywords: list[ast.keyword] = []
        if isinstance(value, ast.Call) and _dotted(value.func).rsplit(".", 1)[-1] == "partial" \
                and value.args:
            keywords, value = value.keywords, value.args[0]
        if not isinstance(value, ast.Name | ast.Attribute):
            return "", []
        name = self._resolved(_dotted(value))
        parts = name.split(".")
        if len(parts) >= 2 and (parts[-2], parts[-1]) in UNSAFE_LOADS:
            return name, keywords
        return "", []

    # names bound to keyword dicts that set weights_only=True (passed as **name)
    safe_splats: set[str] = field(default_factory=set)
    # keywords a name bound to a loader by functools.partial passes (weights_only=True)
    partial_kwargs: dict[str, list[ast.keyword]] = field(default_factory=dict)

    def _bound(self, name: str) -> str:
        """The name a loader was bound to, as called: `self.loader` finds `loader = ...` of
        the class body."""
        if name in self.aliases:
            return name
        head, _, rest = name.partition(".")
        return rest if head in ("self", "cls") and rest in self.aliases else ""

    def _resolved(self, name: str) -> str:
        bound = self._bound(name)
        if bound:                         # a whole dotted name bound to a loader
            return self.aliases[bound]
        head, _, rest = name.partition(".")
        full = self.aliases.get(head)
        return f"{full}.{rest}".rstrip(".") if full else name

    def visit_Call(self, node: ast.Call) -> None:  # noqa: N802
        name = self._resolved(_dotted(node.func))
        parts = name.split(".")
        if parts[-1] in ("include_router", "register_blueprint") and node.args and \
                isinstance(node.func, ast.Attribute) and _dotted(node.func.value) in self.apps:
            self.included.append((_dotted(node.func.value), _dotted(node.args[0])))
        owner = _dotted(node.func.value) if isinstance(node.func, ast.Attribute) else ""
        if parts[-1] == "add_api" and owner in self.apps and node.args and \
                self.apps[owner].framework == "connexion":
            spec = _text(node.args[0], self.constants)   # connexion_app.add_api("api.yaml")
            app = self.apps[owner]
            if spec:
                found = Path(self.path).parent / app.spec_dir / spec
                app.model_routes += len(_model_operations(found)) if found.is_file() else 0
        if LIMIT_HINTS.search(parts[-1]) and parts[-1][:1].isupper():
            for app in self.apps.values():   # Limiter(app, default_limits=[...]) limits them all
                if app.framework == "connexion":
                    app.limited = True
        if len(parts) >= 2 and (parts[-2], parts[-1]) in UNSAFE_LOADS:
            bound = self.partial_kwargs.get(self._bound(_dotted(node.func)))
            self._unsafe_load(ast.Call(node.func, node.args, node.keywords + bound,
                                       lineno=node.lineno) if bound else node,
                              parts[-2], parts[-1])
        self._download(node, name)
        if parts[-2:] in (["AciWebservice", "deploy_configuration"],
                          ["AksWebservice", "deploy_configuration"]):
            self._aml_service(node, parts[-2])
        if name in KNOWN_WRAPPERS and not _is_true(_kw(node, "weights_only")):
            self.add(node, "SRV-TORCH-LOAD", "cls-unsafe-deserialization", "classical", "high",
                     f"{KNOWN_WRAPPERS[name]} calls torch.load with weights_only=False: the "
                     "checkpoint is unpickled, and a replaced file runs code here")
        if parts[-1] == "setdefault" and len(node.args) == 2 and _forces_unsafe(
                node.args[0], node.args[1]):
            self._forced(node)
        if parts[-1] in ("run",) and (parts[0] in self.apps or parts[0] == "uvicorn"):
            if _kw_true(node, "debug"):
                self.add(node, "SRV-DEBUG", "cls-public-app-exploit", "classical", "high",
                         f"{name}(debug=True): the interactive debugger runs code for anyone "
                         "who can reach it")
            host = _kw(node, "host")
            if isinstance(host, ast.Constant) and host.value in ("0.0.0.0", "::"):
                self.add(node, "SRV-BIND-ALL", "cls-public-app-exploit", "classical", "low",
                         f"{name}(host={host.value!r}) listens on every interface; put it behind "
                         "a gateway that authenticates and limits")
        if parts[-1] in BIND_CALLS and node.args and isinstance(node.args[0], ast.Tuple) and \
                node.args[0].elts and isinstance(node.args[0].elts[0], ast.Constant) and \
                node.args[0].elts[0].value in ("0.0.0.0", "::", ""):
            self.add(node, "SRV-BIND-ALL", "cls-public-app-exploit", "classical", "low",
                     f"{name}(({node.args[0].elts[0].value!r}, ...)) listens on every "
                     "interface; put it behind a gateway that authenticates and limits")
        if name.endswith("hub.load") and parts[0] in ("torch", "hub"):
            trusted = _kw_true(node, "trust_repo") or _kw_true(node, "skip_validation")
            self.add(node, "SRV-TORCH-HUB", "cls-unsafe-deserialization", "classical",
                     "high" if trusted else "medium",
                     "torch.hub.load downloads a repository and runs its hubconf.py (and "
                     "unpickles its weights) when this runs"
                     + ("; trust_repo/skip_validation skip even the prompt" if trusted else
                        "; pin the repository to a commit, or vendor the model"))
        if parts[-1] == "from_pretrained" and _kw_true(node, "trust_remote_code"):
            self.add(node, "SRV-REMOTE-CODE", "cls-unsafe-deserialization", "classical", "high",
                     f"{name}(trust_remote_code=True) runs Python code from the model's hub "
                     "repository when it loads; pin a revision you reviewed, or drop it")
        if parts[-1] in ("add_middleware", "include_router", "before_request") and \
                AUTH_HINTS.search(ast.unparse(node)) and parts[0] in self.apps:
            self.apps[parts[0]].app_auth = True
        if LIMIT_HINTS.search(name):
            for app in self.apps.values():
                app.limited = True
        self.generic_visit(node)

    def _forced(self, node: ast.AST) -> None:
        self.add(node, "SRV-TORCH-LOAD", "cls-unsafe-deserialization", "classical", "high",
                 "forces weights_only=False for torch.load: every checkpoint loaded through it "
                 "is unpickled, and a replaced file runs code here")

    def _download(self, node: ast.Call, name: str) -> None:
        """Model weights fetched from a fixed place when this runs, with nothing pinning or
        checking what arrives."""
        tail = ".".join(name.split(".")[-2:])
        key = tail if tail in DOWNLOADS else name.rsplit(".", 1)[-1]
        if key not in DOWNLOADS or key in ("download",):
            return
        literals = [v for a in [*node.args, *(k.value for k in node.keywords)]
                    if (v := _text(a, self.constants)) is not None]
        if key in ("hf_hub_download", "snapshot_download"):
            repo = _kw(node, "repo_id") or (node.args[0] if node.args else None)
            kind = _kw(node, "repo_type")
            filename = _kw(node, "filename") or (node.args[1] if len(node.args) > 1 else None)
            if not (isinstance(repo, ast.Constant) and isinstance(repo.value, str)) or (
                    isinstance(kind, ast.Constant) and kind.value in ("dataset", "space")) or (
                    isinstance(filename, ast.Constant) and isinstance(filename.value, str)
                    and not WEIGHT_FILE.search(filename.value)):
                return                # repository decided elsewhere; a data set; not weights
            source = repo.value
        else:
            source = next((s for s in literals if "://" in s or "/" in s), "")
        if not source:
            return                    # where from is decided elsewhere: nothing to judge here
        if key in ("urlretrieve", "gdown.download", "wget.download", "get_file") and \
                not any(WEIGHT_FILE.search(s.split("/")[-1]) for s in literals):
            return                    # a data file or a page, not weights
        pin = DOWNLOADS[key]
        pinned = _kw(node, pin) if pin else None
        if pin == "check_hash" and _is_true(pinned) or pin == "revision" and isinstance(
                pinned, ast.Constant) and re.fullmatch(r"[0-9a-f]{40}", str(pinned.value)) or \
                pin in ("hash_prefix", "file_hash") and pinned is not None:
            return
        self.add(node, "SRV-WEIGHTS-DOWNLOAD", "aml-backdoor-pretrained", "aml", "medium",
                 f"{name}({source!r}) fetches model weights when this runs with nothing pinning "
                 "them: whoever controls that repository or URL decides the model; pin a commit "
                 f"({pin or 'a hash you check'}) or vendor the file")

    def _unsafe_load(self, node: ast.Call, module: str, func: str) -> None:
        if module == "torch":
            weights_only = _kw(node, "weights_only")
            if isinstance(weights_only, ast.Constant) and weights_only.value is True:
                return
            if weights_only is None and any(
                    k.arg is None and (ast.unparse(k.value) in self.safe_splats
                                       or _sets_weights_only(k.value))
                    for k in node.keywords):
                return                # **kw where kw = {"weights_only": True}
            if isinstance(weights_only, ast.Constant):
                self.add(node, "SRV-TORCH-LOAD", "cls-unsafe-deserialization", "classical",
                         "high", "torch.load(weights_only=False) unpickles the checkpoint: a "
                         "replaced file runs code here")
            else:
                self.add(node, "SRV-TORCH-LOAD", "cls-unsafe-deserialization", "classical",
                         "low", "torch.load without weights_only: on PyTorch before 2.6 it "
                         "unpickles the checkpoint (a replaced file runs code here); pass "
                         "weights_only=True, or require torch>=2.6")
        elif module in ("np", "numpy"):
            if _kw_true(node, "allow_pickle"):
                self.add(node, "SRV-NP-PICKLE", "cls-unsafe-deserialization", "classical",
                         "high", "numpy.load(allow_pickle=True) unpickles object arrays")
        else:
            self.add(node, "SRV-PICKLE-LOAD", "cls-unsafe-deserialization", "classical", "high",
                     f"{module}.{func} runs whatever code the file holds: scan it first "
                     "(mlthreat scan) or use a code-free format")

    model_functions: set[str] = field(default_factory=set)

    def _reaches_model(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
        """The route uses a model, itself or through a function of this file it calls."""
        if MODEL_HINTS.search(_identifiers(node.body)):
            return True
        called = _calls(node)
        if called & self.model_functions:
            return True
        # a function imported from a module of this repository that uses a model
        for name in called & set(self.imported):
            module, level, original = self.imported[name]
            found = _local_module(Path(self.path), module, level)
            if found is not None and original in _model_functions(str(found)):
                return True
        return False

    def _aml_service(self, node: ast.Call, kind: str) -> None:
        """An Azure ML web service configured without keys or tokens: ACI's are keyless unless
        auth_enabled=True, AKS's keyed unless auth_enabled=False."""
        key = _kw(node, "auth_enabled")
        token = _kw(node, "token_auth_enabled")
        keyed = _is_true(key) if kind == "AciWebservice" else not (
            isinstance(key, ast.Constant) and key.value is False)
        if keyed or _is_true(token) or (key is not None and not isinstance(key, ast.Constant)):
            return        # keyed, or decided at run time (not judged)
        self.add(node, "SRV-NO-AUTH", "cls-unauthenticated-api", "classical", "high",
                 f"{kind}.deploy_configuration without key or token authentication: anyone who "
                 "finds the scoring URI can query the model")

    # -------------------------------------------------------------- routes
    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:  # noqa: N802
        for deco in node.decorator_list:
            target = deco.func if isinstance(deco, ast.Call) else deco
            name = _dotted(target)
            owner, _, method = name.rpartition(".")
            if owner in self.apps and method in ROUTE_METHODS:
                self._route(node, self.apps[owner], deco)
            if LIMIT_HINTS.search(name):
                for app in self.apps.values():
                    app.limited = True
        self.generic_visit(node)

    visit_AsyncFunctionDef = visit_FunctionDef  # noqa: N815

    def _route(self, node: ast.FunctionDef | ast.AsyncFunctionDef, app: _App,
               deco: ast.expr) -> None:
        app.routes += 1
        path = deco.args[0].value if isinstance(deco, ast.Call) and deco.args and \
            isinstance(deco.args[0], ast.Constant) and isinstance(deco.args[0].value, str) else ""
        if PLUMBING.search(path) or PLUMBING.search(node.name):
            return            # a health check, docs, static files: no model behind it
        text = ast.unparse(node.args) + ast.unparse(deco)
        decorators = " ".join(ast.unparse(d) for d in node.decorator_list)
        authed = app.app_auth or bool(AUTH_HINTS.search(text)) or bool(
            re.search(r"login_required|auth", decorators, re.I))
        if app.framework == "flask":
            body = ast.unparse(node)
            authed = authed or bool(re.search(r"request\.headers|authorization", body, re.I))
        if not self._reaches_model(node):
            if _trains(node) and not authed:     # /train: retraining for whoever asks
                self.add(node, "SRV-NO-AUTH", "cls-unauthenticated-api", "classical", "high",
                         f"route {node.name} starts training and has no authentication: anyone "
                         "who reaches it can retrain the model on data they choose (poisoning) "
                         "or keep the trainer busy")
            return            # a page, a form, a file download: no model behind it
        app.model_routes += 1
        if not authed:
            self.add(node, "SRV-NO-AUTH", "cls-unauthenticated-api", "classical", "high",
                     f"route {node.name} has no authentication dependency: anyone who reaches "
                     "it can query the model")
        body = ast.unparse(node)
        if PROBA_HINTS.search(body) and "round(" not in body:
            self.add(node, "SRV-FULL-SCORES", "aml-model-extraction", "aml", "medium",
                     f"route {node.name} returns full probability vectors or logits: model "
                     "extraction and membership inference need far fewer queries; return the "
                     "label or rounded scores")


# words of the names a route uses that start training (split at underscores and case changes)
TRAIN_WORDS = frozenset({"train", "training", "retrain", "retraining", "fit", "finetune",
                         "trainer"})


def _trains(node: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    """The route's code calls something named for training (trainModel().trainingModel(),
    retrain(), model.fit): its identifiers, not its strings, split into words."""
    words = {w.lower() for name in _identifiers(node.body).split()
             for w in re.findall(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])", name)}
    return bool(words & TRAIN_WORDS)


def _forces_unsafe(key: ast.expr, value: ast.expr) -> bool:
    """`["weights_only"] = False`, or PyTorch's environment switch that turns it off for every
    torch.load (TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD)."""
    if not isinstance(key, ast.Constant) or not isinstance(value, ast.Constant):
        return False
    if key.value == "weights_only":
        return value.value is False
    return key.value == "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD" and str(value.value).lower() in (
        "1", "true", "yes", "on")


def _sets_weights_only(value: ast.expr) -> bool:
    """A dict (or dict(...), or either branch of a conditional) that sets weights_only=True."""
    if isinstance(value, ast.IfExp):
        return _sets_weights_only(value.body) or _sets_weights_only(value.orelse)
    if isinstance(value, ast.Dict):
        return any(isinstance(k, ast.Constant) and k.value == "weights_only" and _is_true(v)
                   for k, v in zip(value.keys, value.values, strict=True))
    if isinstance(value, ast.Call) and _dotted(value.func) == "dict":
        return _kw_true(value, "weights_only")
    return False


def _identifiers(body: list[ast.stmt]) -> str:
    """The names a block of code uses (variables, attributes, functions, parameters), without its
    strings and docstrings: "<h1>Ride Prediction Service</h1>" is not a model call."""
    names: list[str] = []
    for stmt in body:
        for node in ast.walk(stmt):
            if isinstance(node, ast.Name):
                names.append(node.id)
            elif isinstance(node, ast.Attribute):
                names.append(node.attr)
            elif isinstance(node, ast.arg):
                names.append(node.arg)
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                names.append(node.name)
    return " ".join(names)


def _text(node: ast.AST, constants: dict[str, str]) -> str | None:
    """A string an expression spells out: a literal, a module constant, or an f-string or sum
    made of them; None when part of it is decided when the code runs."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.Name):
        return constants.get(node.id)
    if isinstance(node, ast.FormattedValue):
        return _text(node.value, constants)
    if isinstance(node, ast.JoinedStr):
        parts = [_text(v, constants) for v in node.values]
        return None if any(p is None for p in parts) else "".join(p or "" for p in parts)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _text(node.left, constants), _text(node.right, constants)
        return None if left is None or right is None else left + right
    return None


def _calls(node: ast.AST) -> set[str]:
    """The last part of the name of every function `node` calls (`clf.model.predict` -> predict)."""
    return {_dotted(c.func).rsplit(".", 1)[-1] for c in ast.walk(node) if isinstance(c, ast.Call)}


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    if isinstance(node, ast.Call):
        return _dotted(node.func)
    return ""


def _kw(call: ast.Call, name: str) -> ast.expr | None:
    return next((k.value for k in call.keywords if k.arg == name), None)


def _is_true(node: ast.AST | None) -> bool:
    return isinstance(node, ast.Constant) and node.value is True


def _kw_true(call: ast.Call, name: str) -> bool:
    return _is_true(_kw(call, name))


def scan_python(path: Path) -> list[ScanFinding]:
    try:
        source = path.read_text(encoding="utf-8", errors="replace")
        tree = ast.parse(source, filename=str(path))
    except (SyntaxError, ValueError, OSError, RecursionError):
        return []
    visitor = _Visitor(str(path), source)
    visitor.model_functions = {
        f.name for f in ast.walk(tree) if isinstance(f, ast.FunctionDef | ast.AsyncFunctionDef)
        and MODEL_HINTS.search(_identifiers(f.body))}
    for stmt in tree.body:            # MODEL_URL = f"https://.../{MODEL_FN}" at module level
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and \
                isinstance(stmt.targets[0], ast.Name):
            text = _text(stmt.value, visitor.constants)
            if text is not None:
                visitor.constants[stmt.targets[0].id] = text
    visitor.visit(tree)
    out = visitor.findings
    for app_name, router in visitor.included:   # app.include_router(iris_router, ...)
        head = router.split(".")[0]
        if head not in visitor.imported or app_name not in visitor.apps:
            continue
        module, level, original = visitor.imported[head]
        if router != head:            # from routes.v1 import iris_predict; iris_predict.router
            module, level, original = (f"{module}.{original}" if module else original, level,
                                       router.split(".", 1)[1])
        found = _local_module(path, module, level)
        if found is not None:
            routes, limited = _routers(str(found)).get(original, (0, False))
            visitor.apps[app_name].model_routes += routes
            visitor.apps[app_name].limited |= limited
    for app in visitor.apps.values():
        if app.model_routes and not app.limited and not app.router:
            out.append(ScanFinding("serving", "SRV-NO-RATE-LIMIT", "cls-missing-rate-limiting",
                                   "classical", "medium", str(path), app.line,
                                   f"app {app.name} has no rate limiting (slowapi, "
                                   "fastapi-limiter, flask-limiter): unlimited queries make "
                                   "extraction and denial of service cheap"))
    return sorted(out, key=lambda f: (f.line or 0, f.rule))


def _local_module(path: Path, module: str, level: int) -> Path | None:
    """The file of this repository an import names, if there is one: relative imports from the
    importing file's package, absolute ones from one of its parent folders (a repository's
    root is seldom more than a few levels up); never a library's."""
    parts = [p for p in module.split(".") if p]
    if level:
        bases = [path.parents[level - 1]] if level <= len(path.parents) else []
    else:
        bases = []
        for base in list(path.parents)[:5]:   # up to the project's root, when it is marked
            bases.append(base)
            if any((base / marker).exists() for marker in PROJECT_ROOTS):
                break
    for base in bases:
        target = base.joinpath(*parts) if parts else base
        for candidate in (target.with_suffix(".py"), target / "__init__.py"):
            if parts and candidate.is_file():
                return candidate
    return None


def _parsed(path: str) -> ast.Module | None:
    try:
        return ast.parse(Path(path).read_text(encoding="utf-8", errors="replace"))
    except (SyntaxError, ValueError, OSError, RecursionError):
        return None


def _stamp(path: str | Path) -> tuple[int, int]:
    """What identifies a file's version for the caches below: a file edited between two scans
    of one process (the board) is read again."""
    try:
        st = Path(path).stat()
    except OSError:
        return (0, 0)
    return (st.st_mtime_ns, st.st_size)


def _model_functions(path: str) -> frozenset[str]:
    """Functions of a file that use a model, themselves or through another of the file's."""
    return _model_functions_of(path, _stamp(path))


@functools.lru_cache(maxsize=256)
def _model_functions_of(path: str, stamp: tuple[int, int]) -> frozenset[str]:
    tree = _parsed(path)
    if tree is None:
        return frozenset()
    functions = [f for f in ast.walk(tree) if isinstance(f, ast.FunctionDef | ast.AsyncFunctionDef)]
    found = {f.name for f in functions if MODEL_HINTS.search(_identifiers(f.body))}
    for f in functions:
        if _calls(f) & found:
            found.add(f.name)
    return frozenset(found)


def _routers(path: str) -> dict[str, tuple[int, bool]]:
    """The routers and blueprints a file defines: routes that reach a model, rate-limited."""
    return _routers_of(path, _stamp(path))


@functools.lru_cache(maxsize=256)
def _routers_of(path: str, stamp: tuple[int, int]) -> dict[str, tuple[int, bool]]:
    tree = _parsed(path)
    if tree is None:
        return {}
    visitor = _Visitor(path, "")
    visitor.model_functions = set(_model_functions(path))
    visitor.visit(tree)
    return {name: (app.model_routes, app.limited) for name, app in visitor.apps.items()
            if app.router}


def serving_apps(path: Path) -> list[str]:
    """Names of web apps a Python file defines (for `discover`)."""
    try:
        tree = ast.parse(path.read_text(encoding="utf-8", errors="replace"))
    except (SyntaxError, ValueError, OSError, RecursionError):
        return []
    visitor = _Visitor(str(path), "")
    visitor.visit(tree)
    return [a.name for a in visitor.apps.values() if a.framework]


def scan_torchserve(path: Path) -> list[ScanFinding]:
    out = []
    for number, line in enumerate(path.read_text(errors="replace").splitlines(), start=1):
        key, _, value = (p.strip() for p in line.partition("="))
        if key == "disable_token_authorization" and value.lower() == "true":
            out.append(ScanFinding("serving", "SRV-NO-AUTH", "cls-unauthenticated-api",
                                   "classical", "high", str(path), number,
                                   "TorchServe token authorization is disabled"))
        if key in ("inference_address", "management_address") and "0.0.0.0" in value:
            sev = "high" if key == "management_address" else "low"
            out.append(ScanFinding("serving", "SRV-BIND-ALL", "cls-public-app-exploit",
                                   "classical", sev, str(path), number,
                                   f"{key} listens on every interface"
                                   + (": the management API can register models (code)"
                                      if key == "management_address" else "")))
    return out


# Azure ML web-service deployment configurations (`az ml model deploy --dc FILE`): ACI keys are
# off unless authEnabled is set, AKS keys on unless it is turned off
AML_COMPUTE = re.compile(r"(?mi)^\s*\"?computeType\"?\s*:\s*\"?(ACI|AKS)\b")
AML_AUTH = re.compile(r"(?mi)^\s*\"?(authEnabled|tokenAuthEnabled)\"?\s*:\s*\"?(true|false)\b")


def scan_aml_deployment(path: Path) -> list[ScanFinding]:
    """An Azure ML deployment configuration whose web service answers without a key or token."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")[:200_000]
    except OSError:
        return []
    compute = AML_COMPUTE.search(text)
    if not compute:
        return []
    settings = {m.group(1).lower(): (m.group(2).lower() == "true", m) for m in
                AML_AUTH.finditer(text)}
    key, key_at = settings.get("authenabled", (compute.group(1).upper() == "AKS", None))
    token = settings.get("tokenauthenabled", (False, None))[0]
    if key or token:
        return []
    at = key_at or compute
    line = text.count("\n", 0, at.start()) + 1
    why = "authEnabled: false" if key_at else f"no authEnabled, and {compute.group(1).upper()} " \
        "deployments are keyless by default"
    return [ScanFinding("serving", "SRV-NO-AUTH", "cls-unauthenticated-api", "classical",
                        "high", str(path), line, f"Azure ML {compute.group(1).upper()} "
                        f"deployment without key or token authentication ({why}): anyone who "
                        "finds the scoring URI can query the model")]


SERVERS = re.compile(r"(?i)\b(uvicorn|gunicorn|hypercorn|flask|streamlit|gradio|torchserve|"
                     r"mlflow|bentoml|tritonserver|jupyter|tensorboard|python3?)\b")
MLFLOW_SERVER = re.compile(r"\bmlflow\s+(server|ui)\b")


def scan_dockerfile(path: Path) -> list[ScanFinding]:
    """CMD and ENTRYPOINT that start a server on every interface (continuation lines joined)."""
    out = []
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return []
    number = 0
    entrypoint = ""         # the stage's ENTRYPOINT: a CMD gives it its arguments
    while number < len(lines):
        start, text = number + 1, lines[number]
        while text.rstrip().endswith("\\") and number + 1 < len(lines):
            number += 1
            text = text.rstrip()[:-1] + " " + lines[number]
        number += 1
        if re.match(r"(?i)^\s*FROM\b", text):
            entrypoint = ""
        m = re.match(r"(?i)^\s*(CMD|ENTRYPOINT)\b(.*)", text)
        if m and m.group(1).upper() == "ENTRYPOINT":
            entrypoint = m.group(2)
        if not m or not re.search(r"0\.0\.0\.0|\[?::\]?(?=[\s\"',:]|$)", m.group(2)):
            continue
        command = m.group(2)
        if m.group(1).upper() == "CMD" and not SERVERS.search(command):
            command = f"{entrypoint} {command}"
        server = SERVERS.search(command)
        if MLFLOW_SERVER.search(command) and "--app-name" not in command:
            out.append(ScanFinding(
                "serving", "SRV-BIND-ALL", "cls-unauthenticated-api", "classical", "high",
                str(path), start, "the container starts an MLflow server on every interface: it "
                "has no authentication unless --app-name basic-auth is set, so whoever reaches "
                "the port can read and replace runs and registered models"))
        elif server and server.group(1).lower() == "jupyter" and re.search(
                r"token\s*=\s*(''|\"\"|\\?'\\?'|$|\s)", command):
            out.append(ScanFinding(
                "serving", "SRV-BIND-ALL", "cls-public-app-exploit", "classical", "critical",
                str(path), start, "the container starts Jupyter on every interface with an empty "
                "token: whoever reaches the port runs code in it"))
        elif server:
            out.append(ScanFinding(
                "serving", "SRV-BIND-ALL", "cls-public-app-exploit", "classical", "low",
                str(path), start, f"the container starts {server.group(1)} on every interface "
                "(as a container must to be reached): whoever reaches the published port "
                "reaches the app; publish it only behind a gateway that authenticates and "
                "limits"))
    return out


class ServingScanner(Scanner):
    """Serving code read as a syntax tree (FastAPI, Flask) and TorchServe configuration."""

    name = "serving"
    threat_ids = ("cls-unauthenticated-api", "cls-missing-rate-limiting", "cls-public-app-exploit",
                  "cls-unsafe-deserialization", "aml-model-extraction", "aml-backdoor-pretrained")

    def applies_to(self, path: Path) -> bool:
        return path.suffix == ".py" or path.name == "config.properties" or _dockerfile(path) \
            or _aml_deployment(path) or path.suffix in (".yaml", ".yml", ".json")

    reads_tests = False

    def scan(self, path: Path, ctx: ScanContext) -> list[ScanFinding]:
        if _dockerfile(path):
            return scan_dockerfile(path)
        if _aml_deployment(path):
            return scan_aml_deployment(path)
        if path.suffix in (".yaml", ".yml", ".json"):
            return scan_openapi(path)
        return scan_python(path) if path.suffix == ".py" else scan_torchserve(path)


def scan_openapi(path: Path) -> list[ScanFinding]:
    """An OpenAPI file that routes to Python functions by operationId (connexion's way), with no
    security scheme for an operation whose function, in this repository, uses a model."""
    return [ScanFinding(
        "serving", "SRV-NO-AUTH", "cls-unauthenticated-api", "classical", "high", str(path), line,
        f"{method.upper()} {route} runs {operation} with no security scheme in the OpenAPI file: "
        "anyone who reaches it can query the model")
        for route, method, operation, line, secured in _model_operations(path) if not secured]


def _model_operations(path: Path) -> tuple[tuple[str, str, str, int | None, bool], ...]:
    """(route, method, operationId, line, secured) of an OpenAPI file's operations whose
    operationId names a function of this repository that uses a model."""
    return _model_operations_of(path, _stamp(path))


@functools.lru_cache(maxsize=64)
def _model_operations_of(path: Path, stamp: tuple[int, int]
                         ) -> tuple[tuple[str, str, str, int | None, bool], ...]:
    try:
        if path.stat().st_size > 2_000_000:
            return ()
        with path.open("rb") as f:    # an OpenAPI document says so near its top
            if not re.search(rb"[\"']?(openapi|swagger)[\"']?\s*:", f.read(4096)):
                return ()
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ()
    if "operationId" not in text or not re.search(r"^\s*[\"']?(openapi|swagger)[\"']?\s*:",
                                                   text, re.M):
        return ()
    try:
        spec = yaml.safe_load(text)
    except yaml.YAMLError:
        return ()
    if not isinstance(spec, dict) or not isinstance(spec.get("paths"), dict):
        return ()
    out = []
    for route, operations in spec["paths"].items():
        if not isinstance(operations, dict) or PLUMBING.search(str(route)):
            continue
        for method, op in operations.items():
            if not isinstance(op, dict) or not isinstance(op.get("operationId"), str):
                continue
            module, _, function = op["operationId"].rpartition(".")
            found = _local_module(path, module, 0) if module else None
            if found is None or function not in _model_functions(str(found)):
                continue
            line = next((i for i, row in enumerate(text.splitlines(), start=1)
                         if op["operationId"] in row), None)
            # an operation's own `security` (even an empty one, which switches it off)
            # overrides the file's
            secured = bool(op["security"] if "security" in op else spec.get("security"))
            out.append((str(route), str(method), op["operationId"], line, secured))
    return tuple(out)


def _aml_deployment(path: Path) -> bool:
    """A file named like an Azure ML deployment configuration (deployment_config_aci.yml,
    deploymentconfig.json); `scan_aml_deployment` reads only those with a computeType."""
    name = path.name.lower()
    return name.endswith((".yml", ".yaml", ".json")) and "deploy" in name and "config" in name


def _dockerfile(path: Path) -> bool:
    return path.name.startswith(("Dockerfile", "Containerfile")) or \
        path.suffix.lower() in (".dockerfile", ".containerfile")
