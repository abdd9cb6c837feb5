"""Load a YAML file keeping the line of every value, so errors can name it.

pydantic reports where a value is wrong as a path (``partners.2.endpoint.port``);
operators need ``partners.yaml:23``. :func:`load_yaml` returns the data and a
map from each path to its line, and :func:`describe_errors` turns a
``ValidationError`` into lines that name file, line and field.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from broker.errors import ConfigError

Loc = tuple[str | int, ...]


def load_yaml(path: Path) -> tuple[Any, dict[Loc, int]]:
    """Read ``path``; return (data, {path-in-document: 1-based line})."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: file not found") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot be read ({exc.__class__.__name__})") from exc
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise ConfigError(f"{where}: {problem}") from exc
    lines: dict[Loc, int] = {}
    if node is None:
        return None, lines
    return _to_python(node, (), lines), lines


def _to_python(node: yaml.Node, loc: Loc, lines: dict[Loc, int]) -> Any:
    lines[loc] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = key_node.value
            result[key] = _to_python(value_node, (*loc, key), lines)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_to_python(item, (*loc, i), lines) for i, item in enumerate(node.value)]
    loader = yaml.SafeLoader("")
    try:
        return loader.construct_object(node, deep=True)
    finally:
        loader.dispose()


def line_of(lines: dict[Loc, int], loc: Loc) -> int | None:
    """Return the line of ``loc`` or of its closest enclosing value."""
    while True:
        if loc in lines:
            return lines[loc]
        if not loc:
            return None
        loc = loc[:-1]


def describe_errors(
    path: Path, exc: ValidationError, lines: dict[Loc, int], label: Any = None
) -> str:
    """Render a ValidationError as ``file:line: <label>: field: message`` lines.

    ``label(loc)`` may name the object a path belongs to (``partner 'labo-sud'``).
    """
    rendered = []
    for error in exc.errors(include_input=False, include_url=False):
        loc: Loc = tuple(p for p in error["loc"] if not (isinstance(p, str) and p in _TAGS))
        line = line_of(lines, loc)
        where = f"{path}:{line}" if line else str(path)
        owner = label(loc) if label else None
        field = ".".join(str(p) for p in loc) or "(document)"
        prefix = f"{where}: {owner}: " if owner else f"{where}: "
        rendered.append(f"{prefix}{field}: {error['msg']}")
    return "\n".join(rendered)


# Discriminated-union tags pydantic inserts into error locations.
_TAGS = frozenset({"mllp", "fhir", "mailbox", "function-after", "str", "PartnerRef"})
