"""``carebroker config check FILE``: validate a partner directory without starting anything."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from broker.directory import load_directory


def register(commands: Any) -> None:
    """Add ``config check``."""
    config = commands.add_parser("config", help="partner directory file tools")
    sub = config.add_subparsers(dest="config_command", metavar="ACTION", required=True)
    check = sub.add_parser("check", help="validate a partner directory file")
    check.add_argument("file", type=Path)
    check.set_defaults(handler=_check)


def _check(args: argparse.Namespace) -> int:
    directory = load_directory(args.file)
    sys.stdout.write(
        f"{args.file}: {len(directory.partners)} partner(s), "
        f"{len(directory.routes)} route(s): valid\n"
    )
    return 0
