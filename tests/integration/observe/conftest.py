"""In-memory OpenTelemetry exporters, installed once per session (the SDK allows one provider)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from broker import telemetry
from broker.settings import Settings


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
