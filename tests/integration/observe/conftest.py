"""In-memory OpenTelemetry exporters (installed once per session: the SDK allows one provider),
and the whole pipeline running in this process for the tests that follow a message through it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from broker import alerts, metrics, telemetry
from broker.directory import Directory
from broker.settings import Settings
from broker.store import db
from broker.store.db import Database
from broker.store.stores import Stores
from tests.integration.routing.conftest import Pipeline
from tests.sinks import partner_sinks


@dataclass
class Telemetry:
    spans: InMemorySpanExporter
    metrics: InMemoryMetricReader


@pytest.fixture(scope="session")
def _installed() -> Telemetry:
    installed = Telemetry(InMemorySpanExporter(), InMemoryMetricReader())
    telemetry.configure(
        Settings(), span_exporter=installed.spans, metric_readers=[installed.metrics]
    )
    return installed


@pytest.fixture
def otel(_installed: Telemetry) -> Iterator[Telemetry]:
    """The session's in-memory exporters, emptied for this test."""
    _installed.spans.clear()
    yield _installed
    _installed.spans.clear()


async def http_get(
    path: str,
    pool: asyncpg.Pool,
    *,
    settings: Settings | None = None,
    directory: Directory | None = None,
    lag: metrics.LagProbe | None = None,
) -> httpx.Response:
    """GET ``path`` from an app serving /metrics and /api/alerts, set up as broker.app does."""
    app = FastAPI()
    app.state.context = SimpleNamespace(
        stores=Stores.over(Database(pool)),
        settings=settings or Settings(),
        directory=directory or Directory.empty(),
    )
    app.state.lag_probe = lag
    for router in (*metrics.ROUTERS, *alerts.ROUTERS):
        app.include_router(router)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://carebroker"
    ) as client:
        return await client.get(path)


@dataclass
class Flowing:
    """The whole pipeline in this process: MLLP and FHIR ingress to partner sinks."""

    pipeline: Pipeline
    mllp_port: int


@pytest.fixture
async def flowing(settings: Settings, database_url: str, tmp_path: Path) -> AsyncIterator[Flowing]:
    """Run the mllp, fhir, relay, router and delivery roles against real partner sinks.

    The partner file is the shared example with the sinks' ports, FHIR bearer
    tokens for labo-sud and cabinet-dupont, and a route sending everything
    labo-sud sends to cabinet-dupont (HL7 v2) and maison-sante-nord (FHIR), so
    that any message reaches delivery and translation.
    """
    from tests.integration.routing.conftest import partners_yaml, start_pipeline, stop_pipeline
    from tests.integration.routing.test_translation import with_tokens

    async with partner_sinks() as (chu, dupont, fhir):
        partners = tmp_path / "partners.yaml"
        text = partners_yaml(chu.port, dupont.port, fhir.url, EVERYTHING)
        partners.write_text(with_tokens(text))
        pool = await db.connect(database_url, 12)
        running = await start_pipeline(settings, pool, (chu, dupont, fhir), partners, roles=ROLES)
        try:
            mllp = next(s for s in running.services if s.name == "mllp")
            yield Flowing(running, mllp.server.port)  # type: ignore[attr-defined]
        finally:
            await stop_pipeline(running)
            await pool.close()


ROLES = ("relay", "router", "delivery", "mllp", "fhir")
EVERYTHING = """
  - name: everything-from-the-lab
    when: {sender: labo-sud}
    to: [{partner: cabinet-dupont}, {partner: maison-sante-nord}]
"""
