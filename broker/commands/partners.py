"""``carebroker partners reload|history``: apply a changed partner file to running processes."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

from broker.commands.connect import operator, store_pool
from broker.commands.options import add_store_options, settings_from
from broker.directory import load_directory
from broker.errors import ConfigError
from routing import directory_store


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

    async def apply() -> directory_store.Version | None:
        async with store_pool(settings) as pool:
            return await directory_store.store(pool, directory, actor=operator())

    stored = asyncio.run(apply())
    if stored is None:
        sys.stdout.write(f"{settings.config}: unchanged (already the current version)\n")
    else:
        sys.stdout.write(
            f"{settings.config}: stored as version {stored.version}; running processes apply "
            f"it now ({directory_store.summary_text(stored.summary)})\n"
        )
    return 0


def _history(args: argparse.Namespace) -> int:
    settings = settings_from(args)

    async def fetch() -> list[Any]:
        async with store_pool(settings) as pool:
            return list(
                await pool.fetch(
                    "SELECT version, loaded_at, loaded_by, source, summary FROM partner_directory"
                    " ORDER BY version DESC LIMIT $1",
                    args.limit,
                )
            )

    for row in asyncio.run(fetch()):
        sys.stdout.write(
            f"{row['version']:>5}  {row['loaded_at']:%Y-%m-%d %H:%M:%S%z}  {row['loaded_by']}"
            f"  {row['source']}  {directory_store.summary_text(row['summary'])}\n"
        )
    return 0
