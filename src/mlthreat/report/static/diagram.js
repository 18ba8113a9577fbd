// mlthreat's one diagram renderer, for the workshop board and the HTML report (docs/board.md).
// Layout by the Eclipse Layout Kernel (elkjs, vendored with its licence): layered, left to
// right, orthogonal edges, feedback flows routed around the components. Drawing is plain SVG.
"use strict";

(function (global) {
  const NS = "http://www.w3.org/2000/svg";
  const W = 184, H = 64, CHARS = 23;
  const OPTIONS = {
    "elk.algorithm": "layered",
    "elk.direction": "RIGHT",
    "elk.edgeRouting": "ORTHOGONAL",
    "elk.layered.feedbackEdges": "true",
    // nodes come in pipeline order (data first, serving last): a flow against that order is
    // the feedback flow, drawn back around the components
    "elk.layered.cycleBreaking.strategy": "MODEL_ORDER",
    "elk.layered.considerModelOrder.strategy": "NODES_AND_EDGES",
    "elk.layered.spacing.nodeNodeBetweenLayers": "56",
    "elk.layered.spacing.edgeNodeBetweenLayers": "18",
    "elk.spacing.nodeNode": "28",
    "elk.spacing.edgeNode": "16",
    "elk.spacing.edgeEdge": "8",
    "elk.layered.nodePlacement.strategy": "BRANDES_KOEPF",
    "elk.padding": "[top=24,left=24,bottom=24,right=24]",
  };

  function wrap(text, chars) {
    // at most two lines of `chars` characters, cut at spaces where possible
    chars = chars || CHARS;
    const words = String(text).split(/\s+/).filter((w) => w);
    const lines = [""];
    for (const w of words) {
      const cur = lines[lines.length - 1];
      if (!cur.length) lines[lines.length - 1] = w;
      else if ((cur + " " + w).length <= chars) lines[lines.length - 1] = cur + " " + w;
      else lines.push(w);
    }
    const out = lines.slice(0, 2).map((l) => l.length > chars ? l.slice(0, chars - 1) + "…" : l);
    if (lines.length > 2) out[1] = out[1].slice(0, chars - 1).replace(/\s*$/, "") + "…";
    return out;
  }

  function el(tag, attrs, parent, text) {
    const e = document.createElementNS(NS, tag);
    for (const k in attrs || {}) e.setAttribute(k, attrs[k]);
    if (text !== undefined) e.textContent = text;
    if (parent) parent.appendChild(e);
    return e;
  }

  // graph: {nodes: [{id}], edges: [{source, target}]} -> {nodes: {id: [x, y]}, edges: [{source,
  // target, points: [[x, y], ...]}], width, height}
  async function layout(graph) {
    const elk = new global.ELK();
    const ids = new Set(graph.nodes.map((n) => n.id));
    const edges = graph.edges.filter((e) => ids.has(e.source) && ids.has(e.target) && e.source !== e.target);
    const out = await elk.layout({
      id: "root", layoutOptions: OPTIONS,
      children: graph.nodes.map((n) => ({id: n.id, width: W, height: H})),
      edges: edges.map((e, i) => ({id: "e" + i, sources: [e.source], targets: [e.target]})),
    });
    const nodes = {};
    for (const c of out.children) nodes[c.id] = [c.x, c.y];
    const rank = new Map(graph.nodes.map((n, i) => [n.id, i]));
    const routed = out.edges.map((e, i) => {
      const s = (e.sections || [])[0];
      const points = s ? [s.startPoint].concat(s.bendPoints || [], [s.endPoint]).map((p) => [p.x, p.y]) : null;
      const back = rank.get(edges[i].target) < rank.get(edges[i].source);   // against the order
      return {source: edges[i].source, target: edges[i].target, points, back};
    });
    return {nodes, edges: routed, width: out.width, height: out.height};
  }

  function path(points) {
    return points.map((p, i) => (i ? "L" : "M") + p[0].toFixed(1) + "," + p[1].toFixed(1)).join(" ");
  }

  function curve(a, b) {
    // an edge between two placed boxes, where no routed path is known (a box was moved)
    const x1 = a[0] + W, y1 = a[1] + H / 2, x2 = b[0], y2 = b[1] + H / 2;
    if (x2 > x1 + 10) {
      const m = (x1 + x2) / 2;
      return `M${x1},${y1} C${m},${y1} ${m},${y2} ${x2},${y2}`;
    }
    const low = Math.max(a[1], b[1]) + H + 16;
    return `M${a[0] + W / 2 + 8},${a[1] + H} L${a[0] + W / 2 + 8},${low} L${b[0] + W / 2 - 8},${low} L${b[0] + W / 2 - 8},${b[1] + H}`;
  }

  // one component: its box, name on up to two lines, kind and exposure, the two families'
  // badges (count, ringed in the worst level's colour). n: {id, label, sub, public, aml,
  // classical, amlWorst, classicalWorst}; colors: {family: {...}, level: {...}}
  function node(parent, n, xy, colors) {
    const g = el("g", {class: "node component", transform: `translate(${xy[0]},${xy[1]})`, "data-id": n.id}, parent);
    if (n.title) el("title", {}, g, n.title);
    el("rect", {class: "box" + (n.public ? " exposed" : ""), width: W, height: H, rx: 6}, g);
    if (n.evidence) {          // measured or scanned: a stripe on the left, red where confirmed
      const bar = el("rect", {class: "evidence" + (n.confirmed ? " confirmed" : ""), x: 1.5, y: 6,
                              width: 4, height: H - 12, rx: 2}, g);
      el("title", {}, bar, `${n.evidence} measurement(s) or scan result(s)` +
         (n.confirmed ? `, ${n.confirmed} confirming a threat` : ""));
    }
    const lines = wrap(n.label || n.id);
    lines.forEach((line, i) => el("text", {x: 9, y: 18 + i * 15, class: "label"}, g, line));
    el("text", {x: 9, y: H - 10, class: "kind"}, g, wrap(n.sub || "", 17)[0]);
    [["aml", W - 44], ["classical", W - 18]].forEach(([fam, x]) => {
      if (!n[fam]) return;
      const b = el("g", {class: "badge " + fam, "data-family": fam}, g);
      el("circle", {cx: x, cy: H - 14, r: 10, fill: colors.family[fam],
                    stroke: colors.level[n[fam + "Worst"]] || "#fff", "stroke-width": 3}, b);
      el("text", {x, y: H - 10, "text-anchor": "middle"}, b, String(n[fam]));
      el("title", {}, b, `${n[fam]} ${fam === "aml" ? "adversarial-ML" : "classical-security"} finding(s) act here; worst ${n[fam + "Worst"]}`);
    });
    return g;
  }

  function edge(parent, e, d) {
    const g = el("g", {class: "edge" + (e.back ? " back" : ""), "data-from": e.source, "data-to": e.target}, parent);
    el("path", {class: "line", d, "marker-end": "url(#mlt-arrow)"}, g);
    return g;
  }

  function defs(svg) {
    if (svg.querySelector("#mlt-arrow")) return;
    const d = el("defs", {}, svg);
    const m = el("marker", {id: "mlt-arrow", viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 8,
                            markerHeight: 8, markerUnits: "userSpaceOnUse", orient: "auto-start-reverse"}, d);
    el("path", {d: "M0,0 L10,5 L0,10 z", fill: "#475569"}, m);
  }

  // the static drawing (the HTML report): graph with node details, laid out here
  async function render(svg, graph, colors) {
    const geo = await layout(graph);
    svg.replaceChildren();
    el("style", {}, svg, STYLE);
    defs(svg);
    svg.setAttribute("viewBox", `0 0 ${geo.width} ${geo.height}`);
    svg.setAttribute("width", geo.width);
    svg.setAttribute("height", geo.height);
    const edges = el("g", {class: "edges"}, svg), nodes = el("g", {class: "nodes"}, svg);
    for (const e of geo.edges) edge(edges, e, e.points ? path(e.points) : curve(geo.nodes[e.source], geo.nodes[e.target]));
    for (const n of graph.nodes) node(nodes, n, geo.nodes[n.id], colors);
    svg.dataset.rendered = "1";
    document.dispatchEvent(new Event("mlthreat:drawn"));    // the page may now scroll sideways
    return geo;
  }

  const STYLE = `
    .box { fill: #fff; stroke: #64748b; stroke-width: 1.2; } .box.exposed { stroke: #b91c1c; stroke-width: 2.2; }
    text { font: 12px system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; fill: #1e293b; }
    text.kind { font-size: 11px; fill: #475569; } .badge text { fill: #fff; font-size: 11px; font-weight: 700; }
    rect.evidence { fill: #334155; } rect.evidence.confirmed { fill: #b91c1c; }
    .edge path.line { fill: none; stroke: #475569; stroke-width: 1.4; } .edge.back path.line { stroke-dasharray: 6 4; }
    .handle { display: none; }`;

  function standalone(svg) {
    // a copy that stands on its own: styles inside, interaction parts removed
    const copy = svg.cloneNode(true);
    copy.setAttribute("xmlns", NS);
    copy.querySelectorAll(".handle, #rubber, style").forEach((x) => x.remove());
    const style = document.createElementNS(NS, "style");
    style.textContent = STYLE;
    copy.insertBefore(style, copy.firstChild);
    const bg = document.createElementNS(NS, "rect");
    bg.setAttribute("width", "100%"); bg.setAttribute("height", "100%"); bg.setAttribute("fill", "#fff");
    copy.insertBefore(bg, style.nextSibling);
    return new XMLSerializer().serializeToString(copy);
  }

  function svgBlob(svg) {
    return new Blob([standalone(svg)], {type: "image/svg+xml"});
  }

  function pngBlob(svg, scale) {
    scale = scale || 2;
    const w = Number(svg.getAttribute("width")), h = Number(svg.getAttribute("height"));
    return new Promise((resolve, reject) => {
      const img = new Image();
      const url = URL.createObjectURL(svgBlob(svg));
      img.onload = () => {
        const canvas = document.createElement("canvas");
        canvas.width = Math.ceil(w * scale); canvas.height = Math.ceil(h * scale);
        const ctx = canvas.getContext("2d");
        ctx.scale(scale, scale);
        ctx.drawImage(img, 0, 0, w, h);
        URL.revokeObjectURL(url);
        canvas.toBlob((b) => b ? resolve(b) : reject(new Error("PNG export failed")), "image/png");
      };
      img.onerror = () => { URL.revokeObjectURL(url); reject(new Error("PNG export failed")); };
      img.src = url;
    });
  }

  function download(blob, name) {
    const a = document.createElement("a");
    a.href = URL.createObjectURL(blob);
    a.download = name;
    document.body.appendChild(a);
    a.click();
    setTimeout(() => { URL.revokeObjectURL(a.href); a.remove(); }, 1000);
  }

  global.MlthreatDiagram = {W, H, wrap, layout, path, curve, node, edge, defs, render,
                            svgBlob, pngBlob, download};
})(window);
