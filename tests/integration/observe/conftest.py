"""In-memory OpenTelemetry exporters, installed once per session (the SDK allows one provider)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from types import SimpleNamespace

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from broker import alerts, metrics, telemetry
from broker.settings import Settings
from routing.directory import Directory


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
        pool=pool, settings=settings or Settings(), directory=directory or Directory.empty()
    )
    app.state.lag_probe = lag
    for router in (*metrics.ROUTERS, *alerts.ROUTERS):
        app.include_router(router)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://carebroker"
    ) as client:
        return await client.get(path)
