// mlthreat board: draw the pipeline, see both families of threats as you draw (docs/board.md).
// Plain browser JavaScript, no build step and nothing fetched from outside this server.
"use strict";

const TOKEN = document.querySelector('meta[name="board-token"]').content;
const SVGNS = "http://www.w3.org/2000/svg";
const D = window.MlthreatDiagram;        // the renderer shared with the HTML report
const W = D.W, H = D.H, GRID = W + 56, ROW = H + 28;
const $ = (id) => document.getElementById(id);

let V = null;            // vocabulary from the server: kinds, exposures, controls, colours
let spec = null;         // the spec as plain data, exactly what is saved
let pos = {};            // component id -> [x, y]; drawing only, not saved
let selected = null;     // {type: "component", id} or {type: "flow", index}
let result = null;       // the last analysis
let past = [], future = [];
let asked = 0, shown = 0, timer = null;
let me = null;           // workshop mode: this participant's perception {respondent, views}
let teamTimer = null;
const LISTED = 60;       // findings listed before "show all": a long list slows every redraw
let showAll = false;
let routes = {};         // "from>to" -> {points, a, b}: ELK's route while neither end has moved
let scale = 1;           // zoom: drawing units per screen pixel
let arranging = 0;        // layouts started; the last one to finish says so
let placedByHand = false; // a component was moved: no automatic layout until Arrange
let shape = "";           // the components and flows last laid out

async function api(path, body) {
  const init = body === undefined ? {headers: {"X-Board-Token": TOKEN}}
    : {method: "POST", headers: {"X-Board-Token": TOKEN, "Content-Type": "application/json"},
       body: JSON.stringify(body)};
  const r = await fetch(path, init);
  let data;
  try { data = await r.json(); } catch (e) { data = {error: await r.text()}; }
  return {status: r.status, data};
}

function status(text, error) {
  const s = $("status");
  s.textContent = text;
  s.className = error ? "error" : "";
}

function el(tag, attrs, parent, text) {
  const e = document.createElementNS(SVGNS, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  if (parent) parent.appendChild(e);
  return e;
}

function html(tag, attrs, parent, text) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "checked" || k === "value") e[k] = v; else e.setAttribute(k, v);
  }
  if (text !== undefined) e.textContent = text;
  if (parent) parent.appendChild(e);
  return e;
}

const comps = () => spec.components || (spec.components = []);
const flows = () => spec.flows || (spec.flows = []);
const comp = (id) => comps().find((c) => c.id === id);

// ------------------------------------------------------------------------------- editing
let editStart = null;     // when the last edit began (performance.now), for its latency

function edit(change, what) {
  editStart = performance.now();
  past.push(JSON.stringify({spec, selected}));
  if (past.length > 200) past.shift();
  future = [];
  change();
  changed(what);
}

function changed(what) {
  $("undo").disabled = past.length === 0;
  $("redo").disabled = future.length === 0;
  render();
  if (what) status(what);
  schedule();
  // a component or flow added or removed: laid out again, unless someone placed things by hand
  const now = JSON.stringify([comps().map((c) => [c.id, c.kind]), flows().map((f) => [f.from, f.to])]);
  if (now !== shape && !placedByHand) arrange();
}

function undo() {
  if (!past.length) return;
  future.push(JSON.stringify({spec, selected}));
  ({spec, selected} = JSON.parse(past.pop()));
  changed("undone");
}

function redo() {
  if (!future.length) return;
  past.push(JSON.stringify({spec, selected}));
  ({spec, selected} = JSON.parse(future.pop()));
  changed("redone");
}

function freeId(kind) {
  let n = 1;
  while (comp(`${kind}_${n}`)) n++;
  return `${kind}_${n}`;
}

function freeSpot() {
  const taken = new Set(Object.values(pos).map(([x, y]) => `${Math.round(x)},${Math.round(y)}`));
  const cols = Math.max(2, Math.floor(($("canvas-wrap").clientWidth / scale - 24) / GRID));
  for (let row = 0; ; row++) {
    for (let col = 0; col < cols; col++) {
      const spot = [24 + col * GRID, 24 + row * ROW];
      if (!taken.has(`${spot[0]},${spot[1]}`) && !Object.values(pos).some(
        ([x, y]) => Math.abs(x - spot[0]) < W + 10 && Math.abs(y - spot[1]) < H + 10)) return spot;
    }
  }
}

function addComponent(kind) {
  const id = freeId(kind);
  pos[id] = freeSpot();
  edit(() => { comps().push({id, kind}); selected = {type: "component", id}; }, `added ${id}`);
  focusNode(id);
}

function addFlow(from, to) {
  if (from === to) return;
  if (flows().some((f) => f.from === from && f.to === to)) {
    status(`a flow from ${from} to ${to} is already drawn`, true);
    return;
  }
  edit(() => { flows().push({from, to}); selected = {type: "flow", index: flows().length - 1}; },
       `flow ${from} → ${to}`);
}

function removeSelected() {
  if (!selected) return;
  if (selected.type === "component") {
    const id = selected.id;
    edit(() => {
      spec.components = comps().filter((c) => c.id !== id);
      spec.flows = flows().filter((f) => f.from !== id && f.to !== id);
      selected = null;
    }, `removed ${id} and its flows`);
  } else {
    const f = flows()[selected.index];
    edit(() => { flows().splice(selected.index, 1); selected = null; },
         `removed the flow ${f.from} → ${f.to}`);
  }
}

function rename(oldId, newId) {
  if (!newId || newId === oldId) return;
  if (!/^[A-Za-z][A-Za-z0-9_.-]*$/.test(newId)) {
    status(`${newId}: an id is a letter, then letters, digits, '_', '-' or '.'`, true);
    panelKey = null;
    render();
    return;
  }
  if (comp(newId)) { status(`${newId} is taken`, true); panelKey = null; render(); return; }
  pos[newId] = pos[oldId];
  edit(() => {
    comp(oldId).id = newId;
    for (const f of flows()) { if (f.from === oldId) f.from = newId; if (f.to === oldId) f.to = newId; }
    selected = {type: "component", id: newId};
  }, `renamed ${oldId} to ${newId}`);
}

function setField(id, key, value) {
  edit(() => {
    const c = comp(id);
    if (value === "" || value === false || value === null ||
        (Array.isArray(value) && value.length === 0)) delete c[key];
    else c[key] = value;
  }, `${id}: ${key} changed`);
}

// ------------------------------------------------------------------------------- drawing
function findingsAt(id) {
  return result ? result.findings.filter((f) => f.component === id) : [];
}

function problemsAt(type, ref) {
  return result ? (result.problems || []).filter((p) => p[type] === ref) : [];
}

const ORDER = ["info", "low", "medium", "high", "critical"];
const worst = (fs) => fs.reduce((w, f) => ORDER.indexOf(f.level) > ORDER.indexOf(w) ? f.level : w, "info");

function graphNode(c) {
  const fs = findingsAt(c.id);
  const aml = fs.filter((f) => f.family === "aml"), cls = fs.filter((f) => f.family === "classical");
  const ev = (V.evidence || []).filter((e) => e.component === c.id);
  return {id: c.id, label: c.name || c.id, sub: String(c.kind).replaceAll("_", " "),
          evidence: ev.length, confirmed: ev.filter((e) => e.confirmed).length,
          public: c.exposure === "public" || c.exposure === "partner",
          aml: aml.length, classical: cls.length, amlWorst: worst(aml), classicalWorst: worst(cls)};
}

function same(p, q) { return p && q && Math.abs(p[0] - q[0]) < 0.5 && Math.abs(p[1] - q[1]) < 0.5; }

function render() {
  const active = document.activeElement;
  const focused = active && active.classList && active.classList.contains("node") ? active.dataset.id : null;
  const nodes = $("nodes"), edges = $("edges");
  nodes.replaceChildren();
  edges.replaceChildren();
  for (const c of comps()) if (!pos[c.id]) pos[c.id] = freeSpot();
  let maxX = 600, maxY = 400;
  flows().forEach((f, i) => {
    if (!pos[f.from] || !pos[f.to]) return;
    const r = routes[`${f.from}>${f.to}`];
    const d = r && same(r.a, pos[f.from]) && same(r.b, pos[f.to]) ? D.path(r.points)
      : D.curve(pos[f.from], pos[f.to]);
    if (r) for (const [x, y] of r.points) { maxX = Math.max(maxX, x + 40); maxY = Math.max(maxY, y + 40); }
    const g = D.edge(edges, {source: f.from, target: f.to, back: !!(r && r.back)}, d);
    g.dataset.index = i;
    if (selected && selected.type === "flow" && selected.index === i) g.classList.add("selected");
    if (problemsAt("flow", i).length) g.classList.add("problem");
    const hit = el("path", {class: "hit", d}, g);
    el("title", {}, hit, `${f.from} → ${f.to}${f.data ? ": " + f.data : ""}`);
    hit.addEventListener("mousedown", (e) => { e.stopPropagation(); selected = {type: "flow", index: i}; render(); });
  });
  for (const c of comps()) {
    const [x, y] = pos[c.id];
    maxX = Math.max(maxX, x + W + 60);
    maxY = Math.max(maxY, y + H + 80);
    const n = graphNode(c);
    const g = D.node(nodes, n, pos[c.id], V.colors);
    g.setAttribute("tabindex", "0");
    g.setAttribute("role", "button");
    // its name is its content: the name, the kind and the badges' counts with their titles
    // (an aria-label would hide what is shown: axe's label-content-name-mismatch)
    if (selected && selected.type === "component" && selected.id === c.id) g.classList.add("selected");
    if (problemsAt("component", c.id).length) g.classList.add("problem");
    if (me && me.views.some((v) => v.component === c.id)) {
      g.classList.add("answered");
      el("text", {x: W - 16, y: 16, class: "tick", "aria-hidden": "true"}, g, "✓");
    }
    el("circle", {class: "handle", cx: W, cy: H / 2, r: 6, "aria-hidden": "true"}, g);
    const handle = g.lastChild;      // dragging draws a flow (the palette's help says so)
    g.addEventListener("mousedown", (e) => startMove(e, c.id));
    handle.addEventListener("mousedown", (e) => startFlow(e, c.id));
    g.addEventListener("focus", () => { if (!selected || selected.id !== c.id) { selected = {type: "component", id: c.id}; renderPanel(); mark(); } });
  }
  const svg = $("canvas");
  svg.setAttribute("viewBox", `0 0 ${maxX} ${maxY}`);
  svg.setAttribute("width", Math.round(maxX * scale));
  svg.setAttribute("height", Math.round(maxY * scale));
  $("pipeline-name").value = spec.name || "";
  renderPanel();
  renderResults();
  if (focused) focusNode(focused);          // the keyboard stays where it was
}

async function arrange() {
  // ELK's layered layout of the whole drawing; routes hold until a component moves
  shape = JSON.stringify([comps().map((c) => [c.id, c.kind]), flows().map((f) => [f.from, f.to])]);
  placedByHand = false;
  if (!comps().length) return;
  const mine = ++arranging;
  document.body.dataset.laidOut = "0";       // tests wait for "1": the components stay put
  try {
    const order = comps().map((c, i) => [V.stages[c.kind] ?? 5, i, c.id]).sort((p, q) => p[0] - q[0] || p[1] - q[1]);
    const geo = await D.layout({nodes: order.map(([, , id]) => ({id})),
                                edges: flows().map((f) => ({source: f.from, target: f.to}))});
    pos = geo.nodes;
    const room = $("canvas-wrap").clientWidth - 8;
    if (geo.width * scale > room) {          // keep the whole pipeline in view, still legible
      scale = Math.max(0.5, room / geo.width);
      $("zoom-level").textContent = `${Math.round(scale * 100)} %`;
    }
    routes = {};
    for (const e of geo.edges) if (e.points) routes[`${e.source}>${e.target}`] = {points: e.points, back: e.back, a: pos[e.source], b: pos[e.target]};
  } catch (err) {
    status(`layout failed (${err}); components keep their places`, true);
  }
  render();
  if (mine === arranging) document.body.dataset.laidOut = "1";
}

function zoom(how) {
  const wrap = $("canvas-wrap"), svg = $("canvas");
  const [, , w, h] = (svg.getAttribute("viewBox") || "0 0 600 400").split(" ").map(Number);
  if (how === "fit") scale = Math.min(1, (wrap.clientWidth - 8) / w, Math.max(0.25, (wrap.clientHeight - 8) / h));
  else scale = Math.min(2, Math.max(0.25, scale * (how === "in" ? 1.25 : 0.8)));
  $("zoom-level").textContent = `${Math.round(scale * 100)} %`;
  render();
}

async function exportReport() {
  // the drawn spec's report with the workshop's perceptions (mlthreat model --perception ...)
  const fmt = $("report-format").value;
  const {status: code, data} = await api("/api/report", {spec, format: fmt});
  if (code !== 200) { status(data.error || `no report (${code})`, true); return; }
  const kinds = {html: "text/html", md: "text/markdown", json: "application/json",
                 sarif: "application/json", team: "text/html"};
  D.download(new Blob([data.text], {type: kinds[fmt]}), data.name);
  status(`exported ${data.name}` + (data.skipped.length ? `; left out: ${data.skipped.join("; ")}` : ""));
}

async function exportAs(kind) {
  const name = (spec.name || "pipeline").replace(/[^A-Za-z0-9_.-]+/g, "-");
  const svg = $("canvas");
  const blob = kind === "svg" ? D.svgBlob(svg) : await D.pngBlob(svg, 2);
  D.download(blob, `${name}.${kind}`);
  status(`exported ${name}.${kind}`);
}

function mark() {
  document.querySelectorAll(".node").forEach((n) => n.classList.toggle(
    "selected", !!selected && selected.type === "component" && selected.id === n.dataset.id));
}

function focusNode(id) {
  const n = document.querySelector(`.node[data-id="${CSS.escape(id)}"]`);
  if (n) n.focus();
}

function point(e) {
  const r = $("canvas").getBoundingClientRect();
  return [(e.clientX - r.left) / scale, (e.clientY - r.top) / scale];
}

function startMove(e, id) {
  if (e.button !== 0) return;
  e.preventDefault();
  selected = {type: "component", id};
  const [sx, sy] = point(e), [ox, oy] = pos[id];
  let moved = false;
  const move = (m) => {
    const [x, y] = point(m);
    if (!moved && Math.abs(x - sx) + Math.abs(y - sy) < 4) return;   // a click, not a move
    pos[id] = [Math.max(0, ox + x - sx), Math.max(0, oy + y - sy)];
    placedByHand = true;
    moved = true;
    const node = document.querySelector(`.node[data-id="${CSS.escape(id)}"]`);
    if (node) node.setAttribute("transform", `translate(${pos[id][0]},${pos[id][1]})`);
  };
  const up = () => {
    window.removeEventListener("mousemove", move);
    window.removeEventListener("mouseup", up);
    render();
    if (!moved) focusNode(id);
  };
  window.addEventListener("mousemove", move);
  window.addEventListener("mouseup", up);
}

function startFlow(e, from) {
  if (e.button !== 0) return;
  e.preventDefault();
  e.stopPropagation();
  const line = $("rubber");
  const [x0, y0] = [pos[from][0] + W, pos[from][1] + H / 2];
  line.setAttribute("x1", x0); line.setAttribute("y1", y0);
  line.setAttribute("x2", x0); line.setAttribute("y2", y0);
  line.style.visibility = "visible";
  const move = (m) => { const [x, y] = point(m); line.setAttribute("x2", x); line.setAttribute("y2", y); };
  const up = (u) => {
    window.removeEventListener("mousemove", move);
    window.removeEventListener("mouseup", up);
    line.style.visibility = "hidden";
    const [x, y] = point(u);
    const to = comps().find((c) => x >= pos[c.id][0] && x <= pos[c.id][0] + W + 6 &&
                                   y >= pos[c.id][1] && y <= pos[c.id][1] + H);
    if (to && to.id !== from) addFlow(from, to.id);
  };
  window.addEventListener("mousemove", move);
  window.addEventListener("mouseup", up);
}

// ------------------------------------------------------------------------------- side panel
let panelKey = null;

let viewKey = null;

function renderPanel() {
  // each part is rebuilt only when what it shows changed: an answer arriving from the analysis
  // must not reset a field someone is filling in; the live parts at the bottom are always redrawn
  const c = selected && selected.type === "component" ? comp(selected.id) : null;
  const f = selected && selected.type === "flow" ? flows()[selected.index] : null;
  const key = JSON.stringify([selected, c, f, c || f ? null : [spec.description, spec.owner,
    spec.domain, spec.controls, spec.assets], comps().map((x) => x.id)]);
  const p = $("panel");
  const typing = document.activeElement && p.contains(document.activeElement) &&
    document.activeElement.id ? [document.activeElement.id, document.activeElement.value] : null;
  if (key !== panelKey) {
    panelKey = key;
    viewKey = null;
    p.replaceChildren();
    html("h2", {}, p, "Selected");
    if (c) panelComponent(p, c);
    else if (f) panelFlow(p, selected.index);
    else panelPipeline(p);
    html("div", {id: "panel-view"}, p);
    html("div", {id: "panel-live"}, p);
  }
  // workshop mode: the participant's own view, rebuilt when the threats placed here change
  const vkey = JSON.stringify(me && c ? [me.respondent, c.id, me.views.find((v) => v.component === c.id) || null,
    [...new Set(findingsAt(c.id).map((x) => x.threat))]] : null);
  if (vkey !== viewKey) {
    viewKey = vkey;
    $("panel-view").replaceChildren();
    if (me && c) yourView($("panel-view"), c, findingsAt(c.id));
  }
  if (typing && document.activeElement !== $(typing[0]) && $(typing[0])) {
    const back = $(typing[0]);                  // rebuilt under the cursor: what was typed stays
    if ("value" in back && back.type !== "checkbox") back.value = typing[1];
    back.focus();
  }
  const live = $("panel-live");
  live.replaceChildren();
  if (c) {
    problemList(live, problemsAt("component", c.id));
    const ev = (V.evidence || []).filter((e) => e.component === c.id);
    if (ev.length) {
      html("h2", {}, live, `Measured and scanned here (${ev.length}, from ${V.evidence_file})`);
      const ul = html("ul", {class: "evidence-list"}, live);
      for (const e of ev) html("li", {}, ul, `${e.title || e.source}: ${e.summary}` +
        (e.confirmed ? " (confirms a threat)" : e.clears ? " (clears a threat)" : ""));
    }
    const here = findingsAt(c.id);
    if (here.length) {
      html("h2", {}, live, `Threats acting here (${here.length})`);
      findingList(html("ul", {}, live), here);
    }
  } else if (f) problemList(live, problemsAt("flow", selected.index));
}

function field(p, label, input) {
  const l = html("label", {}, p, label + " ");
  l.appendChild(input);
  return input;
}

function panelComponent(p, c) {
  const id = field(p, "Id", html("input", {type: "text", value: c.id, id: "f-id"}));
  id.addEventListener("change", () => rename(c.id, id.value.trim()));
  const name = field(p, "Name", html("input", {type: "text", value: c.name || "", id: "f-name"}));
  name.addEventListener("change", () => setField(c.id, "name", name.value.trim()));
  const kind = field(p, "Kind", html("select", {id: "f-kind"}));
  for (const k of V.kinds) html("option", {value: k}, kind, k);
  kind.value = c.kind;
  kind.addEventListener("change", () => setField(c.id, "kind", kind.value));
  const exp = field(p, "Exposure", html("select", {id: "f-exposure"}));
  for (const k of V.exposures) html("option", {value: k}, exp, k);
  exp.value = c.exposure || "internal";
  exp.addEventListener("change", () => setField(c.id, "exposure", exp.value === "internal" && !c.exposure ? "" : exp.value));
  const owner = field(p, "Owner", html("input", {type: "text", value: c.owner || "", id: "f-owner"}));
  owner.addEventListener("change", () => setField(c.id, "owner", owner.value.trim()));
  for (const [key, label] of [["personal_data", "Holds data about people"], ["third_party", "Run by a third party"]]) {
    const box = html("input", {type: "checkbox", checked: !!c[key], id: `f-${key}`});
    const l = html("label", {}, p);
    l.appendChild(box);
    l.appendChild(document.createTextNode(" " + label));
    box.addEventListener("change", () => setField(c.id, key, box.checked));
  }
  const model = field(p, "Model file", html("input", {type: "text", id: "f-model",
    value: (c.artifacts && c.artifacts.model) || "", placeholder: "models/model.joblib"}));
  model.addEventListener("change", () => edit(() => {
    const x = comp(c.id);
    const a = Object.assign({}, x.artifacts || {});
    if (model.value.trim()) a.model = model.value.trim(); else delete a.model;
    if (Object.keys(a).length) x.artifacts = a; else delete x.artifacts;
  }, `${c.id}: model file changed`));
  for (const [key, label, hint] of [["code", "Code files", "serving/app.py, train.py"],
                                    ["data", "Data files", "data/train.csv"]]) {
    const now = (c.artifacts && c.artifacts[key]) || [];
    const input = field(p, `${label} (comma-separated)`, html("input", {type: "text", id: `f-${key}`,
      value: (Array.isArray(now) ? now : [now]).join(", "), placeholder: hint}));
    input.addEventListener("change", () => edit(() => {
      const x = comp(c.id);
      const a = Object.assign({}, x.artifacts || {});
      const list = words(input.value);
      if (list.length) a[key] = list; else delete a[key];
      if (Object.keys(a).length) x.artifacts = a; else delete x.artifacts;
    }, `${c.id}: ${label.toLowerCase()} changed`));
  }
  const caps = html("fieldset", {id: "f-captures"}, p);
  html("legend", {}, caps, "Captures from the physical world");
  for (const what of ["camera", "microphone", "document", "sensor"]) {
    const box = html("input", {type: "checkbox", value: what, checked: (c.captures || []).includes(what)});
    const l = html("label", {}, caps);
    l.appendChild(box);
    l.appendChild(document.createTextNode(" " + what));
    box.addEventListener("change", () => setField(c.id, "captures",
      ["camera", "microphone", "document", "sensor"].filter((w) =>
        w === what ? box.checked : (comp(c.id).captures || []).includes(w))));
  }
  const notes = field(p, "Notes", html("input", {type: "text", id: "f-notes", value: c.notes || ""}));
  notes.addEventListener("change", () => setField(c.id, "notes", notes.value.trim()));
  const fs = html("fieldset", {id: "f-controls"}, p);
  html("legend", {}, fs, "Controls in place");
  const have = new Set(c.controls || []);
  const offered = V.controls.filter((k) => have.has(k.id) || !k.applies_to.length || k.applies_to.includes(c.kind));
  for (const k of offered) {
    const box = html("input", {type: "checkbox", checked: have.has(k.id), value: k.id});
    const l = html("label", {title: k.id}, fs);
    l.appendChild(box);
    l.appendChild(document.createTextNode(` ${k.name}`));
    box.addEventListener("change", () => setField(c.id, "controls", toggled(comp(c.id).controls, k.id, box.checked)));
  }
  const others = comps().filter((o) => o.id !== c.id);
  if (others.length) {
    const target = field(p, "Add a flow to", html("select", {id: "f-flow-to"}));
    for (const o of others) html("option", {value: o.id}, target, o.name ? `${o.name} (${o.id})` : o.id);
    const add = html("button", {type: "button", id: "f-add-flow"}, p, "Add flow");
    add.addEventListener("click", () => addFlow(c.id, target.value));
  }
  const del = html("button", {type: "button", id: "f-delete"}, p, "Remove component");
  del.addEventListener("click", removeSelected);
}

// ------------------------------------------------------------------------------- workshop
const RESPONSIBILITY = [["", "(not said)"], ["us", "us"], ["other_team", "another team"],
  ["provider", "a provider"], ["nobody", "nobody"], ["unsure", "unsure"]];

function yourView(p, c, here) {
  // the interview of `mlthreat elicit` for one component, as a form (docs/perception.md)
  const old = me.views.find((v) => v.component === c.id) || {};
  const form = html("form", {id: "view-form", "aria-label": `Your view of ${c.id}`}, p);
  html("h2", {}, form, `Your view of ${c.name || c.id}` + (old.component ? " (answered)" : ""));
  const threats = [...new Map(here.map((f) => [f.threat, f.name])).entries()]
    .sort((a, b) => a[1].localeCompare(b[1]));
  const seen = new Set(old.threats || []);
  const tf = html("fieldset", {id: "v-threats"}, form);
  html("legend", {}, tf, "What could an attacker do here?");
  for (const [id, name] of threats) {
    const l = html("label", {}, tf);
    l.appendChild(html("input", {type: "checkbox", value: id, checked: seen.has(id)}));
    l.appendChild(document.createTextNode(" " + name));
  }
  const ownThreats = (old.threats || []).filter((t) => !threats.some(([id]) => id === t));
  field(form, "Other threats, in your words (comma-separated)",
        html("input", {type: "text", id: "v-other-threats", value: ownThreats.join(", ")}));
  const controls = [...new Set(threats.flatMap(([id]) => V.mitigations[id] || []))];
  const names = Object.fromEntries(V.controls.map((k) => [k.id, k.name]));
  const have = new Set((old.defenses || []).map((d) => d.control));
  const df = html("fieldset", {id: "v-defenses"}, form);
  html("legend", {}, df, "Which defenses do you have here?");
  for (const id of controls.sort((a, b) => names[a].localeCompare(names[b]))) {
    const l = html("label", {}, df);
    l.appendChild(html("input", {type: "checkbox", value: id, checked: have.has(id)}));
    l.appendChild(document.createTextNode(" " + names[id]));
  }
  const ownDefenses = [...have].filter((d) => !controls.includes(d));
  field(form, "Other defenses, in your words (comma-separated)",
        html("input", {type: "text", id: "v-other-defenses", value: ownDefenses.join(", ")}));
  const resp = field(form, "Who is responsible for securing it?", html("select", {id: "v-responsibility"}));
  for (const [v, label] of RESPONSIBILITY) html("option", {value: v}, resp, label);
  resp.value = old.responsibility || "";
  field(form, "Who, when not us", html("input", {type: "text", id: "v-responsible", value: old.responsible || ""}));
  const gain = field(form, "Would an attacker gain anything here?", html("select", {id: "v-gain"}));
  for (const [v, label] of [["", "(not said)"], ["yes", "yes"], ["no", "no"], ["unsure", "unsure"]])
    html("option", {value: v}, gain, label);
  gain.value = old.attacker_gain === true ? "yes" : old.attacker_gain === false ? "no" : (old.attacker_gain || "");
  field(form, "Why?", html("input", {type: "text", id: "v-reason", value: old.reason || ""}));
  const conf = field(form, "How confident are you?", html("select", {id: "v-confidence"}));
  for (const v of ["", "low", "medium", "high"]) html("option", {value: v}, conf, v || "(not said)");
  conf.value = old.confidence || "";
  const save = html("button", {type: "submit", id: "v-save"}, form, "Save my view");
  form.addEventListener("submit", (e) => { e.preventDefault(); saveView(c.id, form); });
  return save;
}

function toggled(list, id, on) {
  // the user's order kept: a control ticked goes last, one unticked leaves its place
  const now = (list || []).filter((x) => x !== id);
  return on ? now.concat([id]) : now;
}

function words(text) { return text.split(",").map((x) => x.trim()).filter((x) => x); }

async function saveView(component, form) {
  const q = (sel) => form.querySelector(sel);
  const checked = (id) => [...form.querySelectorAll(`#${id} input:checked`)].map((b) => b.value);
  const view = {component,
    threats: [...checked("v-threats"), ...words(q("#v-other-threats").value)],
    defenses: [...checked("v-defenses"), ...words(q("#v-other-defenses").value)].map((c) => ({control: c}))};
  const opt = {responsibility: q("#v-responsibility").value, responsible: q("#v-responsible").value.trim(),
    reason: q("#v-reason").value.trim(), confidence: q("#v-confidence").value};
  for (const [k, v] of Object.entries(opt)) if (v) view[k] = v;
  const g = q("#v-gain").value;
  if (g) view.attacker_gain = g === "yes" ? true : g === "no" ? false : "unsure";
  const {status: code, data} = await api("/api/perception", {respondent: me.respondent, view,
    pipeline: spec.name, components: comps().map((x) => x.id)});
  if (code !== 200) { status(data.error || `not saved (${code})`, true); return; }
  me.views = me.views.filter((v) => v.component !== component).concat([view]);
  status(`your view of ${component} saved to ${data.saved}`);
  document.body.dataset.viewSaved = component;
  render();
}

async function becomeParticipant(name) {
  name = name.trim();
  if (!name) { me = null; render(); return; }
  const {status: code, data} = await api(`/api/perception?who=${encodeURIComponent(name)}`);
  if (code !== 200) { status(data.error || "cannot read your answers", true); return; }
  me = {respondent: name, views: data.views || []};
  status(`${name}: select a component to say what you see there (saved to ${data.file})`);
  render();
}

async function refreshTeam() {
  const body = $("team-body");
  const {status: code, data} = await api("/api/team", {spec});
  body.replaceChildren();
  if (code !== 200) { html("p", {class: "help"}, body, data.error || `team view failed (${code})`); return; }
  if (!data.respondents.length) {
    html("p", {class: "help"}, body, `No answers yet: participants enter their name under "You" and save their view of each component (files in ${V.perceptions}/).`);
    return;
  }
  html("p", {}, body, `${data.respondents.length} participant(s): ${data.respondents.join(", ")}`);
  if (data.pairs) {
    const t = html("table", {id: "team-pairs"}, body);
    const head = html("tr", {}, t);
    for (const h of ["pair", "Cohen's κ", "items"]) html("th", {scope: "col"}, head, h);
    for (const x of data.pairs) {
      const r = html("tr", {}, t);
      html("td", {}, r, `${x.a} / ${x.b}`);
      html("td", {class: "kappa"}, r, x.kappa === null ? "undefined" : x.kappa.toFixed(3));
      html("td", {}, r, String(x.items));
    }
    html("p", {}, body, `Fleiss' κ ${data.fleiss === null ? "undefined" : data.fleiss.toFixed(3)} ` +
      `(${data.fleiss_items} items everyone rated); Krippendorff's α ${data.alpha === null ? "undefined" : data.alpha.toFixed(3)}`);
    if (data.disagreements.length) {
      html("h3", {}, body, "Where people disagree");
      const ul = html("ul", {}, body);
      for (const d of data.disagreements)
        html("li", {}, ul, `${d.component}: ${d.threat} (yes: ${d.yes.join(", ")}; no: ${d.no.join(", ")})`);
    }
  } else html("p", {class: "help"}, body, "Agreement needs a second participant.");
  if ((data.linked || []).length) {
    html("h3", {}, body, "Concepts named together (adversarial ML with classical)");
    const ul = html("ul", {id: "team-linked"}, body);
    for (const l of data.linked) html("li", {}, ul, `${l.aml} with ${l.classical}: ${l.people} participant(s)`);
  }
  html("h3", {}, body, "Gaps per person");
  const ul = html("ul", {id: "team-gaps"}, body);
  for (const g of data.gaps || []) {
    const li = html("li", {}, ul, `${g.respondent} (${g.answered}/${g.of} components): ` +
      (Object.entries(g.counts).map(([k, n]) => `${n} ${k.replaceAll("_", " ")}`).join(", ") || "no gaps"));
    if (g.top.length) { const inner = html("ul", {}, li); for (const t of g.top) html("li", {}, inner, t); }
  }
  for (const s of data.skipped) html("p", {class: "help"}, body, s);
  document.body.dataset.team = String(data.respondents.length);
}

function toggleTeam() {
  const open = $("team").hidden;
  $("team").hidden = !open;
  $("team-toggle").setAttribute("aria-expanded", String(open));
  clearInterval(teamTimer);
  if (open) { refreshTeam(); teamTimer = setInterval(refreshTeam, 4000); }
}

function setTop(key, value, what) {
  edit(() => {
    if (value === "" || value === null || (Array.isArray(value) && !value.length) ||
        (typeof value === "object" && !Array.isArray(value) && value !== null && !Object.keys(value).length))
      delete spec[key];
    else spec[key] = value;
  }, what);
}

function panelPipeline(p) {
  // nothing selected: the pipeline itself (what applies to every component)
  html("p", {class: "help"}, p, "Select a component or a flow to edit it. The pipeline:");
  const desc = field(p, "Description", html("input", {type: "text", id: "p-description", value: spec.description || ""}));
  desc.addEventListener("change", () => setTop("description", desc.value.trim(), "description changed"));
  const owner = field(p, "Owner", html("input", {type: "text", id: "p-owner", value: spec.owner || ""}));
  owner.addEventListener("change", () => setTop("owner", owner.value.trim(), "owner changed"));
  for (const [key, label, hint] of [["about", "Whom the inputs describe", "loan applicants"],
                                    ["decides", "What the model decides", "the loan decision"]]) {
    const input = field(p, label, html("input", {type: "text", id: `p-${key}`,
      value: (spec.domain || {})[key] || "", placeholder: hint}));
    input.addEventListener("change", () => {
      const d = Object.assign({}, spec.domain || {});
      if (input.value.trim()) d[key] = input.value.trim(); else delete d[key];
      setTop("domain", d, "domain changed");
    });
  }
  const af = html("fieldset", {id: "p-assets"}, p);
  html("legend", {}, af, "How much each asset matters");
  for (const asset of V.assets) {
    const sel = field(af, asset.replaceAll("_", " "), html("select", {"data-asset": asset}));
    for (const v of ["", ...V.criticality]) html("option", {value: v}, sel, v || "(medium)");
    sel.value = ((spec.assets || {})[asset] || {}).criticality || "";
    sel.addEventListener("change", () => {
      const all = JSON.parse(JSON.stringify(spec.assets || {}));
      if (sel.value) all[asset] = Object.assign(all[asset] || {}, {criticality: sel.value});
      else delete all[asset];
      setTop("assets", all, `${asset}: criticality changed`);
    });
  }
  const cf = html("fieldset", {id: "p-controls"}, p);
  html("legend", {}, cf, "Controls on every component");
  const have = new Set(spec.controls || []);
  for (const k of V.controls) {
    const box = html("input", {type: "checkbox", checked: have.has(k.id), value: k.id});
    const l = html("label", {title: k.id}, cf);
    l.appendChild(box);
    l.appendChild(document.createTextNode(` ${k.name}`));
    box.addEventListener("change", () => setTop("controls", toggled(spec.controls, k.id, box.checked), "pipeline controls changed"));
  }
}

function panelFlow(p, i) {
  const f = flows()[i];
  html("p", {}, p, `Flow ${f.from} → ${f.to}`);
  const data = field(p, "Data", html("input", {type: "text", value: f.data || "", id: "f-data"}));
  data.addEventListener("change", () => edit(() => {
    if (data.value.trim()) flows()[i].data = data.value.trim(); else delete flows()[i].data;
  }, "flow data changed"));
  const enters = field(p, "What the data becomes at the target", html("select", {id: "f-enters"}));
  for (const [v, label] of [["", "(the kind's default)"], ["context", "context read by a model"],
                            ["training", "training data"]]) html("option", {value: v}, enters, label);
  enters.value = f.enters || "";
  enters.addEventListener("change", () => edit(() => {
    if (enters.value) flows()[i].enters = enters.value; else delete flows()[i].enters;
  }, "flow changed"));
  const del = html("button", {type: "button", id: "f-delete"}, p, "Remove flow");
  del.addEventListener("click", removeSelected);
}

function problemList(p, problems) {
  if (!problems.length) return;
  const ul = html("ul", {class: "problems"}, p);
  for (const x of problems) html("li", {}, ul, x.message + (x.hint ? ` (${x.hint})` : ""));
}

// ------------------------------------------------------------------------------- results
function findingList(ul, list) {
  for (const f of list) {
    const li = html("li", {class: "finding", tabindex: "0", "data-id": f.id});
    html("span", {class: `lvl lvl-${f.level}`}, li, f.level);
    html("span", {class: `fam-${f.family}`}, li, f.family === "aml" ? "AML " : "classical ");
    li.appendChild(document.createTextNode(`${f.name} at ${f.component}` +
      (f.harm_at !== f.component ? `, harm at ${f.harm_at}` : "")));
    li.title = f.recommendation;
    const on = () => highlight(f.path), off = () => highlight([]);
    li.addEventListener("mouseenter", on); li.addEventListener("focus", on);
    li.addEventListener("mouseleave", off); li.addEventListener("blur", off);
    ul.appendChild(li);
  }
}

function highlight(path) {
  const on = new Set(path);
  const steps = new Set(path.slice(1).map((t, i) => `${path[i]}>${t}`));
  document.querySelectorAll(".node").forEach((n) => n.classList.toggle("onpath", on.has(n.dataset.id)));
  document.querySelectorAll(".edge").forEach((e) => e.classList.toggle(
    "onpath", steps.has(`${e.dataset.from}>${e.dataset.to}`)));
}

function renderResults() {
  const lead = $("lead-list"), recs = $("recs"), assets = $("asset-list"), all = $("finding-list");
  for (const x of [lead, recs, assets, all]) x.replaceChildren();
  if (!result) return;
  const general = (result.problems || []).filter((p) => p.component === undefined && p.flow === undefined);
  if (general.length) status(general.map((p) => p.message).join("; "), true);
  for (const g of result.lead || []) {
    const li = html("li", {}, lead);
    html("span", {class: `lvl lvl-${g.level}`}, li, g.level);
    html("span", {class: `fam-${g.family}`}, li, g.name);
    li.appendChild(document.createTextNode(`, harm at ${g.harm_at}`));
  }
  for (const r of result.recommendations || []) {
    html("li", {}, recs, `${r.name} at ${r.where.join(", ") || "the whole pipeline"} ` +
      `(${r.findings} finding${r.findings === 1 ? "" : "s"})`);
  }
  const integ = $("integrity-list");
  integ.replaceChildren();
  for (const p of result.integrity || []) html("li", {title: p.explanation}, integ, `${p.path.join(" → ")} (${p.verdict})`);
  if (!(result.integrity || []).length) html("li", {class: "help"}, integ, "none open");
  for (const a of result.assets || []) {
    const li = html("li", {}, assets, `${a.asset} (${a.goal}): `);
    html("span", {class: "fam-aml"}, li, `${a.aml} AML`);
    li.appendChild(document.createTextNode(" · "));
    html("span", {class: "fam-classical"}, li, `${a.classical} classical`);
  }
  const n = result.findings.length, aml = result.findings.filter((f) => f.family === "aml").length;
  $("counts").textContent = `(${n}: ${aml} AML, ${n - aml} classical)`;
  const worstFirst = [...result.findings].sort((a, b) => b.score - a.score);
  findingList(all, showAll ? worstFirst : worstFirst.slice(0, LISTED));
  if (!showAll && worstFirst.length > LISTED) {
    const li = html("li", {}, all);
    const more = html("button", {type: "button", id: "show-all"}, li,
                      `show all ${worstFirst.length} (${worstFirst.length - LISTED} more)`);
    more.addEventListener("click", () => { showAll = true; renderResults(); });
  }
}

function schedule() {
  document.body.dataset.dirty = "1";       // tests wait for "0": the findings shown are current
  clearTimeout(timer);
  timer = setTimeout(analyse, 40);   // edits in one burst (an undo of several) analysed once
}

async function analyse() {
  timer = null;
  const mine = ++asked;
  if (!comps().length) { result = null; render(); if (timer === null) document.body.dataset.dirty = "0"; return; }
  const {status: code, data} = await api("/api/analyse", {spec});
  if (mine < shown) return;          // an older answer arriving late
  shown = mine;
  if (code !== 200) {
    status(data.error || `analysis failed (${code})`, true);
    if (mine === asked && timer === null) document.body.dataset.dirty = "0";
    return;
  }
  result = data;
  render();
  if (mine === asked && timer === null) {
    document.body.dataset.dirty = "0";
    if (editStart !== null) document.body.dataset.editMs = (performance.now() - editStart).toFixed(1);
  }
}

// ------------------------------------------------------------------------------- saving
async function save(overwrite) {
  const path = $("path").value.trim();
  if (!path) { status("name the file to save, e.g. pipeline.yaml", true); $("path").focus(); return; }
  const {status: code, data} = await api("/api/save", {spec, path, overwrite: !!overwrite});
  if (code === 409 && data.exists) {
    if (window.confirm(data.error)) return save(true);
    status("not saved", true);
    return;
  }
  if (code !== 200) {
    if (data.problems) { result = Object.assign(result || {findings: []}, {problems: data.problems}); render(); }
    status(data.error + (data.problems ? ": " + data.problems.map((p) => p.message).join("; ") : ""), true);
    return;
  }
  status(`saved ${data.saved}`);
  document.body.dataset.saved = data.saved;
}

// ------------------------------------------------------------------------------- start
document.addEventListener("keydown", (e) => {
  const typing = ["INPUT", "SELECT", "TEXTAREA"].includes(document.activeElement.tagName);
  const mod = e.ctrlKey || e.metaKey;
  if (mod && e.key.toLowerCase() === "s") { e.preventDefault(); save(false); return; }
  if (typing) return;
  if (mod && e.key.toLowerCase() === "z") { e.preventDefault(); e.shiftKey ? redo() : undo(); }
  else if (mod && e.key.toLowerCase() === "y") { e.preventDefault(); redo(); }
  else if ((e.key === "Delete" || e.key === "Backspace") && selected) { e.preventDefault(); removeSelected(); }
  else if (selected && selected.type === "component" && e.key.startsWith("Arrow")) {
    e.preventDefault();
    const [x, y] = pos[selected.id], step = e.shiftKey ? 50 : 10;
    const d = {ArrowLeft: [-step, 0], ArrowRight: [step, 0], ArrowUp: [0, -step], ArrowDown: [0, step]}[e.key];
    pos[selected.id] = [Math.max(0, x + d[0]), Math.max(0, y + d[1])];
    placedByHand = true;
    render();
    focusNode(selected.id);
  }
});

async function start() {
  const {status: code, data} = await api("/api/state");
  if (code !== 200) { status(data.error || "cannot load the board", true); return; }
  V = data;
  spec = data.spec;
  pos = {};
  $("path").value = data.file || "";
  for (const k of V.kinds) {
    const b = html("button", {type: "button", "data-kind": k}, $("kinds"), k.replaceAll("_", " "));
    b.addEventListener("click", () => addComponent(k));
  }
  $("undo").addEventListener("click", undo);
  $("arrange").addEventListener("click", arrange);
  $("zoom-fit").addEventListener("click", () => zoom("fit"));
  $("zoom-in").addEventListener("click", () => zoom("in"));
  $("zoom-out").addEventListener("click", () => zoom("out"));
  $("export-svg").addEventListener("click", () => exportAs("svg"));
  $("export-png").addEventListener("click", () => exportAs("png"));
  $("export-report").addEventListener("click", exportReport);
  $("who").addEventListener("change", (e) => becomeParticipant(e.target.value));
  $("team-toggle").addEventListener("click", toggleTeam);
  const as = new URLSearchParams(location.search).get("as");
  if (as) { $("who").value = as; await becomeParticipant(as); }
  $("redo").addEventListener("click", redo);
  $("save").addEventListener("click", () => save(false));
  $("pipeline-name").addEventListener("change", (e) => edit(() => { spec.name = e.target.value.trim() || "pipeline"; }, "renamed the pipeline"));
  $("canvas").addEventListener("mousedown", (e) => { if (e.target.id === "canvas") { selected = null; render(); } });
  await arrange();
  document.body.dataset.laidOut = "1";
  render();
  if (data.problem) status(data.problem, true);
  else status(data.file ? `opened ${data.file}` : "a new pipeline: add components from the left");
  document.body.dataset.ready = "1";
  schedule();
}

start();
