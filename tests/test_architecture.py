"""The layout (../shared/DESIGN.md, Layout v2): imports point only down, from the front ends
through the driver to the packages and the shared vocabulary; no module or package cycle; the
command line holds no assessment logic; the driver stays short; and `mlthreat --version` loads
no probe, scanner or report format."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import networkx as nx

from tests.conftest import ROOT

SRC = ROOT / "src" / "mlthreat"

# Each package (or top-level module) may import only from lower layers (and from itself).
LAYERS = [
    {"errors", "vocabulary", "plain", "fieldtypes", "yamlpos", "version", "processes"},
    {"results", "progress", "yamlio", "examples", "cluster"},
    {"catalog"},
    {"pipeline"},
    {"scanners", "analysis"},
    {"adapters", "perception", "gate", "imports"},
    {"probes"},
    {"assessor", "report"},
    {"web"},                 # the workshop board: a front end over the Assessor
    {"cli"},
    {"mlthreat"},            # the public API re-exports names from below, lazily
]
RANK = {name: n for n, layer in enumerate(LAYERS) for name in layer}


def _module(path: Path) -> str:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _part(module: str) -> str:
    return module.split(".")[1] if "." in module else "mlthreat"


def _graph() -> nx.DiGraph:
    modules = {_module(p): p for p in SRC.rglob("*.py")}
    graph = nx.DiGraph()
    for name, path in modules.items():
        graph.add_node(name)
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and \
                    node.module.split(".")[0] == "mlthreat":
                targets = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                continue
            graph.add_edges_from((name, t) for t in targets if t in modules and t != name)
    return graph


def test_every_package_has_a_layer() -> None:
    parts = {_part(m) for m in _graph().nodes}
    assert parts == set(RANK), parts ^ set(RANK)


def test_imports_point_only_down() -> None:
    wrong = [(a, b) for a, b in _graph().edges
             if _part(a) != _part(b) and RANK[_part(b)] >= RANK[_part(a)]]
    assert wrong == []


def test_no_module_or_package_cycle() -> None:
    graph = _graph()
    assert list(nx.simple_cycles(graph)) == []
    packages = nx.DiGraph((_part(a), _part(b)) for a, b in graph.edges if _part(a) != _part(b))
    assert nx.is_directed_acyclic_graph(packages)


def test_the_command_line_holds_no_assessment_logic() -> None:
    """The CLI reaches the analysis, scanners and probes only through the Assessor: it never
    places, scores, scans for evidence or runs probes itself."""
    graph = _graph()
    driver_only = {"mlthreat.analysis.assess", "mlthreat.analysis.attribution",
                   "mlthreat.scanners.evidence", "mlthreat.probes.runner",
                   "mlthreat.probes.parallel", "mlthreat.probes.execute"}
    for name in graph.nodes:
        if _part(name) == "cli":
            assert not set(graph.successors(name)) & driver_only, name


def test_the_driver_is_short() -> None:
    lines = (SRC / "assessor.py").read_text().splitlines()
    assert len(lines) < 100


def test_version_loads_no_heavy_part() -> None:
    code = ("import sys; from mlthreat.cli import main\n"
            "try:\n    main(['--version'])\nexcept SystemExit:\n    pass\n"
            "heavy = [m for m in sys.modules if m.split('.')[0] in ('numpy', 'sklearn', 'torch',"
            " 'pandas', 'jinja2', 'pydantic', 'rich', 'networkx') or m.startswith("
            "('mlthreat.probes', 'mlthreat.scanners', 'mlthreat.report', 'mlthreat.analysis'))]\n"
            "print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip().splitlines()[-1] == "[]"
