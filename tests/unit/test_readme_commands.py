"""The README's command table names every command the CLI has, and nothing it lacks."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from broker.cli import build_parser

README = Path(__file__).resolve().parents[2] / "README.md"


def _commands(parser: argparse.ArgumentParser, prefix: str = "") -> set[str]:
    """Every command path (``audit verify``, ``bench ingress`` ...) the parser accepts."""
    found: set[str] = set()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                path = f"{prefix}{name}"
                found.add(path)
                found |= _commands(sub, f"{path} ")
    return found


def _documented() -> str:
    text = README.read_text()
    start = text.index("## Commands\n")
    return text[start : text.index("\n## ", start + 1)]


def test_every_command_is_in_the_readme_command_table() -> None:
    table = _documented()
    groups = {path.split()[0] for path in _commands(build_parser())}
    missing = sorted(g for g in groups if not re.search(rf"`(carebroker )?{g}\b", table))
    assert not missing, f"README.md's Commands table lacks: {', '.join(missing)}"


def test_the_readme_command_table_names_no_command_that_does_not_exist() -> None:
    groups = {path.split()[0] for path in _commands(build_parser())}
    named = set(re.findall(r"`carebroker ([a-z-]+)", _documented()))
    assert named <= groups, f"README.md names commands that do not exist: {named - groups}"
