"""Drafting a pipeline spec from a repository (`mlthreat discover DIR`).

Finds what is inside the repository: data files, training scripts and notebooks, evaluation
scripts, model artifacts (identified by content), serving apps (FastAPI/Flask by syntax tree,
Ray Serve, BentoML, Gradio, Streamlit, Lambda handlers; TorchServe configs), monitoring code, DVC
stages (dvc.yaml, with the flows their deps and outs imply), MLflow models (MLmodel), Dockerfiles
and CI workflows; and what comes from outside it, read from the code: data sets and downloads,
DVC imports, pretrained and hosted models, experiment tracking and model registries. Controls
visible in code (an authentication dependency, a rate limiter, a lock file, safe loading) are
drafted as controls. Test suites and documentation are never taken for training or serving.
Flows are drawn only where code or configuration shows them (a script that reads a file, a
workflow that runs a script, a DVC dependency), each saying where it was seen. Every guess is
written into the component's notes ("guessed: ..."), so a reviewer knows what to check; the
draft always passes `mlthreat validate`.
"""

from __future__ import annotations

import ast
import bisect
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mlthreat.scanners import SKIP_DIRS
from mlthreat.scanners.dependencies import LOCK_FILES
from mlthreat.scanners.interface import is_test_file
from mlthreat.scanners.modelfile import sniff
from mlthreat.scanners.serving import serving_apps

DATA_SUFFIXES = {".csv", ".tsv", ".parquet", ".jsonl", ".feather", ".arrow", ".avro", ".orc"}
MODEL_SUFFIXES = {".pkl", ".pickle", ".joblib", ".pt", ".pth", ".ckpt", ".bin", ".safetensors",
                  ".onnx", ".h5", ".keras", ".npz", ".sav", ".model", ".ubj", ".xgb", ".lgb"}
# Model formats the model-file scanner does not look inside; recognised by extension only.
OPAQUE_MODELS = {".tflite", ".mlmodel", ".mlpackage", ".pb", ".gguf", ".pte", ".engine", ".plan"}
# hidden folders whose YAML files are CI pipelines (GitHub Actions; Azure Pipelines' usual homes)
# folders whose name says they hold trained models, whether or not the files are committed
MODEL_FOLDERS = {"trained_models", "saved_models", "trained_model", "saved_model_dir",
                 "model_store", "model_artifacts", "model_registry"}
HIDDEN_CI = (".github/workflows", ".pipelines", ".azure-pipelines", ".azuredevops", ".circleci",
             ".buildkite")
CI_FILES = (".github/workflows", ".pipelines", ".azure-pipelines", ".azuredevops",
            ".gitlab-ci.yml", "Jenkinsfile", "azure-pipelines.yml",
            ".circleci/config.yml", "bitbucket-pipelines.yml", ".travis.yml", ".buildkite")
TRAIN_HINT = re.compile(r"\.fit\(|Trainer\(|trainer\.train\(|\.train\(|optimizer\.step\(|"
                        r"lightgbm\.train|xgboost\.train|xgb\.train|lgb\.train")
STAGE_KINDS = [(re.compile(r"train|fit|tune"), "training"),
               (re.compile(r"eval|valid|test|metric|score"), "validation"),
               (re.compile(r"serve|deploy|api"), "serving"),
               (re.compile(r"download|fetch|ingest|collect|scrape"), "data_source"),
               (re.compile(r"label|annotat"), "labeling")]
MAX_LISTED = 25
MAX_SIGNALS = 6           # places named in a component's notes
DOC_DIRS = {"docs", "doc", "documentation", "site", "website"}
_S = r"[fFrRbBuU]{0,2}[\"']"     # a string's opening quote, with its prefix (f"...", r'...')
_E = r"[\"']"
# what code fetches from outside the repository: (kind of source, pattern, label)
OUTSIDE: list[tuple[str, re.Pattern[str], str]] = [
    ("pretrained", re.compile(r"\bfrom_pretrained\(\s*(?:pretrained_model_name_or_path\s*=\s*)?"
                              + _S + r"([\w./-]+)" + _E), "{} (from_pretrained)"),
    ("pretrained", re.compile(r"\b[A-Z]\w*\.from_pretrained\(\s*(?![\"'])([\w.\[\]'\"]+)"),
     "from_pretrained({}): the name is decided at run time"),
    ("pretrained", re.compile(r"\bhub\.load\(\s*" + _S + r"([\w./:-]+)" + _S), "{} (torch.hub)"),
    ("pretrained", re.compile(r"\b(?:hf_hub_download|snapshot_download)\(\s*(?:repo_id\s*=\s*)?"
                              + _S + r"([\w./-]+)" + _S), "{} (hub download)"),
    ("pretrained", re.compile(r"\bcreate_model\(\s*" + _S + r"([\w./-]+)" + _S
                              + r"[^)]*pretrained\s*=\s*True"), "{} (timm)"),
    ("pretrained", re.compile(r"\b(\w+)\([^()]*\bweights\s*=\s*" + _S + "imagenet"),
     "{} with ImageNet weights"),
    # Keras applications load ImageNet weights unless told weights=None
    ("pretrained", re.compile(r"\bapplications\.(?:[a-z_0-9]+\.)?([A-Z]\w+)\((?![^)]*\bweights"
                              r"\s*=)"), "Keras {} (ImageNet weights by default)"),
    ("pretrained", re.compile(r"\bmodels\.(\w+)\([^)]*(?:pretrained\s*=\s*True|weights\s*=\s*"
                              r"(?!None\b)[\w\"'])"), "torchvision {}"),
    ("pretrained", re.compile(r"\bSentenceTransformer\(\s*" + _S + r"([\w./-]+)"),
     "{} (sentence-transformers)"),
    ("pretrained", re.compile(r"\bpipeline\([^)]*\bmodel\s*=\s*" + _S + r"([\w./-]+)"),
     "{} (transformers pipeline)"),
    ("pretrained", re.compile(r"\bwhisper\.load_model\(\s*" + _S + r"([\w.-]+)"), "Whisper {}"),
    ("pretrained", re.compile(r"\bdlib\.(cnn_face_detection_model_v1|shape_predictor|"
                              r"face_recognition_model_v1)\("), "dlib {} weights"),
    # clients of LangChain, LlamaIndex and the providers' own SDKs
    ("hosted", re.compile(r"\b((?:Async|Azure|Chat|AzureChat)?OpenAI(?:Like)?(?:Embeddings?)?|"
                          r"(?:Async|Chat)?Anthropic|GenerativeModel|ChatGoogleGenerativeAI|"
                          r"Gemini(?:Embedding)?|ChatVertexAI|ChatCohere|Cohere(?:Embeddings?)?|"
                          r"ChatMistralAI|MistralAI|MistralClient|Groq|ChatGroq|ChatBedrock|"
                          r"BedrockChat|Bedrock(?:Converse|Embedding)?|ChatLiteLLM|(?:Chat)?Ollama|"
                          r"Ollama(?:Embeddings?)|init_chat_model|init_embeddings)\("), "{} client"),
    ("hosted", re.compile(r"\b(litellm(?=\.a?completion\()|openai(?=\.(?:ChatCompletion|Completion|"
                          r"Embedding|chat\.completions|completions|embeddings|responses)\.a?create\())"),
     "{} API"),
    ("data", re.compile(r"\bload_dataset\(\s*(?:path\s*=\s*)?" + _S + r"([\w./-]+)" + _S),
     "{} (Hugging Face datasets)"),
    ("data", re.compile(r"\b(fetch_(?:openml|california_housing|covtype|kddcup99|lfw_\w+|"
                        r"olivetti_faces|rcv1|species_distributions|20newsgroups\w*))\("),
     "scikit-learn {}"),
    ("data", re.compile(r"\b(load_(?:boston|iris|digits|breast_cancer|wine|diabetes|linnerud))\("),
     "scikit-learn {}"),
    ("data", re.compile(r"\btfds\.(?:load|builder)\(\s*" + _S + r"([\w./:-]+)" + _S),
     "TensorFlow Datasets {}"),
    ("data", re.compile(r"\bdatasets\.(\w+)\.load_data\("), "Keras data set {}"),
    ("data", re.compile(r"\bdatasets\.(\w+)\([^)]*download\s*=\s*True"), "torchvision {}"),
    ("data", re.compile(r"\b(?:read_csv|read_parquet|read_json|read_excel|read_table|read_feather)"
                        r"\(\s*" + _S + r"((?:https?|s3|gs|gcs|az|abfss?)://[^\"']+)"), "{}"),
    ("data", re.compile(r"\b(?:urlretrieve|download_url|download_and_extract_archive|"
                        r"wget\.download|get_file|requests\.get)\(\s*(?:\w+\s*,\s*)?" + _S +
                        r"((?:https?|s3|gs)://[^\"']+\.(?:csv|tsv|zip|gz|tgz|tar|bz2|xz|parquet|"
                        r"json|jsonl|txt|xml|npz|npy|h5|arrow))" + _S), "{}"),
    ("data", re.compile(_S + r"((?:https?|s3|gs)://[^\"'\s]+\.(?:csv|tsv|zip|tar\.gz|tgz|parquet|"
                        r"jsonl|arrow|npz|h5|tfrecord)(?:\?[^\"'\s]*)?)" + _E), "{}"),
    ("store", re.compile(r"\b(QdrantClient|chromadb|Chroma|FAISS|faiss|PGVector|Milvus|Pinecone|"
                         r"weaviate|LanceDB|lancedb|ElasticsearchStore|OpenSearchVectorSearch|"
                         r"VectorStoreIndex|\w+VectorStore|\w+VectorSearch)\b[.(]"),
     "{} vector store or index"),
    ("data", re.compile(r"\bgit\s+clone\s+(?:-\S+\s+)*(https?://\S*?(?:data|Data|DATA)\S*?)"
                        r"(?:\.git)?(?=[\s\"'\\]|$)"), "{} (git clone)"),
    ("data", re.compile(r"\bkaggle\s+(?:competitions|datasets)\s+download\b|"
                        r"\bkaggle\.api\.\w*download"), "Kaggle download"),
    ("tracking", re.compile(r"\bmlflow\.(?:set_tracking_uri|register_model|log_model|start_run|"
                            r"autolog|\w+\.log_model|\w+\.autolog|pyfunc\.load_model|"
                            r"\w+\.load_model)\b|\bMlflowClient\("), "MLflow"),
    ("tracking", re.compile(r"\bwandb\.(?:init|log_artifact|Artifact|use_artifact)\b"),
     "Weights & Biases"),
    ("tracking", re.compile(r"\bneptune\.init\w*\(|\bcomet_ml\.Experiment\("),
     "Neptune/Comet"),
    ("tracking", re.compile(r"\b(WandbLogger|MLFlowLogger|NeptuneLogger|CometLogger)\("),
     "{} (Lightning logger)"),
    ("tool", re.compile(r"(?m)^\s*@(tool|function_tool|mcp\.tool|server\.tool|app\.tool)\b"),
     "@{} function"),
    ("tool", re.compile(r"\b(FastMCP|MultiServerMCPClient|stdio_client|sse_client|"
                        r"streamablehttp_client|StructuredTool\.from_function|ToolNode|"
                        r"bind_tools|initialize_agent|create_react_agent|create_tool_calling_agent|"
                        r"Tavily\w*|DuckDuckGoSearch\w*|SerpAPIWrapper|WikipediaQueryRun|"
                        r"PythonREPLTool|ShellTool|Requests\w*Tool)\("), "{}"),
    ("prompt", re.compile(r"[\"']role[\"']\s*:\s*[\"']system[\"']|\bSystemMessage\(|"
                          r"\(\s*[\"']system[\"']\s*,|^[A-Z_]*SYSTEM_PROMPT\w*\s*=\s*[fr]?[\"']", re.M),
     "a system prompt"),
    ("memory", re.compile(r"\b(Conversation\w*Memory|\w*ChatMessageHistory|MemorySaver|"
                          r"\w+Saver\.from_conn_string|InMemoryStore|AsyncPostgresStore|"
                          r"PostgresStore|MemoryClient)\("), "{}"),
    ("memory", re.compile(r"\bstore\.a?(?:put|search)\(\s*\("), "a LangGraph store"),
    # managed ML platforms: endpoints, registries, monitoring jobs (Vertex AI, SageMaker, Azure ML)
    ("endpoint", re.compile(r"\b(?:Endpoint\.create|\w*[eE]ndpoint\w*\.deploy)\("),
     "a Vertex AI-style endpoint (Endpoint.create, endpoint.deploy)"),
    ("endpoint", re.compile(r"\.deploy\((?:[^()]|\([^()]*\)){0,300}?\binitial_instance_count\s*="),
     "a SageMaker endpoint"),
    ("endpoint", re.compile(r"\bManagedOnlineEndpoint\("), "an Azure ML online endpoint"),
    ("registry", re.compile(r"\bModel\.upload\("), "the Vertex AI model registry"),
    ("registry", re.compile(r"\.register\((?:[^()]|\([^()]*\)){0,400}?\bmodel_package_group_name\s*="),
     "the SageMaker model registry"),
    ("registry", re.compile(r"\bml_client\.models\.create_or_update\("), "the Azure ML registry"),
    ("registry", re.compile(r"\b\w*Model\.register\((?:[^()]|\([^()]*\)){0,400}?\bmodel_name\s*="),
     "the Azure ML model registry (Model.register)"),
    ("monitor", re.compile(r"\b(ModelDeploymentMonitoringJob|DefaultModelMonitor|ModelQualityMonitor|"
                           r"ModelBiasMonitor|ModelExplainabilityMonitor|MonitorSchedule)\("),
     "{} (managed model monitoring)"),
    # data stores the code reads and writes
    ("warehouse", re.compile(r"\b(bigquery\.Client|BigQueryExampleGen|snowflake\.connector\.connect|"
                             r"redis\.(?:Strict)?Redis|MongoClient|psycopg2?\.connect)\("), "{}"),
    ("data", re.compile(r"`?(bigquery-public-data\.[\w-]+)"), "BigQuery public data set {}"),
    # TFX stages beyond the trainer
    ("transform", re.compile(r"\bTransform\(\s*examples\s*="), "TFX Transform"),
    ("transform", re.compile(r"\b(SKLearnProcessor|ScriptProcessor|FrameworkProcessor|"
                             r"PySparkProcessor)\("), "SageMaker {}"),
    ("evaluator", re.compile(r"\bEvaluator\(\s*examples\s*="), "TFX Evaluator"),
]
# words every match of the OUTSIDE pattern of the same index contains
NEEDLES: list[tuple[str, ...]] = [
    ("from_pretrained",), ("from_pretrained",), ("hub.load",), ("_download",), ("create_model",),
    ("imagenet",), ("applications.",), ("models.",), ("SentenceTransformer",), ("pipeline(",),
    ("load_model",), ("dlib.",),
    ("OpenAI", "Anthropic", "GenerativeModel", "Google", "Vertex", "Cohere", "Mistral", "Groq",
     "Bedrock", "Ollama", "LiteLLM", "init_chat_model", "init_embeddings"), ("litellm", "openai."),
    ("load_dataset",), ("fetch_",), ("load_",), ("tfds.",), ("load_data",), ("download",), ("read_",),
    ("urlretrieve", "download", "get_file", "requests.get"), ("://",),
    ("Qdrant", "chroma", "Chroma", "FAISS", "faiss", "PGVector", "Milvus", "Pinecone", "weaviate",
     "LanceDB", "lancedb", "Elasticsearch", "OpenSearch", "VectorStore", "VectorSearch"),
    ("clone",), ("kaggle",), ("mlflow", "MlflowClient"), ("wandb",), ("neptune", "comet_ml"),
    ("Logger(",),
    ("tool",), ("MCP", "_client", "Tool", "tools", "agent", "Tavily", "DuckDuckGo", "SerpAPI",
                "Wikipedia", "REPL"),
    ("system",), ("Memory", "History", "Saver", "Store", "MemoryClient"), ("store.",),
    ("ndpoint",), ("initial_instance_count",), ("ManagedOnlineEndpoint",), ("Model.upload",),
    ("model_package_group_name",), ("ml_client",), ("Model.register",), ("Monitor",),
    ("bigquery", "BigQuery", "snowflake", "redis", "Redis", "MongoClient", "psycopg"),
    ("bigquery-public-data",), ("Transform(",), ("Processor(",), ("Evaluator(",)]
# serving beyond FastAPI/Flask, and monitoring code
SERVERS = [(re.compile(r"@serve\.deployment|\bserve\.run\("), "Ray Serve"),
           (re.compile(r"@bentoml\.(?:service|api)\b|\bbentoml\.Service\("), "BentoML"),
           (re.compile(r"\bgr\.(?:Interface|Blocks|ChatInterface)\("), "Gradio"),
           (re.compile(r"(?m)^\s*(?:import streamlit\b|from streamlit\b)"), "Streamlit"),
           (re.compile(r"(?m)^def lambda_handler\("), "an AWS Lambda handler")]
# Azure Pipelines YAML wherever it sits: its steps are tasks, its agents vmImages
AZURE_PIPELINE = re.compile(r"(?m)^\s*(?:-\s*)?task:\s*[\w.]+@\d+\s*$|^\s*vmImage:\s*\S")
# Application Insights switched on for a deployed service (Azure ML deployment configurations)
APP_INSIGHTS = re.compile(r"(?mi)^\s*\"?appInsightsEnabled\"?\s*:\s*true\b")
# an Azure ML entry script: init() loads the registered model, run() answers each request
AML_INIT = re.compile(r"(?m)^def init\(\s*\)")
AML_RUN = re.compile(r"(?m)^def run\(\s*\w+")
AML_MODEL = re.compile(r"\bAZUREML_MODEL_DIR\b|\bModel\.get_model_path\(")
# a data set configuration that names where to download it from (YOLO-style data/*.yaml)
DOWNLOAD_KEY = re.compile(r"(?m)^download:\s*[\"']?((?:https?|s3|gs)://\S+?)[\"']?\s*$")
# a file that may define a FastAPI or Flask app (read as a syntax tree only then)
WEB_APPS = re.compile(r"\b(FastAPI|APIRouter|Flask|Blueprint)\(")
MONITORS = re.compile(r"(?m)^\s*(?:from|import)\s+(evidently|prometheus_client|whylogs|"
                      r"alibi_detect|nannyml|deepchecks)\b")
# code that reads a camera: a webcam by index, an IP camera's stream, a Raspberry Pi camera
CAMERA = re.compile(r"\bVideoCapture\(\s*(?:\d|[\"'](?:rtsp|rtmp|https?)://)|\bPiCamera2?\(")
# face detection and recognition: the images are biometric data about people
FACES = re.compile(r"(?m)^\s*(?:from|import)\s+(face_recognition|deepface|insightface|facenet_pytorch|"
                   r"mtcnn)\b|\bface_recognition_model_v1\(|haarcascade_frontalface")
EVAL_NAMES = re.compile(r"^(eval|evaluate|evaluation|val|validate|validation|benchmark)\w*\.py$")
# a notebook named for evaluating (Evaluate-Results.ipynb, benchmark_models.ipynb)
EVAL_NOTEBOOKS = re.compile(r"(?i)^(eval|evaluate|evaluation|validate|validation|benchmark)[\w-]*"
                            r"\.ipynb$")
# controls visible in code: (control, pattern, what shows it)
CONTROL_HINTS = [
    ("authentication", re.compile(r"\b(APIKeyHeader|APIKeyQuery|HTTPBearer|HTTPBasic|"
                                  r"OAuth2PasswordBearer|login_required|jwt_required|"
                                  r"verify_api_key|validate_api_key|X-API-Key)\b"),
     "an authentication dependency"),
    ("rate_limiting", re.compile(r"\b(slowapi|fastapi_limiter|flask_limiter|RateLimiter|Limiter)\b"),
     "a rate limiter"),
    ("safe_serialization", re.compile(r"weights_only\s*=\s*True|\bsafetensors\b|"
                                      r"use_safetensors\s*=\s*True"), "safe model loading"),
]


@dataclass
class Draft:
    root: Path
    components: dict[str, dict[str, Any]] = field(default_factory=dict)
    flows: list[tuple[str, str, str]] = field(default_factory=list)
    owner: dict[str, str] = field(default_factory=dict)     # code file (relative) -> component
    code_files: list[str] = field(default_factory=list)      # every .py/.ipynb of the pipeline
    _texts: dict[str, tuple[str, list[tuple[int, int]]]] = field(default_factory=dict)

    def note(self, cid: str, text: str) -> None:
        self.components[cid]["notes"] += f"; {text}"

    def text(self, rel: str) -> str:
        """A code file's text (a notebook's code cells), read once."""
        if rel not in self._texts:
            self._texts[rel] = _code_text(self.root / rel)
        return self._texts[rel][0]

    def strings(self, rel: str) -> list[tuple[int, int]]:
        """Where the string literals of a code file's text lie (offsets into `text(rel)`)."""
        self.text(rel)
        return self._texts[rel][1]

    def add(self, cid: str, kind: str, name: str, guessed: str, **extra: Any) -> str:
        if cid not in self.components:
            self.components[cid] = {"id": cid, "kind": kind, "name": name, **extra,
                                    "notes": f"guessed: {guessed}"}
        return cid

    def artifact(self, cid: str, key: str, path: Path) -> None:
        items = self.components[cid].setdefault("artifacts", {}).setdefault(key, [])
        rel = os.path.relpath(path, self.root)
        if key == "code":
            self.owner.setdefault(rel, cid)
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
    for folder in HIDDEN_CI:
        out += sorted((root / folder).glob("*.y*ml"))
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
    _dvc_imports(draft, root, files)
    for path in files:
        _classify(draft, path)
    _outside(draft)
    _faces(draft)
    _controls(draft, files)
    _connect(draft)
    _served_outputs(draft)
    _request_people(draft)
    return draft


def _not_pipeline(rel: Path) -> bool:
    """A test suite's or the documentation's file: never drafted as a part of the pipeline."""
    return is_test_file(rel) or bool(DOC_DIRS & {p.lower() for p in rel.parts[:-1]})


def _code_text(path: Path) -> tuple[str, list[tuple[int, int]]]:
    """A Python file's code with its prose blanked, or a notebook's code cells joined (one cell
    after another), and where its string literals lie (offsets into that text)."""
    text = _text(path)
    if path.suffix.lower() != ".ipynb":
        return _without_prose(text)
    try:
        cells = json.loads(text).get("cells", [])
    except (ValueError, AttributeError):
        return "", []
    code = "\n".join("".join(c.get("source", [])) if isinstance(c.get("source"), list)
                     else str(c.get("source", "")) for c in cells
                     if isinstance(c, dict) and c.get("cell_type") == "code")
    return code, [(m.start(), m.end()) for m in _LEX.finditer(code) if m.lastgroup == "s"]


# Python's lexical pieces that decide what is code, in one pass of the regex engine: string
# literals (any prefix, triple-quoted or not), comments, brackets and line ends. Whichever starts
# first wins, so a "#" inside a string is not a comment and a quote inside a comment not a string.
_QUOTED = [q + r"(?:[^\\" + q[0] + r"]|\\[\s\S]|" + q[0] + "(?!" + q[1:] + "))*" + q
           for q in ("'''", '"""')] + [q + r"(?:[^\\\n" + q + r"]|\\[\s\S])*" + q for q in "'\""]
_LEX = re.compile(r"(?P<s>(?:[rRbBuUfF]{1,2})?(?:" + "|".join(_QUOTED) + "))"
                  r"|(?P<c>#[^\n]*)|(?P<o>[(\[{])|(?P<x>[)\]}])|(?P<n>\n)")


def _blank(chars: list[str], a: int, b: int) -> None:
    chars[a:b] = [ch if ch == "\n" else " " for ch in chars[a:b]]


def _code_after(rest: str) -> bool:
    """Whether what follows a line's last string is code (not a comment, spaces or a ';')."""
    return bool(rest.split("#", 1)[0].strip(" \t\r;"))


def _without_prose(text: str) -> tuple[str, list[tuple[int, int]]]:
    """Python source with its comments and its prose strings (docstrings, and any statement that
    is only a string) blanked to spaces, so offsets and lines stay where they were, and where its
    string literals lie: the `load_dataset("glue")` of a docstring's example, or a line commented
    out, is not what the code does. One regex pass (Python's tokenize took most of discover's
    time on a large library)."""
    chars: list[str] | None = None
    spans: list[tuple[int, int]] = []
    depth, line_start = 0, 0
    pending: list[int] = []     # string statements begun on this line, waiting for its end
    for m in _LEX.finditer(text):
        kind = m.lastgroup
        if kind == "s":
            spans.append((m.start(), m.end()))
            if depth == 0 and (pending and not text[spans[-2][1]:m.start()].strip()
                               or not pending and text[line_start:m.start()].rstrip()[-1:] in ("", ";")
                               and not text[:line_start].rstrip(" \t\r\n").endswith("\\")):
                pending.append(len(spans) - 1)
            else:
                pending = []
        elif kind == "c":
            chars = chars if chars is not None else list(text)
            _blank(chars, m.start(), m.end())
        elif kind == "o":
            depth, pending = depth + 1, []
        elif kind == "x":
            depth, pending = max(0, depth - 1), []
        elif depth == 0:        # a logical line ends
            if pending and not _code_after(text[spans[pending[-1]][1]:m.start()]):
                chars = chars if chars is not None else list(text)
                for i in pending:
                    _blank(chars, *spans[i])
            pending, line_start = [], m.end()
    if pending and not _code_after(text[spans[pending[-1]][1]:]):
        chars = chars if chars is not None else list(text)
        for i in pending:
            _blank(chars, *spans[i])
    return ("".join(chars) if chars is not None else text), spans


def _in_string(spans: list[tuple[int, int]], at: int) -> bool:
    """Whether an offset lies inside one of the string literals' spans (sorted by start)."""
    i = bisect.bisect_left(spans, (at,)) - 1
    return i >= 0 and spans[i][0] < at < spans[i][1]


def _classify(draft: Draft, path: Path) -> None:
    suffix, name = path.suffix.lower(), path.name
    rel = path.relative_to(draft.root)
    if _not_pipeline(rel) and not any(str(rel).startswith(c) for c in CI_FILES):
        return
    if suffix in (".py", ".ipynb"):
        draft.code_files.append(rel.as_posix())
    folder = next((d for d in rel.parts[:-1] if d.lower() in MODEL_FOLDERS), None)
    if folder and "model_store" not in draft.components:
        # trained_models/ kept in the repository (often with only an __init__.py or .gitkeep)
        # for the files training writes and serving reads
        where = Path(*rel.parts[:rel.parts.index(folder) + 1]).as_posix()
        draft.add("model_store", "model_registry", "Model artifacts",
                  f"a folder for trained models ({where}/)")
    if suffix in DATA_SUFFIXES and not _in_stage(draft, path):
        draft.add("datasets", "data_store", "Data files", "data files found in the repository")
        draft.artifact("datasets", "data", path)
        people = _personal_columns(path)
        if people and not draft.components["datasets"].get("personal_data"):
            draft.components["datasets"]["personal_data"] = True
            draft.note("datasets", f"personal data guessed from the columns {', '.join(people)} "
                                   f"({rel.as_posix()})")
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
    elif suffix == ".ipynb" and EVAL_NOTEBOOKS.match(name):
        draft.add("evaluation", "validation", "Evaluation", "scripts named eval*/val*/benchmark*")
        draft.artifact("evaluation", "code", path)
    elif suffix == ".ipynb":
        draft.add("training", "training", "Training notebooks and scripts",
                  "notebooks are assumed to train or explore models")
        draft.artifact("training", "code", path)
        server = next((what for pattern, what in SERVERS if pattern.search(
            draft.text(rel.as_posix()))), None)
        if server:
            draft.add("serving", "serving", "Serving API", f"{server} in a notebook; exposure "
                      "not known, assumed public until you say otherwise", exposure="public")
            draft.artifact("serving", "code", path)
    elif suffix in (".yaml", ".yml") and (m := DOWNLOAD_KEY.search(_text(path)[:200_000])):
        draft.add("external_data", "data_source", "External data",
                  f"a data set configuration downloads {m.group(1)} ({rel.as_posix()})")
        if _public_data(m.group(1)):
            _public(draft, "external_data")
    elif suffix in (".yaml", ".yml") and (name.startswith(("cloudbuild", "buildspec")) or
                                          "gcr.io/cloud-builders/" in _text(path)[:200_000] or
                                          AZURE_PIPELINE.search(_text(path)[:200_000])):
        draft.add("ci", "ci_cd", "CI/CD pipeline", "CI workflow files")
        draft.artifact("ci", "code", path)
    elif suffix in (".yaml", ".yml") and APP_INSIGHTS.search(_text(path)[:200_000]):
        draft.add("service_telemetry", "monitoring", "Service telemetry",
                  f"Application Insights on a deployed service ({rel.as_posix()}): requests, "
                  "latency and failures, not the model's inputs or drift")
        draft.artifact("service_telemetry", "code", path)
    elif name == "langgraph.json":
        _langgraph(draft, path)
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


def _langgraph(draft: Draft, path: Path) -> None:
    """A LangGraph deployment: the graphs it names are served (LangGraph Server / Platform)."""
    try:
        graphs = json.loads(_text(path)).get("graphs", {})
    except (ValueError, AttributeError):
        return
    files = [path.parent / str(g).split(":")[0] for g in (graphs.values() if isinstance(
        graphs, dict) else ()) if isinstance(g, str)]
    files = [f for f in files if f.is_file()]
    if not files:
        return
    draft.add("serving", "serving", "Serving API", "LangGraph graphs served by a LangGraph server "
              f"({path.name}); exposure not known, assumed public until you say otherwise",
              exposure="public")
    for f in files:
        draft.artifact("serving", "code", f)


def _under_mlflow(path: Path, root: Path) -> bool:
    return any((parent / "MLmodel").exists() for parent in path.parents
               if parent == root or root in parent.parents)


def _text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")[:2_000_000]
    except OSError:
        return ""


def _python(draft: Draft, path: Path) -> None:
    text = draft.text(os.path.relpath(path, draft.root))
    server = next((what for pattern, what in SERVERS if pattern.search(text)), None)
    if server is None and AML_INIT.search(text) and AML_RUN.search(text) and \
            AML_MODEL.search(text):
        server = "an Azure ML scoring script (init and run)"
    if server or (WEB_APPS.search(text) and serving_apps(path)):
        draft.add("serving", "serving", "Serving API", f"{server or 'a FastAPI/Flask app'}; "
                  "exposure not known, assumed public until you say otherwise",
                  exposure="public")
        draft.artifact("serving", "code", path)
    elif CAMERA.search(text):
        draft.add("camera_app", "edge_deployment", "Camera application",
                  "code that runs on a camera's stream; whoever is filmed chooses what it sees. "
                  "Mark it public if others can reach the device or feed its stream",
                  captures=["camera"])
        draft.artifact("camera_app", "code", path)
    elif MONITORS.search(text):
        tool = MONITORS.search(text).group(1)  # type: ignore[union-attr]
        draft.add("monitoring", "monitoring", "Monitoring", f"code using {tool}")
        draft.artifact("monitoring", "code", path)
    elif EVAL_NAMES.match(path.name) and not _in_stage(draft, path):
        draft.add("evaluation", "validation", "Evaluation", "scripts named eval*/val*/benchmark*")
        draft.artifact("evaluation", "code", path)
    elif TRAIN_HINT.search(text) and not _in_stage(draft, path):
        draft.add("training", "training", "Training notebooks and scripts",
                  "scripts that call fit/train")
        draft.artifact("training", "code", path)


# column names that say a table is about people (compared without case, "_", "-" or spaces)
PERSONAL_COLUMNS = frozenset({
    "customerid", "clientid", "patientid", "userid", "employeeid", "personid", "memberid",
    "firstname", "lastname", "fullname", "surname", "email", "emailaddress", "phone",
    "phonenumber", "address", "streetaddress", "ssn", "passport", "dob", "dateofbirth",
    "birthdate", "gender", "sex", "age", "ethnicity", "race", "religion", "maritalstatus",
    "income", "salary", "diagnosis", "patient", "creditscore",
    # health measurements of a person (special-category data)
    "bmi", "bloodpressure", "glucose", "insulin", "pregnancies", "cholesterol", "heartrate",
    "bloodsugar", "smoker", "smoking", "medication"})


def _personal_columns(path: Path) -> list[str]:
    """The columns of a CSV/TSV header that name facts about people, when two or more do
    (one alone, such as a user id, is left to the user to judge)."""
    if path.suffix.lower() not in (".csv", ".tsv"):
        return []
    try:
        with path.open(encoding="utf-8", errors="replace") as f:
            header = f.readline(4096)
    except OSError:
        return []
    cells = [c.strip().strip("\"'") for c in re.split(r"[,\t;]", header)]
    found = [c for c in cells if re.sub(r"[\s_-]", "", c.lower()) in PERSONAL_COLUMNS]
    return found if len(found) >= 2 else []


def _faces(draft: Draft) -> None:
    """Components whose code detects or recognises faces handle biometric data about people."""
    for rel in draft.code_files:
        cid = draft.owner.get(rel)
        if cid and not draft.components[cid].get("personal_data") and FACES.search(draft.text(rel)):
            draft.components[cid]["personal_data"] = True
            draft.note(cid, f"personal data guessed: faces are biometric data ({rel})")


def _serving_code(draft: Draft) -> list[str]:
    """The Python files beside a serving component's code (its package: app/main.py's app/)."""
    dirs = {str(Path(rel).parent) for c in draft.components.values() if c["kind"] == "serving"
            for rel in c.get("artifacts", {}).get("code", [])}
    return [rel for rel in draft.code_files if rel.endswith(".py") and str(Path(rel).parent) in dirs]


def _served_outputs(draft: Draft) -> None:
    """A DVC stage's output that serving code loads (`ProjectModel.load('./data/train.dir/...')`):
    the served model comes from that stage."""
    serving = next((cid for cid, c in draft.components.items() if c["kind"] == "serving"), None)
    if serving is None:
        return
    code = _serving_code(draft)
    for cid, comp in list(draft.components.items()):
        for out in comp.get("_outs", []):
            path = out.strip("./")
            rel = next((r for r in code if path and re.search(
                rf"(?<![\w.-]){re.escape(path)}(?![\w-])", draft.text(r))), None)
            if rel and comp["kind"] in ("training", "validation", "preprocessing"):
                draft.flow(cid, serving, f"{out} (loaded in {rel})")


def _request_people(draft: Draft) -> None:
    """A serving API whose request schema (pydantic models beside its code) takes two or more
    facts about people (age, sex, income, ...) answers about people, and the model learnt from
    records with the same fields: the data that feeds training is personal."""
    found: list[str] = []
    where = ""
    for rel in _serving_code(draft):
        try:      # the file as written: blanking its docstrings could leave a class body empty
            tree = ast.parse(_text(draft.root / rel))
        except (SyntaxError, ValueError, RecursionError):
            continue
        for cls in ast.walk(tree):
            if not isinstance(cls, ast.ClassDef) or not any(
                    _base_name(b) == "BaseModel" for b in cls.bases):
                continue
            fields = [n.target.id for n in cls.body
                      if isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name)]
            people = [f for f in fields if re.sub(r"[\s_-]", "", f.lower()) in PERSONAL_COLUMNS]
            if len(people) >= 2 and len(people) > len(found):
                found, where = people, f"{rel}, {cls.name}"
    if not found:
        return
    training = {cid for cid, c in draft.components.items()
                if c["kind"] in ("training", "preprocessing")}
    for a, b, _ in list(draft.flows):
        comp = draft.components.get(a, {})
        if b in training and comp.get("kind") in ("data_source", "data_store") and \
                not comp.get("personal_data"):
            comp["personal_data"] = True
            draft.note(a, f"personal data guessed: the serving API takes {', '.join(found)} "
                          f"({where}), and the model learnt from records like them")


def _base_name(node: ast.expr) -> str:
    return node.attr if isinstance(node, ast.Attribute) else node.id \
        if isinstance(node, ast.Name) else ""


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
        for key, url in _url_params(root, stage.get("params")):
            draft.add("external_data", "data_source", "External data",
                      f"data fetched from outside the repository: {url} (DVC parameter {key} "
                      f"of stage '{name}')")
            if _public_data(url):
                _public(draft, "external_data")
            draft.flow("external_data", cid, f"{url} (DVC parameter {key})")
        for out in _as_list(stage.get("outs")):
            outputs[str(out)] = cid
            draft.components[cid].setdefault("_outs", []).append(str(out))
            _stage_artifact(draft, cid, root / out)
    for name, stage in (stages or {}).items():
        for dep in _as_list(stage.get("deps") if isinstance(stage, dict) else None):
            if str(dep) in outputs:
                draft.flow(outputs[str(dep)], _slug(name), f"{dep} (dvc)")
            elif Path(str(dep)).suffix.lower() in DATA_SUFFIXES or (root / str(dep)).is_dir():
                draft.add("datasets", "data_store", "Data files", "data files used by DVC stages")
                draft.artifact("datasets", "data", root / str(dep))
                draft.flow("datasets", _slug(name), f"{dep} (dvc)")


def _url_params(root: Path, params: object) -> list[tuple[str, str]]:
    """The parameters a DVC stage reads (`params: [data.url]`, or `{file.yaml: [keys]}`) whose
    value in the parameters file is an http(s) URL: the stage downloads from there."""
    wanted: list[tuple[str, str]] = []
    for item in params if isinstance(params, list) else []:
        if isinstance(item, str):
            wanted.append(("params.yaml", item))
        elif isinstance(item, dict):
            wanted += [(str(f), str(k)) for f, keys in item.items()
                       for k in (keys if isinstance(keys, list) else [])]
    out = []
    files: dict[str, object] = {}
    for name, key in wanted:
        path = (root / name).resolve()
        if not path.is_relative_to(root.resolve()) or not path.is_file():
            continue                  # a parameters file outside the repository is not read
        try:
            if name not in files:
                files[name] = yaml.safe_load(_text(path))
        except yaml.YAMLError:
            files[name] = None
        value = files[name]
        for part in key.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        if isinstance(value, str) and re.match(r"https?://\S+$", value):
            out.append((key, value))
    return out


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


SOURCES = {"data": ("external_data", "data_source", "External data",
                     "data fetched from outside the repository"),
           "pretrained": ("pretrained", "pretrained_model", "Pretrained models",
                          "models downloaded from a hub or a URL"),
           "hosted": ("hosted_models", "hosted_model", "Hosted model APIs",
                      "a provider's model called through its API"),
           "tracking": ("tracking", "model_registry", "Experiment tracking and model registry",
                        "runs and models logged to or loaded from a tracking server"),
           "store": ("vector_store", "retrieval_index", "Vector store or document index",
                     "documents and embeddings kept for retrieval"),
           "tool": ("agent_tools", "agent_tool", "Agent tools",
                    "tools a model can call (functions, MCP servers, search)"),
           "prompt": ("system_prompt", "system_prompt", "System prompts",
                      "instructions given to the model with every request"),
           "memory": ("memory", "memory", "Conversation memory",
                      "conversations or memories kept across turns"),
           "endpoint": ("endpoint", "serving", "Managed model endpoint",
                        "a model deployed to a cloud platform's endpoint; the platform "
                        "authenticates every call (IAM), so its callers are guessed to be your "
                        "own applications"),
           "registry": ("platform_registry", "model_registry", "Platform model registry",
                        "models uploaded to a cloud platform's registry"),
           "monitor": ("model_monitoring", "monitoring", "Managed model monitoring",
                       "a cloud platform's monitoring job watching a deployed model"),
           "warehouse": ("data_stores", "data_store", "Databases and warehouses",
                         "databases, queues and warehouses the code connects to"),
           "transform": ("transform", "preprocessing", "Feature transformation",
                         "a pipeline step that transforms the training data"),
           "evaluator": ("model_evaluation", "validation", "Model evaluation",
                         "a pipeline step that evaluates the trained model")}


def _outside(draft: Draft) -> None:
    """Components for what the code fetches from outside the repository or hands to a model
    (hosted models, indexes, tools, system prompts, memory), with flows to and from the component
    whose code does it, also through the helper modules it imports (for tracking: from the
    training that logs to it and to the serving that loads from it)."""
    seen: dict[str, list[tuple[str, str, int]]] = {}
    for rel in draft.code_files:
        text = draft.text(rel)
        starts: list[int] | None = None
        for (kind, pattern, label), needles in zip(OUTSIDE, NEEDLES, strict=True):
            if not any(n in text for n in needles):
                continue            # a substring test first: most files have none of them
            for m in pattern.finditer(text):
                if starts is None:      # line starts, once per file that has a hit
                    starts = [0] + [n.end() for n in re.finditer("\n", text)]
                if "(" in m.group(0) and _in_string(draft.strings(rel), m.start()):
                    continue            # "try load_dataset('x')" in a message is not a call
                # (a command or a table name in a string is what the code runs or reads)
                line = bisect.bisect_right(starts, m.start())
                seen.setdefault(kind, []).append(
                    (label.format(*m.groups()) if m.groups() else label, rel, line))
    for kind, hits in seen.items():
        cid, ckind, name, what = SOURCES[kind]
        places = [f"{label} ({rel}:{line})" for label, rel, line in hits][:MAX_SIGNALS]
        draft.add(cid, ckind, name, f"{what}: " + "; ".join(places)
                  + (f"; {len(hits) - len(places)} more" if len(hits) > len(places) else ""))
        if kind == "data" and any(_public_data(label) for label, _, _ in hits):
            _public(draft, cid)
        if kind == "endpoint":
            draft.components[cid].update(exposure="internal", controls=["authentication"])
    users = _Users(draft)
    for kind, hits in seen.items():
        cid = SOURCES[kind][0]
        for label, rel, line in hits:
            # a platform step is linked to the steps it serves even where no component's code
            # holds the file (a deployment script, a notebook of the pipeline's own)
            targets: list[str | None] = list(users.of(rel))
            for target in targets or ([None] if kind in PLATFORM_STEPS else []):
                _outside_flows(draft, kind, cid, target, label, f"{rel}:{line}")


# load_dataset's own builders read local files: "csv", "json", ... are not a published data set
HF_BUILDERS = frozenset({"csv", "json", "parquet", "text", "arrow", "pandas", "imagefolder",
                         "audiofolder", "videofolder", "webdataset", "generator", "sql", "xml"})


def _public_data(label: str) -> bool:
    """Whether a data source's label names a published data set or a public URL (anyone who
    controls that publication can change what training reads)."""
    if label.endswith(" (Hugging Face datasets)"):
        return label.split(" ", 1)[0].lower() not in HF_BUILDERS
    return label.startswith(("scikit-learn ", "Keras data set ", "torchvision ",
                             "TensorFlow Datasets ", "Kaggle download", "BigQuery public data set ",
                             "http://", "https://"))


def _public(draft: Draft, cid: str) -> None:
    """Mark a data source public: what it reads is published where others can change it."""
    comp = draft.components[cid]
    if comp.get("exposure") != "public":
        comp["exposure"] = "public"
        draft.note(cid, "exposure guessed public: a published data set or a public URL, which "
                        "whoever publishes or hosts it can change")


# what a platform step is linked to when the draft has it (else the component whose code holds
# the call), what the flow says, and whether the step feeds that component or follows it
PLATFORM_STEPS = {"endpoint": ("platform_registry", "model deployed", False),
                  "registry": (None, "model uploaded", False),
                  "monitor": ("endpoint", "predictions watched", False),
                  "evaluator": ("training", "model evaluated", False),
                  "transform": ("training", "transformed data", True)}


def _outside_flows(draft: Draft, kind: str, cid: str, target: str | None, label: str,
                   where: str) -> None:
    if kind in PLATFORM_STEPS:
        linked, what, feeds = PLATFORM_STEPS[kind]
        other = linked if linked in draft.components else target
        if other:
            a, b = (cid, other) if feeds else (other, cid)
            draft.flow(a, b, f"{what} ({label}, {where})")
        return
    assert target is not None
    if kind == "tracking":
        if draft.components[target]["kind"] == "serving":
            draft.flow(cid, target, f"model loaded from the registry ({where})")
        else:
            draft.flow(target, cid, f"runs and models logged ({where})")
    elif kind in ("hosted", "tool", "memory"):
        ask, answer = {"hosted": ("requests to the model", "model output"),
                       "tool": ("tool calls", "tool results"),
                       "memory": ("turns kept", "remembered turns")}[kind]
        draft.flow(target, cid, f"{ask} ({label}, {where})")
        draft.flow(cid, target, f"{answer} ({label}, {where})")
    elif kind == "prompt":
        to = "hosted_models" if "hosted_models" in draft.components else target
        draft.flow(cid, to, f"system prompt ({where})")

    else:
        draft.flow(cid, target, f"{label} (read in {where})")


IMPORTS = re.compile(r"^[ \t]*(?:from[ \t]+([.\w]+)[ \t]+import[ \t]+(\([^)]*\)|[^\n#]+)|"
                     r"import[ \t]+([\w., \t]+))", re.M)
IMPORT_DEPTH = 3     # helper modules followed this many imports away from a component's code


class _Users:
    """The components whose code uses a file: its owner, or the owners of the code that imports
    it (directly or through up to IMPORT_DEPTH helper modules, resolved by module name)."""

    def __init__(self, draft: Draft) -> None:
        self.draft = draft
        self._importers: dict[str, set[str]] | None = None

    def _graph(self) -> dict[str, set[str]]:
        files = [r for r in self.draft.code_files if r.endswith(".py")]
        by_name: dict[str, list[str]] = {}
        for rel in files:
            parts = Path(rel).with_suffix("").parts
            parts = parts[:-1] if parts[-1] == "__init__" else parts
            for i in range(len(parts)):
                by_name.setdefault(".".join(parts[i:]), []).append(rel)
        importers: dict[str, set[str]] = {}
        for rel in files:
            package = Path(rel).parent.parts
            for mod in _imported(self.draft.text(rel), package):
                for target in by_name.get(mod, ()):
                    if target != rel:
                        importers.setdefault(target, set()).add(rel)
        return importers

    def of(self, rel: str) -> list[str]:
        if rel in self.draft.owner:
            return [self.draft.owner[rel]]
        if self._importers is None:
            self._importers = self._graph()
        found: list[str] = []
        level, seen = [rel], {rel}
        for _ in range(IMPORT_DEPTH):
            level = sorted({i for r in level for i in self._importers.get(r, ())} - seen)
            seen.update(level)
            for r in level:
                owner = self.draft.owner.get(r)
                if owner and owner not in found:
                    found.append(owner)
            if found or not level:
                break
        return found


def _imported(text: str, package: tuple[str, ...]) -> list[str]:
    """Dotted module names a file imports (relative imports resolved against its package)."""
    out = []
    for m in IMPORTS.finditer(text):
        if m.group(3):
            out += [x.strip().split(" as ")[0].strip() for x in m.group(3).split(",")]
            continue
        base = m.group(1)
        if base.startswith("."):
            dots = len(base) - len(base.lstrip("."))
            up = package[:len(package) - (dots - 1)] if dots - 1 <= len(package) else ()
            base = ".".join([*up, *([base.lstrip(".")] if base.lstrip(".") else [])])
        names = [x.strip().split(" as ")[0].strip() for x in m.group(2).strip().strip("()").split(",")]
        out += ([base] if base else []) + [f"{base}.{n}" if base else n for n in names if n]
    return [o for o in out if o]


def _dvc_imports(draft: Draft, root: Path, files: list[Path]) -> None:
    """`dvc import` and `dvc import-url` outputs (.dvc files whose deps name a repository or a
    URL): data from outside, flowing to the stages that depend on it."""
    for path in files:
        if path.suffix != ".dvc":
            continue
        try:
            meta = yaml.safe_load(_text(path)) or {}
        except yaml.YAMLError:
            continue
        deps = meta.get("deps") if isinstance(meta, dict) else None
        for dep in deps if isinstance(deps, list) else []:
            if not isinstance(dep, dict):
                continue
            repo = dep.get("repo", {}).get("url") if isinstance(dep.get("repo"), dict) else None
            origin = repo or (dep.get("path") if "://" in str(dep.get("path", "")) else None)
            if not origin:
                continue
            rel = os.path.relpath(path, root)
            draft.add("external_data", "data_source", "External data",
                      f"data imported by DVC: {origin} ({rel})")
            if not repo and _public_data(str(origin)):   # a repository may be private
                _public(draft, "external_data")
            outs = [o.get("path") for o in meta.get("outs", []) if isinstance(o, dict)]
            for out in outs:
                target = (Path(rel).parent / str(out)).as_posix()
                for cid, comp in draft.components.items():
                    if comp.get("_stage") and any(d == target or d.startswith(target + "/")
                                                  for d in comp.get("artifacts", {}).get(
                                                      "data", [])):
                        draft.flow("external_data", cid, f"{target} (dvc import from {origin})")


def _controls(draft: Draft, files: list[Path]) -> None:
    """Controls the code shows: on serving, an authentication dependency, a rate limiter, safe
    model loading; on the repository, a lock file."""
    for cid, comp in draft.components.items():
        if comp["kind"] not in ("serving", "training"):
            continue
        found: dict[str, str] = {}
        for rel in comp.get("artifacts", {}).get("code", []):
            text = draft.text(rel)
            for control, pattern, what in CONTROL_HINTS:
                if control != "safe_serialization" and comp["kind"] != "serving":
                    continue            # authentication and rate limits guard an API
                m = pattern.search(text)
                if m and control not in found:
                    found[control] = f"{control} ({what}: {m.group(0)} in {rel}:" \
                                     f"{text.count(chr(10), 0, m.start()) + 1})"
        if found:
            comp["controls"] = sorted(found)
            draft.note(cid, "controls read from the code: " + "; ".join(found.values()))
    locks = sorted(os.path.relpath(p, draft.root) for p in files if p.name in LOCK_FILES)
    if locks:
        draft.components["repo"]["controls"] = ["dependency_pinning"]
        draft.note("repo", f"controls read from the repository: dependency_pinning (lock file "
                           f"{', '.join(locks[:3])})")


def _connect(draft: Draft) -> None:
    """Flows shown by code or configuration, each saying where: a script that names a data or
    model file, a workflow that runs a script; the repository holds every component's code."""
    c = draft.components
    code_of = {cid: comp.get("artifacts", {}).get("code", []) for cid, comp in c.items()}
    users = [k for k, v in c.items() if v["kind"] in
             ("preprocessing", "training", "validation", "serving", "monitoring")]

    def named(cid: str, name: str) -> str | None:
        """The first code file of `cid` that names `name`."""
        return next((rel for rel in code_of[cid] if name and re.search(
            rf"(?<![\w.-]){re.escape(name)}(?![\w-])", draft.text(rel))), None)
    for source in ("datasets",):
        for data in c.get(source, {}).get("artifacts", {}).get("data", []):
            for target in users:
                rel = named(target, Path(data).name)
                if rel:
                    draft.flow(source, target, f"{Path(data).name} (read in {rel})")
    stores = [k for k, v in c.items() if v["kind"] == "model_registry" and k != "tracking"]
    for store in stores:
        for model in c[store].get("artifacts", {}).get("model", []):
            name = Path(model).name
            for target in users:
                rel = named(target, name)
                if not rel:
                    continue
                if c[target]["kind"] == "training" and re.search(
                        r"\b(dump|save|save_model|log_model|to_pickle|export)\b", draft.text(rel)):
                    draft.flow(target, store, f"{name} (written in {rel})")
                else:
                    draft.flow(store, target, f"{name} (loaded in {rel})")
    if "ci" in c:
        draft.flow("repo", "ci", "code (the workflows check out the repository)")
        for target in users:
            for rel in code_of[target]:
                runner = named("ci", Path(rel).name)
                if runner:
                    draft.flow("ci", target, f"runs {Path(rel).name} ({runner})")
                    break
    for target in users:
        draft.flow("repo", target, "code")


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
