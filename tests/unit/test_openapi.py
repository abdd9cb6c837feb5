"""docs/openapi.json is the HTTP API as the code defines it."""

from __future__ import annotations

import json

from broker.commands.openapi import document, render
from tests.conftest import REPO

COMMITTED = REPO / "docs" / "openapi.json"
REGENERATE = ".venv/bin/carebroker openapi > docs/openapi.json"


def test_committed_openapi_document_is_current() -> None:
    assert COMMITTED.read_text(encoding="utf-8") == render(), (
        f"docs/openapi.json is out of date; regenerate it with: {REGENERATE}"
    )


def test_console_api_documents_its_authentication() -> None:
    spec = document()
    schemes = spec["components"]["securitySchemes"]
    assert {"APIKeyCookie", "HTTPBearer", "APIKeyHeader"} <= set(schemes)
    assert schemes["APIKeyHeader"]["name"] == "X-CSRF-Token"
    for path in ("/api/session", "/api/users", "/api/flows", "/api/partners/reload"):
        assert path in spec["paths"], path
    # The HTML pages are not part of the API.
    assert not any(path.startswith("/console") for path in spec["paths"])
    json.dumps(spec)  # serialisable as committed
