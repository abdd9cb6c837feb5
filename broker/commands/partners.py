"""``carebroker partners reload|history``: apply a changed partner file to running processes."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

from broker.commands.connect import operator, stores
from broker.commands.options import add_store_options, settings_from
from broker.directory import load_directory
from broker.directory_sync import summary_text
from broker.errors import ConfigError
from broker.store.directory import HistoryEntry, Version


def register(commands: Any) -> None:
    """Add ``partners reload`` and ``partners history``."""
    partners = commands.add_parser("partners", help="partner directory in the running system")
    sub = partners.add_subparsers(dest="partners_command", metavar="ACTION", required=True)
    reload = sub.add_parser(
        "reload",
        help="validate FILE, store it, and have every running process apply it (no restart)",
    )
    reload.add_argument(
        "--config", type=Path, metavar="FILE", help="partner file (default CAREBROKER_CONFIG)"
    )
    add_store_options(reload)
    reload.set_defaults(handler=_reload)
    history = sub.add_parser("history", help="list stored versions with what each changed")
    history.add_argument("--limit", type=int, default=20)
    add_store_options(history)
    history.set_defaults(handler=_history)


def _reload(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    if settings.config is None:
        raise ConfigError("give the partner file with --config FILE (or CAREBROKER_CONFIG)")
    directory = load_directory(settings.config)  # refused here, before anything changes

    async def apply() -> Version | None:
        async with stores(settings) as found:
            return await found.directory.store(directory, actor=operator())

    stored = asyncio.run(apply())
    if stored is None:
        sys.stdout.write(f"{settings.config}: unchanged (already the current version)\n")
    else:
        sys.stdout.write(
            f"{settings.config}: stored as version {stored.version}; running processes apply "
            f"it now ({summary_text(stored.summary)})\n"
        )
    return 0


def _history(args: argparse.Namespace) -> int:
    settings = settings_from(args)

    async def fetch() -> list[HistoryEntry]:
        async with stores(settings) as found:
            return await found.directory.history(args.limit)

    for row in asyncio.run(fetch()):
        sys.stdout.write(
            f"{row.version:>5}  {row.loaded_at:%Y-%m-%d %H:%M:%S%z}  {row.loaded_by}"
            f"  {row.source}  {summary_text(row.summary)}\n"
        )
    return 0
