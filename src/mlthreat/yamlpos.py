"""YAML loading that remembers where every value came from.

PyYAML composes a node tree with marks; we construct plain Python values from it ourselves so that
each value's path (``("components", 3, "kind")``) maps to its line and column. Duplicate keys, which
PyYAML silently accepts, are reported here. Marks are 1-based in what we return.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

Path = tuple[str | int, ...]
Position = tuple[int, int]


@dataclass
class Located:
    """A YAML document as Python data, plus positions of values and of mapping keys by path."""

    data: Any
    values: dict[Path, Position] = field(default_factory=dict)
    keys: dict[Path, Position] = field(default_factory=dict)
    duplicates: list[tuple[Path, Position]] = field(default_factory=list)

    def position(self, path: Path) -> Position | None:
        """Where the value at `path` is, or the nearest enclosing value that exists."""
        for cut in range(len(path), -1, -1):
            sub = path[:cut]
            if sub in self.values:
                return self.values[sub]
        return None

    def key_position(self, path: Path) -> Position | None:
        return self.keys.get(path) or self.position(path)


# libyaml's parser when PyYAML was built with it (about 5x faster); same nodes and marks.
_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _pos(node: Node) -> Position:
    return (node.start_mark.line + 1, node.start_mark.column + 1)


def load_located(text: str) -> Located:
    """Parse one YAML document. Raises yaml.YAMLError (with marks) on syntax errors."""
    loader = _Loader(text)
    try:
        root = loader.get_single_node()
        located = Located(data=None)
        if root is not None:
            located.data = _walk(root, (), located, loader.construct_object, loader)
        return located
    finally:
        loader.dispose()


def _walk(node: Node, path: Path, out: Located,
          construct: Callable[..., Any], loader: Any) -> Any:
    out.values[path] = _pos(node)
    if isinstance(node, MappingNode):
        loader.flatten_mapping(node)  # resolves YAML merge keys (<<)
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = construct(key_node, deep=True)
            key = key if isinstance(key, str | int) else str(key)
            child = (*path, key)
            if key in result:
                out.duplicates.append((child, _pos(key_node)))
            out.keys[child] = _pos(key_node)
            result[key] = _walk(value_node, child, out, construct, loader)
        return result
    if isinstance(node, SequenceNode):
        return [_walk(item, (*path, i), out, construct, loader) for i, item in enumerate(node.value)]
    if isinstance(node, ScalarNode):
        return construct(node, deep=True)
    return construct(node, deep=True)  # pragma: no cover - PyYAML has only the three node kinds
