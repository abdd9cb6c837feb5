"""``carebroker openapi``: print the OpenAPI document of carebroker's HTTP API.

The document is generated from the FastAPI application with the routers of
every role, so it cannot drift from the code; ``docs/openapi.json`` is its
committed copy and ``tests/unit/test_openapi.py`` fails when they differ.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from typing import Any

from fastapi import APIRouter

from broker.health import Readiness
from broker.http import create_app

# Modules whose ``ROUTERS`` a role adds to the HTTP app; add yours here.
ROUTER_MODULES = ("broker.console.role", "broker.metrics", "broker.alerts")


def routers() -> list[APIRouter]:
    """Return the routers of every role."""
    found: list[APIRouter] = []
    for name in ROUTER_MODULES:
        found.extend(importlib.import_module(name).ROUTERS)
    return found


def document() -> dict[str, Any]:
    """Return the OpenAPI document of the whole HTTP API."""
    spec: dict[str, Any] = create_app(Readiness(), routers()).openapi()
    return spec


def render() -> str:
    """Return the document as the committed file holds it."""
    return json.dumps(document(), indent=2, ensure_ascii=False) + "\n"


def register(commands: Any) -> None:
    """Add ``openapi``."""
    parser = commands.add_parser(
        "openapi", help="print the OpenAPI document (carebroker openapi > docs/openapi.json)"
    )
    parser.set_defaults(handler=_print)


def _print(_: argparse.Namespace) -> int:
    sys.stdout.write(render())
    return 0
