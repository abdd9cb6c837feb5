"""Options several commands share, and how they override the environment's settings."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from broker.settings import Settings

# flag dest -> Settings field (dotted: a field of a nested model)
_OVERRIDES = {
    "config": "config",
    "mllp_port": "mllp.port",
    "mllp_host": "mllp.host",
    "http_port": "http_port",
    "http_host": "http_host",
    "data_dir": "data_dir",
    "database_url": "database_url",
    "kafka": "kafka_bootstrap_servers",
}


def add_service_options(parser: argparse.ArgumentParser) -> None:
    """Add the flags of commands that start carebroker (`up`, `run`)."""
    parser.add_argument(
        "--config", type=Path, metavar="FILE", help="partner directory YAML (CAREBROKER_CONFIG)"
    )
    parser.add_argument(
        "--mllp-port",
        type=int,
        metavar="N",
        help="MLLP listen port (CAREBROKER_MLLP__PORT, default 2575)",
    )
    parser.add_argument(
        "--mllp-host",
        metavar="HOST",
        help="MLLP listen address (CAREBROKER_MLLP__HOST, default 127.0.0.1)",
    )
    parser.add_argument(
        "--http-port",
        type=int,
        metavar="N",
        help="HTTP listen port (CAREBROKER_HTTP_PORT, default 8080)",
    )
    parser.add_argument(
        "--http-host",
        metavar="HOST",
        help="HTTP listen address (CAREBROKER_HTTP_HOST, default 127.0.0.1)",
    )
    add_store_options(parser)


def add_store_options(parser: argparse.ArgumentParser) -> None:
    """Add the flags that say where PostgreSQL and Kafka are."""
    parser.add_argument(
        "--data-dir",
        type=Path,
        metavar="DIR",
        help="local state and embedded PostgreSQL data "
        "(CAREBROKER_DATA_DIR, default ./.carebroker)",
    )
    parser.add_argument(
        "--database-url", metavar="DSN", help="PostgreSQL DSN (CAREBROKER_DATABASE_URL)"
    )
    parser.add_argument(
        "--kafka",
        metavar="HOST:PORT",
        help="Kafka bootstrap servers (CAREBROKER_KAFKA_BOOTSTRAP_SERVERS)",
    )


def settings_from(args: argparse.Namespace) -> Settings:
    """Read the environment once and apply the command-line overrides.

    Raise ConfigError naming any unknown or invalid ``CAREBROKER_*`` variable.
    """
    overrides: dict[str, Any] = {}
    for dest, field in _OVERRIDES.items():
        value = getattr(args, dest, None)
        if value is None:
            continue
        *groups, name = field.split(".")
        level = overrides
        for group in groups:  # merged with the group's other variables, not replacing them
            level = level.setdefault(group, {})
        level[name] = value
    return Settings.from_environment(**overrides)
