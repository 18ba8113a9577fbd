"""The workshop board's web application (docs/board.md): a Starlette app over `Assessor`.

Every request must carry the token printed with the URL (`?token=` on pages and assets, the
`X-Board-Token` header on the API) and name this server in its Host header (no DNS rebinding);
what changes state must be JSON from this page's own origin (no cross-site form posts) and at most
`MAX_BODY` bytes. Specs are saved only under the folder the board was started in, whole, after
they pass the same checks as `mlthreat validate`, and never over another file without the user's
yes. The live threat model is `Assessor(scan=False)` on the drawn spec: no file is read for it.
"""

from __future__ import annotations

import hmac
import json
import re
import threading
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from mlthreat.assessor import Assessor
from mlthreat.catalog import Catalog, load_catalog
from mlthreat.errors import Problem, SpecError
from mlthreat.perception.files import read_perception, save_perception
from mlthreat.perception.gaps import GAP_KINDS, with_perceptions
from mlthreat.perception.loader import Mappers, ResolvedPerception, load_perception
from mlthreat.perception.model import Perception, View
from mlthreat.perception.team import team_view
from mlthreat.pipeline.loader import Pipeline, parse_pipeline
from mlthreat.report.common import FAMILY_COLOR, LEVEL_COLOR
from mlthreat.report.layout import STAGE
from mlthreat.results import Assessment
from mlthreat.vocabulary import Asset, Criticality, Exposure, Kind
from mlthreat.web import roundtrip
from mlthreat.yamlio import read_text
from mlthreat.yamlpos import load_located

ORDER = ["critical", "high", "medium", "low", "info"]
MAX_BODY = 2 * 1024 * 1024          # a 1,000-component spec is about 300 kB of JSON
BOARD, SHARED = resources.files("mlthreat.web") / "static", resources.files("mlthreat.report") / "static"
STATIC = {"board.js": BOARD, "board.css": BOARD,       # the diagram renderer is the report's
          "diagram.js": SHARED, "vendor/elk.bundled.js": SHARED}
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


@dataclass
class Board:
    """What one board serves: the folder it may save under and the spec it opened (if any)."""

    root: Path
    spec: Path | None = None
    catalog: Catalog = field(default_factory=load_catalog)
    perceptions: str = "perceptions"     # participants' files, under root
    evidence: list[dict[str, Any]] = field(default_factory=list)   # from an earlier assess
    evidence_file: str | None = None
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)   # file writes

    def __post_init__(self) -> None:
        self.root = self.root.resolve()
        if self.spec is not None:
            self.spec = self.spec.resolve()
            if not self.spec.is_relative_to(self.root):
                raise ValueError(f"{self.spec} is outside {self.root}, the folder the board "
                                 "saves under; start the board in the spec's folder")

    def inside(self, name: str) -> Path:
        """`name` as a path under the root, or ValueError saying why not."""
        if not name or "\x00" in name:
            raise ValueError("name a file, e.g. pipeline.yaml")
        path = (self.root / name).resolve()
        if not path.is_relative_to(self.root):
            raise ValueError(f"{name}: outside the folder the board was started in "
                             f"({self.root}); the board saves only under it")
        if path.suffix not in (".yaml", ".yml"):
            raise ValueError(f"{name}: a spec file ends in .yaml or .yml")
        return path


class Guard:
    """ASGI middleware: token, Host, Origin, content type and size on every request."""

    def __init__(self, app: ASGIApp, token: str, hosts: set[str]) -> None:
        self.app, self.token, self.hosts = app, token, hosts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        refusal = self._refusal(request)
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        if request.method in ("GET", "HEAD"):
            await self.app(scope, receive, _secure(send))
            return
        body, more = b"", True                 # read whole (small) before the app sees it
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > MAX_BODY:
                await _too_large()(scope, receive, send)
                return
        replayed = False

        async def again() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, again, _secure(send))

    def _refusal(self, request: Request) -> Response | None:
        host = request.headers.get("host", "")
        if host not in self.hosts:
            return PlainTextResponse(f"unknown Host {host!r}: open the address `mlthreat board` "
                                     "printed", status_code=421)
        given = request.headers.get("x-board-token") or request.query_params.get("token", "")
        if not hmac.compare_digest(given.encode(), self.token.encode()):
            return PlainTextResponse("the board's token is missing or wrong: open the whole "
                                     "address `mlthreat board` printed", status_code=403)
        if request.method in ("GET", "HEAD"):
            return None
        origin = request.headers.get("origin")
        if origin is not None and origin.split("://", 1)[-1] not in self.hosts:
            return PlainTextResponse(f"requests from {origin} are refused", status_code=403)
        if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
            return PlainTextResponse("send JSON (Content-Type: application/json)",
                                     status_code=415)
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > MAX_BODY):
            return _too_large()
        return None


def _too_large() -> Response:
    return PlainTextResponse(f"request larger than {MAX_BODY // 1024} kB", status_code=413)


HEADERS = [(b"content-security-policy", b"default-src 'self'; img-src 'self' data: blob:; "
            b"frame-ancestors 'none'; base-uri 'none'; form-action 'none'"),
           (b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer"),
           (b"cache-control", b"no-store")]


def _secure(send: Send) -> Send:
    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            message["headers"] = list(message.get("headers", [])) + HEADERS
        await send(message)
    return wrapped


def create_app(board: Board, token: str, hosts: set[str]) -> ASGIApp:
    """The board for `board`, answering only requests with `token` addressed to one of `hosts`
    ("127.0.0.1:8765" ...)."""

    async def page(request: Request) -> Response:
        html = resources.files("mlthreat.web").joinpath("static/board.html").read_text("utf-8")
        return HTMLResponse(html.replace("{{token}}", token))

    async def static(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in STATIC:
            return PlainTextResponse("not found", status_code=404)
        text = STATIC[name].joinpath(name).read_text("utf-8")
        kind = "text/javascript" if name.endswith(".js") else "text/css"
        return Response(text, media_type=kind)

    async def state(request: Request) -> Response:
        return JSONResponse(await run_in_threadpool(initial_state, board))

    async def analyse(request: Request) -> Response:
        body = await _json(request)
        if isinstance(body, Response):
            return body
        return JSONResponse(await run_in_threadpool(analyse_spec, board, body.get("spec")))

    async def save(request: Request) -> Response:
        body = await _json(request)
        if isinstance(body, Response):
            return body
        status, answer = await run_in_threadpool(
            save_spec, board, body.get("spec"), str(body.get("path", "")),
            bool(body.get("overwrite", False)))
        return JSONResponse(answer, status_code=status)

    async def perception(request: Request) -> Response:
        if request.method == "GET":
            status, answer = read_view(board, request.query_params.get("who", ""))
            return JSONResponse(answer, status_code=status)
        body = await _json(request)
        if isinstance(body, Response):
            return body
        status, answer = await run_in_threadpool(save_view, board, body)
        return JSONResponse(answer, status_code=status)

    async def team(request: Request) -> Response:
        body = await _json(request)
        if isinstance(body, Response):
            return body
        status, answer = await run_in_threadpool(team_answer, board, body.get("spec"))
        return JSONResponse(answer, status_code=status)

    async def report(request: Request) -> Response:
        body = await _json(request)
        if isinstance(body, Response):
            return body
        status, answer = await run_in_threadpool(report_text, board, body.get("spec"),
                                                 str(body.get("format", "html")))
        return JSONResponse(answer, status_code=status)

    app = Starlette(routes=[
        Route("/", page), Route("/static/{name:path}", static), Route("/api/state", state),
        Route("/api/analyse", analyse, methods=["POST"]),
        Route("/api/save", save, methods=["POST"]),
        Route("/api/perception", perception, methods=["GET", "POST"]),
        Route("/api/team", team, methods=["POST"]),
        Route("/api/report", report, methods=["POST"]),
    ])
    return Guard(app, token, hosts)


async def _json(request: Request) -> dict[str, Any] | Response:
    try:
        body = json.loads(await request.body())
    except (ValueError, UnicodeDecodeError) as exc:
        return JSONResponse({"error": f"not JSON: {exc}"}, status_code=400)
    if not isinstance(body, dict):
        return JSONResponse({"error": "send a JSON object"}, status_code=400)
    return body


# ------------------------------------------------------------------------------------ the API
def _readable(path: Path) -> bool:
    """Whether the file holds a YAML mapping the save can merge into (comments kept); one
    that does not is replaced only after the user's yes."""
    try:
        return isinstance(roundtrip.load(path.read_text("utf-8")), dict)
    except Exception:                # any reader error: not mergeable
        return False


def initial_state(board: Board) -> dict[str, Any]:
    """The catalog's vocabulary and the spec the board opened (or a new one)."""
    cat = board.catalog
    spec: dict[str, Any] = {"name": "new pipeline", "components": [], "flows": []}
    problem = None
    if board.spec is not None and board.spec.exists():
        try:
            loaded = roundtrip.plain(roundtrip.load(read_text(board.spec)))
            if isinstance(loaded, dict):
                spec = loaded
            else:
                problem = f"{board.spec}: not a mapping of name, components and flows"
        except Exception as exc:    # shown in the board; the user can start anew or fix the file
            problem = f"{board.spec}: {exc}"
        if problem:
            problem += ("; the board starts empty, and saving over the file asks first")
    return {
        "spec": spec, "problem": problem,
        "file": str(board.spec.relative_to(board.root)) if board.spec else None,
        "root": str(board.root),
        "kinds": [k.value for k in Kind], "exposures": [e.value for e in Exposure],
        "stages": {k.value: STAGE[k] for k in Kind},
        "assets": [x.value for x in Asset], "criticality": [x.value for x in Criticality],
        "controls": [{"id": c.id, "name": c.name, "family": c.family.value,
                      "applies_to": [k.value for k in c.applies_to]} for c in cat.controls],
        "mitigations": {t.id: [c.id for c, _ in cat.mitigations(t.id)] for t in cat.threats},
        "perceptions": board.perceptions,
        "evidence": board.evidence, "evidence_file": board.evidence_file,
        "colors": {"family": {f.value: v for f, v in FAMILY_COLOR.items()},
                   "level": {k.value: v for k, v in LEVEL_COLOR.items()}},
    }


def analyse_spec(board: Board, spec: Any) -> dict[str, Any]:
    """Findings per component of the drawn spec, or its problems, each at the part it concerns."""
    start = time.perf_counter()
    if not isinstance(spec, dict):
        return {"problems": [{"message": "no spec sent"}], "findings": []}
    text = yaml.safe_dump(spec, sort_keys=False, allow_unicode=True)
    file = str(board.spec or board.root / "pipeline.yaml")
    try:
        pipeline = parse_pipeline(text, file, board.catalog)
    except SpecError as exc:
        return {"problems": _placed(exc.problems, text), "findings": [],
                "ms": round(1000 * (time.perf_counter() - start), 1)}
    assessment = Assessor(board.catalog, scan=False).assess(pipeline)
    answer = _view(assessment)
    answer["problems"] = _placed(pipeline.warnings, text)
    answer["ms"] = round(1000 * (time.perf_counter() - start), 1)
    return answer


def _placed(problems: list[Problem], text: str) -> list[dict[str, Any]]:
    """Problems with the component (or flow) their line falls in; the dumped text's line numbers
    mean nothing to the user, so they are not shown."""
    located = load_located(text)
    data = located.data if isinstance(located.data, dict) else {}
    starts: list[tuple[int, str, Any]] = []
    for key, what in (("components", "component"), ("flows", "flow")):
        items = data.get(key)
        for i, item in enumerate(items if isinstance(items, list) else []):
            pos = located.position((key, i))
            if pos is not None:
                ref = item.get("id") if what == "component" and isinstance(item, dict) else i
                starts.append((pos[0], what, ref))
    for key in data:                 # a top-level key ends the item before it
        pos = located.key_position((key,))
        if pos is not None and key not in ("components", "flows"):
            starts.append((pos[0], "", None))
    starts.sort(key=lambda s: s[0])
    out = []
    for p in problems:
        at = [s for s in starts if p.line is not None and s[0] <= p.line]
        entry: dict[str, Any] = {"message": p.message, "hint": p.hint}
        if at and at[-1][1]:
            entry[at[-1][1]] = at[-1][2]
        out.append(entry)
    return out


def _view(a: Assessment) -> dict[str, Any]:
    findings = [{"id": f.id, "threat": f.threat_id, "name": f.name, "family": f.family.value,
                 "level": f.level.value, "score": round(f.score, 2), "component": f.component,
                 "entry": f.entry, "path": list(f.path), "harm_at": f.harm_at,
                 "asset": f.asset, "goal": f.goal,
                 "missing": [c.control for c in f.controls_missing][:5],
                 "recommendation": f.recommendation} for f in a.findings]
    lead = [[g for g in threat] for threat in a.lead.threats]
    groups = {g.id: {"name": g.name, "family": g.family.value, "level": g.level.value,
                     "harm_at": g.harm_at, "findings": list(g.findings)} for g in a.groups}
    return {
        "findings": findings,
        "lead": [groups[ids[0]] | {"groups": ids} for ids in lead if ids and ids[0] in groups],
        "recommendations": [{"control": r.control, "name": r.name, "family": r.family,
                             "where": list(r.where), "findings": r.findings,
                             "reduction": round(r.risk_reduction, 2)}
                            for r in a.recommendations[:8]],
        "assets": [{"asset": g.asset, "goal": g.goal, "level": g.max_level.value,
                    "aml": len(g.aml), "classical": len(g.classical), "summary": g.summary}
                   for g in a.asset_groups],
        "integrity": [{"path": list(p.path), "verdict": p.verdict, "explanation": p.explanation}
                      for p in a.integrity_paths if p.verdict != "guarded"][:10],
    }


def save_spec(board: Board, spec: Any, name: str, overwrite: bool) -> tuple[int, dict[str, Any]]:
    """Write the drawn spec to `name` under the root, keeping the old file's comments (one
    read-merge-write at a time)."""
    with board.lock:
        return _save_spec(board, spec, name, overwrite)


def _save_spec(board: Board, spec: Any, name: str, overwrite: bool) -> tuple[int, dict[str, Any]]:
    if not isinstance(spec, dict):
        return 400, {"error": "no spec sent"}
    try:
        path = board.inside(name)
    except ValueError as exc:
        return 400, {"error": str(exc)}
    is_open = path == board.spec and _readable(path)
    if path.exists() and not (is_open or overwrite):
        why = "exists" if path != board.spec else "cannot be read as a YAML mapping"
        return 409, {"error": f"{name} {why}; replace it?", "exists": True}
    if not path.parent.is_dir():
        return 400, {"error": f"{path.parent} is not a folder"}
    original = path.read_text("utf-8") if path.exists() and _readable(path) else None
    try:
        text = roundtrip.updated_text(original, spec)
    except Exception as exc:      # ruamel cannot read the old file: keep it, say so
        return 400, {"error": f"{name}: cannot merge into the file's text ({exc}); save under "
                              "another name"}
    try:
        parse_pipeline(text, str(path), board.catalog)
    except SpecError as exc:
        return 422, {"error": "not saved: the spec has problems",
                     "problems": _placed(exc.problems, text)}
    roundtrip.write_whole(path, text)
    board.spec = path
    return 200, {"saved": str(path.relative_to(board.root)), "bytes": len(text)}


# ------------------------------------------------------------------------- workshop mode
def _slug(name: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", name.strip().lower()).strip("-")
    if not slug:
        raise ValueError("give your name (letters or digits) to keep your answers")
    return slug[:60]


def perception_path(board: Board, who: str) -> Path:
    return board.inside(f"{board.perceptions}/{_slug(who)}.yaml")


def read_view(board: Board, who: str) -> tuple[int, dict[str, Any]]:
    """A participant's perception so far (views per component), or an empty one."""
    try:
        path = perception_path(board, who)
    except ValueError as exc:
        return 400, {"error": str(exc)}
    if not path.exists():
        return 200, {"respondent": who, "views": [], "file": str(path.relative_to(board.root))}
    try:
        p = read_perception(path)
    except SpecError as exc:
        return 422, {"error": str(exc)}
    return 200, p.model_dump(mode="json", exclude_none=True) | {
        "file": str(path.relative_to(board.root))}


def save_view(board: Board, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """One participant's view of one component, written into their perception file (the
    format `mlthreat elicit` writes; docs/perception.md), one read-merge-write at a time."""
    with board.lock:
        return _save_view(board, body)


def _save_view(board: Board, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    who = str(body.get("respondent", "")).strip()
    try:
        path = perception_path(board, who)
        view = View.model_validate(body.get("view"))
    except ValueError as exc:        # pydantic's ValidationError is a ValueError
        return 400, {"error": str(exc)}
    try:
        old = read_perception(path) if path.exists() else None
    except SpecError as exc:
        return 422, {"error": f"{exc} (the file was not changed; fix or move it)"}
    if old is not None and old.respondent != who:
        return 409, {"error": f"{path.relative_to(board.root)} belongs to {old.respondent!r}; "
                              "choose another name"}
    views = [v for v in (old.views if old else []) if v.component != view.component]
    keep = {k: body.get(k) or (getattr(old, k) if old else None) for k in ("role", "team")}
    spec_name = str(body.get("pipeline") or "") or (old.pipeline if old else None)
    components = body.get("components")
    done = {v.component for v in views} | {view.component}
    complete = isinstance(components, list) and set(map(str, components)) <= done
    p = Perception(respondent=who, pipeline=spec_name, complete=complete,
                   views=[*views, view], **keep)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_perception(p, path)
    return 200, {"saved": str(path.relative_to(board.root)), "components": len(p.views)}


def _drawn(board: Board, spec: Any, purpose: str
           ) -> tuple[Pipeline | None, tuple[int, dict[str, Any]]]:
    """The drawn spec as a Pipeline, or the answer that says why not."""
    if not isinstance(spec, dict):
        return None, (400, {"error": "no spec sent"})
    text = yaml.safe_dump(spec, sort_keys=False, allow_unicode=True)
    try:
        return parse_pipeline(text, str(board.spec or board.root / "pipeline.yaml"),
                              board.catalog), (200, {})
    except SpecError:
        return None, (422, {"error": f"the drawn spec has problems; fix them {purpose}"})


def team_answer(board: Board, spec: Any) -> tuple[int, dict[str, Any]]:
    """The team view of every perception file in the workshop folder, against the drawn spec:
    agreement (Cohen per pair, Fleiss, Krippendorff), disagreements, each person's gaps."""
    pipeline, refusal = _drawn(board, spec, "to see the team view")
    if pipeline is None:
        return refusal
    assessment = Assessor(board.catalog, scan=False).assess(pipeline)
    people, skipped = _people(board, pipeline)
    answer: dict[str, Any] = {"respondents": [p.respondent for p in people],
                              "skipped": skipped}
    if people:
        gaps = with_perceptions(assessment, pipeline, board.catalog,
                                [p.file for p in people]).perception
        answer["gaps"] = [{"respondent": r.respondent, "answered": len(r.components_answered),
                           "of": len(pipeline.spec.components),
                           "counts": {k: r.count(k) for k in GAP_KINDS if r.count(k)},
                           "top": [g.explanation for g in sorted(
                               r.gaps, key=lambda g: ORDER.index(g.level))[:3]]}
                          for r in gaps]
        view = team_view(people, assessment, board.catalog, top=10)
        linked = sorted(((view.cooccurrence[i][j], x, y)
                         for i, x in enumerate(view.aml_concepts)
                         for j, y in enumerate(view.classical_concepts)
                         if view.cooccurrence[i][j]), key=lambda t: -t[0])[:8]
        answer["linked"] = [{"aml": board.catalog.threat(x).name, "people": n,
                             "classical": board.catalog.threat(y).name} for n, x, y in linked]
        if len(people) >= 2:
            answer |= {
                "pairs": [{"a": x.a, "b": x.b, "kappa": x.kappa, "items": x.items}
                          for x in view.pairs],
                "fleiss": view.fleiss_kappa, "fleiss_items": view.fleiss_items,
                "alpha": view.krippendorff_alpha,
                "disagreements": [{"component": d.component, "threat": d.threat,
                                   "yes": list(d.yes), "no": list(d.no), "level": d.level}
                                  for d in view.disagreements],
            }
    return 200, answer


def read_evidence(path: Path) -> list[dict[str, Any]]:
    """The evidence of an earlier `mlthreat assess` (its JSON report), per component, or
    ValueError saying what is wrong with the file."""
    if not path.is_file():
        raise ValueError(f"{path}: no such file; give the JSON report of an earlier `mlthreat "
                         "assess SPEC -f json -o FILE`")
    try:
        data = json.loads(read_text(path, "JSON report"))
    except SpecError as exc:
        raise ValueError(str(exc)) from exc
    except ValueError as exc:
        raise ValueError(f"{path}: not JSON ({exc}); give the JSON report of `mlthreat assess "
                         "... -f json`") from exc
    if not isinstance(data, dict) or "schema_version" not in data or not isinstance(
            data.get("evidence"), list):
        raise ValueError(f"{path}: not an mlthreat JSON report (no schema_version and evidence); "
                         "write one with `mlthreat assess SPEC -f json -o FILE`")
    keep = ("id", "source", "component", "title", "summary", "confirmed", "clears",
            "threat_ids", "artifact", "severity")
    return [{k: e.get(k) for k in keep} for e in data["evidence"]
            if isinstance(e, dict) and e.get("component")]


REPORTS = {"html": "threat-model.html", "md": "threat-model.md", "json": "threat-model.json",
           "sarif": "threat-model.sarif", "team": "team-view.html"}


def _people(board: Board, pipeline: Pipeline) -> tuple[list[ResolvedPerception], list[str]]:
    """The workshop's perception files that fit the drawn spec, and why the others do not."""
    folder = board.root / board.perceptions
    files = sorted(folder.glob("*.yaml")) if folder.is_dir() else []
    mappers = Mappers.for_catalog(board.catalog)
    people, skipped = [], []
    for f in files:
        try:
            people.append(load_perception(f, pipeline, board.catalog, mappers))
        except SpecError as exc:     # a file about components no longer drawn, say
            skipped.append(f"{f.relative_to(board.root)}: {exc.problems[0].message}")
    return people, skipped


def report_text(board: Board, spec: Any, fmt: str) -> tuple[int, dict[str, Any]]:
    """A report of the drawn spec with the workshop's perceptions, in one of mlthreat's formats
    (`mlthreat model ... --perception ...`), or the team view; the browser saves it."""
    from mlthreat.report import FORMATS
    from mlthreat.report.research import render_team
    if fmt not in REPORTS:
        return 400, {"error": f"format {fmt!r}: one of {', '.join(REPORTS)}"}
    pipeline, refusal = _drawn(board, spec, "to export a report")
    if pipeline is None:
        return refusal
    people, skipped = _people(board, pipeline)
    if fmt == "team":
        if len(people) < 2:
            return 422, {"error": "a team view needs the answers of two participants or more"}
        view = team_view(people, Assessor(board.catalog, scan=False).assess(pipeline),
                         board.catalog)
        return 200, {"text": render_team(view, "html"), "name": REPORTS[fmt],
                     "skipped": skipped}
    assessment = Assessor(board.catalog, scan=False).assess(pipeline, [p.file for p in people])
    return 200, {"text": FORMATS[fmt].render(assessment), "name": REPORTS[fmt],
                 "skipped": skipped}
