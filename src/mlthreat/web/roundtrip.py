"""Saving the board's spec back as YAML that keeps the user's comments, key order and quoting.

The board holds the spec as plain data (what `yaml.safe_load` of the file gives, edited). Saving
reads the file again with ruamel.yaml's round-trip loader and changes only what the data changed:
mapping keys are updated in place (new keys after the old ones), components are matched by id and
flows by their two ends, so a comment above a component stays with that component; lists of plain
values (controls) keep their flow or block style. The text is checked with mlthreat's own spec
loader before a byte is written, and written whole (a temporary file renamed over the old one).
"""

from __future__ import annotations

import io
import os
import tempfile
from collections.abc import Hashable
from pathlib import Path
from typing import Any

import yaml
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq


def _yaml() -> YAML:
    y = YAML()                      # round trip: comments, order, quoting and flow style kept
    y.preserve_quotes = True
    y.indent(mapping=2, sequence=4, offset=2)
    y.width = 4096                  # never re-wrap the user's prose
    return y


def load(text: str) -> Any:
    """The document's round-trip tree (CommentedMap ...)."""
    return _yaml().load(text)


def plain(node: Any) -> Any:
    """The tree as plain dicts, lists and scalars (JSON-ready)."""
    if isinstance(node, dict):
        return {str(k): plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [plain(v) for v in node]
    if node is None or isinstance(node, bool):
        return node
    for kind in (int, float, str):      # ruamel's ScalarInt, ScalarFloat, quoted strings ...
        if isinstance(node, kind):
            return kind(node)
    return str(node)                 # dates and other YAML scalars: as written


def _key(item: Any) -> Hashable | None:
    if isinstance(item, dict):
        if "id" in item:
            return ("id", str(item["id"]))
        if "from" in item and "to" in item:
            return ("flow", str(item["from"]), str(item["to"]))
    return None


def merge(old: Any, new: Any) -> Any:
    """`new` written into `old` in place where their shapes agree; what changed replaces."""
    if isinstance(old, CommentedMap) and isinstance(new, dict):
        for k in [k for k in old if k not in new]:
            del old[k]
        for k, v in new.items():
            old[k] = merge(old[k], v) if k in old else v
        return old
    if isinstance(old, CommentedSeq) and isinstance(new, list):
        keys = [_key(n) for n in new]
        if all(k is not None for k in keys) and len(set(keys)) == len(keys):
            wanted = dict(zip(keys, new, strict=True))
            for i in reversed(range(len(old))):      # CommentedSeq moves its comments along
                if _key(old[i]) not in wanted:
                    del old[i]
            kept = {_key(item): i for i, item in enumerate(old)}
            if list(kept) == [k for k in keys if k in kept]:   # same relative order: in place
                for k, v in wanted.items():
                    if k in kept:
                        old[kept[k]] = merge(old[kept[k]], v)
                    else:
                        old.append(v)
                return old
            return CommentedSeq(merge(old[kept[k]], v) if k in kept else v
                                for k, v in wanted.items())
        for i, v in enumerate(new):
            if i < len(old):
                old[i] = merge(old[i], v)
            else:
                old.append(v)
        for i in reversed(range(len(new), len(old))):
            del old[i]
        return old
    if type(old) is not type(new) and not (isinstance(old, str) and isinstance(new, str)):
        return new
    return old if old == new else new


def dump(tree: Any) -> str:
    out = io.StringIO()
    _yaml().dump(tree, out)
    return out.getvalue()


def updated_text(original: str | None, data: dict[str, Any]) -> str:
    """The YAML text for `data`, keeping what `original` (the file's old text) had around it."""
    if original is None or not original.strip():
        return dump(CommentedMap(data))
    tree = load(original)
    if not isinstance(tree, CommentedMap):
        return dump(CommentedMap(data))
    text = dump(merge(tree, data))
    old_lines, lines = original.splitlines(keepends=True), text.splitlines(keepends=True)
    swaps: list[tuple[int, int, list[str]]] = []
    _unchanged(load(original), old_lines, (0, len(old_lines)), load(text), lines,
               (0, len(lines)), swaps)
    for start, end, block in sorted(swaps, reverse=True):
        lines[start:end] = block
    restored = "".join(lines)
    try:                                   # the safety net: restoring must not change the data
        same = yaml.safe_load(restored) == yaml.safe_load(text)
    except yaml.YAMLError:
        same = False
    return restored if same else text


Span = tuple[int, int]          # first line, end line (exclusive), 0-based


def _children(node: Any, span: Span) -> dict[Hashable, tuple[Any, Span, int]]:
    """The block children of a mapping or keyed list: value, lines, column."""
    if not isinstance(node, CommentedMap | CommentedSeq) or node.fa.flow_style():
        return {}
    if isinstance(node, CommentedMap):
        keys: list[Hashable] = list(node)
        where = [node.lc.key(k) for k in keys]
        values = [node[k] for k in keys]
    else:
        keys = [_key(x) for x in node]
        if None in keys or len(set(keys)) != len(keys):
            keys = list(range(len(node)))
        where = [node.lc.item(i) for i in range(len(node))]
        values = list(node)
    starts = [w[0] for w in where] + [span[1]]
    return {k: (v, (starts[i], starts[i + 1]), where[i][1])
            for i, (k, v) in enumerate(zip(keys, values, strict=True))
            if starts[i] < starts[i + 1]}


def _unchanged(old: Any, old_lines: list[str], old_span: Span, new: Any, lines: list[str],
               span: Span, swaps: list[tuple[int, int, list[str]]]) -> None:
    """Line ranges of the new text to put back as the user wrote them: every block whose data
    did not change (ruamel joins a flow mapping the user broke over lines, re-folds prose ...)."""
    before = _children(old, old_span)
    for k, (value, where, column) in _children(new, span).items():
        if k not in before:
            continue
        was, old_where, old_column = before[k]
        if column != old_column:
            continue
        if plain(was) == plain(value):
            block = old_lines[old_where[0]:old_where[1]]
            if block != lines[where[0]:where[1]]:
                if block and not block[-1].endswith("\n"):
                    block = [*block[:-1], block[-1] + "\n"]
                swaps.append((where[0], where[1], block))
        else:
            _unchanged(was, old_lines, old_where, value, lines, where, swaps)


def write_whole(path: Path, text: str) -> None:
    """Write `text` to `path` in one rename: a crash leaves the old file or the new, never half."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        if path.exists():
            os.chmod(tmp, path.stat().st_mode & 0o777)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
