"""Settings files: every option a command takes, written once for a project instead of on every
command line. `mlthreat.toml` (or `.mlthreat.toml`, or `[tool.mlthreat]` in `pyproject.toml`) is
found by walking up from what the command reads (the spec, the first scanned path) to the
repository's root; keys at the top apply to every command that has the option, a `[scan]` (or
`[tool.mlthreat.scan]`) table to that command only and wins over the top. A flag on the command
line wins over both. Each value is checked as the flag's own would be, and a wrong one is an
error at the file and line it came from (exit 2). `mlthreat config` shows the outcome.
"""

from __future__ import annotations

import argparse
import re
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlthreat.errors import InputError
from mlthreat.yamlio import did_you_mean

NAMES = ("mlthreat.toml", ".mlthreat.toml", "pyproject.toml")
# what a settings file may not set: writing over files and the run's own switches stay on the
# command line, where the person running it sees them
NOT_SETTINGS = {"force", "output", "debug", "help", "version", "config", "no_config", "command",
                "run"}
# options whose values are paths: read relative to the settings file, not to where mlthreat runs
PATHS = {"advisories", "baseline", "new_since", "perception", "out_dir"}


@dataclass(frozen=True)
class Setting:
    """One option's value and where it came from: 'default', 'command line', or file:line."""

    command: str
    option: str          # as the flag is written, without dashes: "fail-on"
    value: Any
    source: str


@dataclass(frozen=True)
class SettingsFile:
    path: Path
    table: dict[str, Any]      # the mlthreat table (top keys and per-command tables)
    text: str


def find(start: Path) -> SettingsFile | None:
    """The first settings file from `start` upwards, stopping at a repository's root (a folder
    with `.git`); a pyproject.toml counts only with a [tool.mlthreat] table."""
    here = start.resolve()
    here = here if here.is_dir() else here.parent
    for folder in (here, *here.parents):
        for name in NAMES:
            found = read(folder / name) if (folder / name).is_file() else None
            if found is not None:
                return found
        if (folder / ".git").exists():
            return None
    return None


def read(path: Path) -> SettingsFile | None:
    """The file's mlthreat table (None for a pyproject.toml without one); InputError with the
    line if it is not TOML."""
    try:
        text = path.read_text(encoding="utf-8")
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{path}: not valid TOML: {exc}; fix it, or run with --no-config"
                         ) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot be read ({exc}); run with --no-config to ignore it"
                         ) from exc
    if path.name == "pyproject.toml":
        table = data.get("tool", {}).get("mlthreat")
        if table is None:
            return None
    else:
        table = data
    if not isinstance(table, dict):
        raise InputError(f"{path}: the mlthreat settings must be a table of options")
    return SettingsFile(path, table, text)


def _line(file: SettingsFile, command: str | None, key: str) -> int | None:
    """The line where `key` is set in the top table or in `command`'s table (tomllib keeps no
    positions, so the text is read for them)."""
    prefix = "tool.mlthreat" if file.path.name == "pyproject.toml" else ""
    want = ".".join(p for p in (prefix, command) if p)
    table, pattern = "", re.compile(rf"^\s*[\"']?{re.escape(key)}[\"']?\s*=")
    for n, raw in enumerate(file.text.splitlines(), 1):
        header = re.match(r"^\s*\[([^\[\]]+)\]\s*(#.*)?$", raw)
        if header:
            table = header.group(1).strip()
        elif table == want and pattern.match(raw):
            return n
    return None


def _where(file: SettingsFile, command: str | None, key: str) -> str:
    line = _line(file, command, key)
    return f"{file.path}:{line}" if line else str(file.path)


def _table_where(file: SettingsFile, command: str) -> str:
    """Where `command`'s table starts (its [header], or its key in an inline table)."""
    prefix = "tool.mlthreat." if file.path.name == "pyproject.toml" else ""
    header = re.compile(rf"^\s*\[\s*{re.escape(prefix + command)}\s*\]")
    for n, raw in enumerate(file.text.splitlines(), 1):
        if header.match(raw):
            return f"{file.path}:{n}"
    return _where(file, None, command)


def _actions(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    """A command's options that a settings file may set, by their name without dashes."""
    out = {}
    for action in parser._actions:        # argparse has no public list of a parser's options
        longs = [s for s in action.option_strings if s.startswith("--")]
        if longs and action.dest not in NOT_SETTINGS:
            out[longs[0][2:]] = action
    return out


def _convert(action: argparse.Action, value: Any, where: str, key: str, base: Path) -> Any:
    """The value as the flag would have made it, or an InputError at `where`."""
    flag = f"--{key}"
    if isinstance(action, argparse._StoreTrueAction):
        if not isinstance(value, bool):
            raise InputError(f"{where}: {key} must be true or false (as the flag {flag})")
        return value
    many = isinstance(action, argparse._AppendAction)
    values = value if isinstance(value, list) else [value]
    if not many and isinstance(value, list):
        if action.dest != "only":
            raise InputError(f"{where}: {key} takes one value, not a list")
        values = [",".join(str(v) for v in value)]
    out = []
    for v in values:
        if not isinstance(v, str | int | float) or isinstance(v, bool):
            raise InputError(f"{where}: {key} = {v!r} is not a value {flag} takes")
        text = str(v)
        if action.dest in PATHS:
            text = str(base / text) if not Path(text).is_absolute() else text
        try:
            converted = action.type(text) if callable(action.type) else text
        except (argparse.ArgumentTypeError, ValueError, TypeError) as exc:
            raise InputError(f"{where}: {key} = {v!r}: {exc}") from exc
        if action.choices is not None and converted not in action.choices:
            raise InputError(f"{where}: {key} = {v!r}: "
                             + did_you_mean(str(v), map(str, action.choices), "choose from"))
        out.append(converted)
    return out if many else out[0]


def given(parser: argparse.ArgumentParser, argv: list[str]) -> set[str]:
    """The dests the command line set itself: `parser` (a fresh one: it is changed) parses
    `argv` again with every default suppressed."""
    for p in (parser, *commands(parser).values()):
        p._defaults.clear()
        for action in p._actions:
            action.default = argparse.SUPPRESS
    return set(vars(parser.parse_known_args(argv)[0]))


def commands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """Every command's parser, by name."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def apply(args: argparse.Namespace, parser: argparse.ArgumentParser, command: str,
          given: set[str], file: SettingsFile | None) -> list[Setting]:
    """Set every option of `command` that the command line left alone from the file; return
    every option's value with its source (for `mlthreat config`)."""
    everyone = commands(parser)
    actions = _actions(everyone[command])
    top = {k: v for k, v in (file.table if file else {}).items() if not isinstance(v, dict)}
    own = (file.table.get(command) if file else None) or {}
    if file is not None:
        _check_keys(file, everyone)
    out = []
    for key, action in sorted(actions.items()):
        if action.dest in given:
            out.append(Setting(command, key, getattr(args, action.dest), "command line"))
        elif file is not None and (key in own or key in top):
            scope = command if key in own else None
            where = _where(file, scope, key)
            value = _convert(action, own[key] if key in own else top[key], where, key,
                             file.path.parent)
            setattr(args, action.dest, value)
            out.append(Setting(command, key, value, where))
        else:
            out.append(Setting(command, key, getattr(args, action.dest, None), "default"))
    return out


def _check_keys(file: SettingsFile, commands: dict[str, argparse.ArgumentParser]) -> None:
    """Every key of the file is an option of some command (top) or of its table's command."""
    everything = set().union(*(_actions(p) for p in commands.values()))
    for key, value in file.table.items():
        if isinstance(value, dict):
            if key not in commands:
                raise InputError(f"{_table_where(file, key)}: [{key}] is not a command; "
                                 + did_you_mean(key, sorted(commands), "commands"))
            known = set(_actions(commands[key]))
            for sub in value:
                if sub not in known:
                    raise InputError(f"{_where(file, key, sub)}: {sub} is not an option of "
                                     f"`mlthreat {key}`; "
                                     + did_you_mean(sub, sorted(known), "its options"))
        elif key not in everything:
            raise InputError(f"{_where(file, None, key)}: {key} is not an option of any "
                             "command; " + did_you_mean(key, sorted(everything), "options"))


def start_of(args: argparse.Namespace) -> Path:
    """Where a command's settings are looked for: its spec or first path, else here."""
    for name in ("spec", "dir", "file"):
        if isinstance(getattr(args, name, None), str):
            return Path(getattr(args, name))
    paths: Iterable[str] = getattr(args, "paths", None) or ()
    for p in paths:
        return Path(p)
    return Path.cwd()


__all__ = ["Setting", "SettingsFile", "apply", "commands", "find", "given", "read", "start_of"]
