"""OpenTelemetry for carebroker: tracer and meter setup, trace context across Kafka, span helpers.

One trace follows a message across every hop (ingress -> store -> relay ->
Kafka -> router -> delivery). Context travels as W3C Trace Context
(``traceparent``, ``tracestate``): in the envelope's ``trace`` field, in the
outbox row's ``headers`` and so in the Kafka record headers the relay
publishes. Spans follow the OpenTelemetry messaging semantic conventions
(``messaging.system``, ``messaging.operation.type``,
``messaging.destination.name`` ...); span names are ``"<operation> <topic>"``.

Attributes carry ids and codes only, built by ``broker.redact`` (design
invariant 6). Kafka record keys are never span attributes: they are patient
digests.

Export: OTLP over HTTP when ``otlp_endpoint`` is set, nothing otherwise (the
API then costs almost nothing). Tests install in-memory exporters with
:func:`configure`. ``docs/internals.md`` ("Telemetry") says how to add a span
or a metric to a hop.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any

from opentelemetry import metrics, propagate, trace
from opentelemetry.context import Context
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExporter,
)
from opentelemetry.trace import Link, Span, SpanKind

from broker.settings import Settings

TRACER_NAME = "carebroker"
TRACE_HEADERS = ("traceparent", "tracestate")
SYSTEM = "kafka"
# `messaging.system` of the partner-facing hops (not registered systems: HL7 v2 over
# MLLP, FHIR messaging over HTTP, carebroker's mailbox).
_PROTOCOLS = {
    "mllp": "hl7v2",
    "fhir": "fhir",
    "mailbox": "carebroker-mailbox",
    "directory": "file",
}


def configure(
    settings: Settings,
    *,
    span_exporter: SpanExporter | None = None,
    metric_readers: Sequence[MetricReader] = (),
) -> None:
    """Install carebroker's tracer and meter providers (once per process; later calls add).

    OTLP/HTTP export to ``settings.otlp_endpoint`` when set; with no endpoint
    and no test exporter nothing is installed. ``span_exporter``
    and ``metric_readers`` are for tests (in-memory). A second call adds its
    span exporter to the installed provider; metric readers can only be given
    the first time (the SDK fixes them at construction).
    """
    if not settings.otlp_endpoint and span_exporter is None and not metric_readers:
        # Nobody collects: keep the API's no-op providers. Context still
        # propagates (a no-op span carries its parent's context), at no cost.
        return
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        resource = Resource.create(
            {
                "service.name": "carebroker",
                "service.instance.id": f"{socket.gethostname()}:{os.getpid()}",
            }
        )
        provider = TracerProvider(resource=resource)
        trace.set_tracer_provider(provider)
        readers = list(metric_readers)
        if settings.otlp_endpoint:
            from opentelemetry.exporter.otlp.proto.http.metric_exporter import (
                OTLPMetricExporter,
            )
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            base = settings.otlp_endpoint.rstrip("/")
            provider.add_span_processor(
                BatchSpanProcessor(OTLPSpanExporter(endpoint=f"{base}/v1/traces"))
            )
            readers.append(
                PeriodicExportingMetricReader(OTLPMetricExporter(endpoint=f"{base}/v1/metrics"))
            )
        metrics.set_meter_provider(MeterProvider(resource=resource, metric_readers=readers))
    if span_exporter is not None:
        provider.add_span_processor(SimpleSpanProcessor(span_exporter))


def is_recording() -> bool:
    """Tell whether spans are collected (an SDK provider is installed), so worth making."""
    return isinstance(trace.get_tracer_provider(), TracerProvider)


def shutdown() -> None:
    """Flush and stop exporters (at process exit)."""
    provider = trace.get_tracer_provider()
    if isinstance(provider, TracerProvider):
        provider.shutdown()
    meter_provider = metrics.get_meter_provider()
    if isinstance(meter_provider, MeterProvider):
        meter_provider.shutdown()


def tracer() -> trace.Tracer:
    """Return carebroker's tracer (a no-op one until :func:`configure`)."""
    return trace.get_tracer(TRACER_NAME)


def meter() -> metrics.Meter:
    """Return carebroker's meter (a no-op one until :func:`configure`)."""
    return metrics.get_meter(TRACER_NAME)


# --- trace context across hops ----------------------------------------------------


def current_context() -> dict[str, str]:
    """Return the active span's W3C trace context (empty when there is none)."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return {k: v for k, v in carrier.items() if k in TRACE_HEADERS}


def extract(carrier: Mapping[str, str] | None) -> Context:
    """Return the OpenTelemetry context a W3C carrier (envelope ``trace``, headers) holds."""
    return propagate.extract(dict(carrier or {}))


def to_kafka_headers(carrier: Mapping[str, str] | None) -> list[tuple[str, bytes]]:
    """Return Kafka record headers for a W3C carrier."""
    return [(k, v.encode()) for k, v in (carrier or {}).items()]


def from_kafka_headers(headers: Sequence[tuple[str, bytes]] | None) -> dict[str, str]:
    """Return the W3C carrier held in Kafka record headers (other headers ignored)."""
    return {k: v.decode("ascii", "replace") for k, v in (headers or ()) if k in TRACE_HEADERS and v}


def has_context(carrier: Mapping[str, str] | None) -> bool:
    """Tell whether a carrier holds a valid trace context."""
    span = trace.get_current_span(extract(carrier))
    return span.get_span_context().is_valid


# --- span helpers (messaging semantic conventions) ----------------------------------


def messaging_attributes(
    operation: str, topic: str, *, partition: int | None = None, group: str | None = None
) -> dict[str, Any]:
    """Return the messaging attributes of a Kafka operation (``send``, ``receive``, ``process``)."""
    attributes: dict[str, Any] = {
        "messaging.system": SYSTEM,
        "messaging.operation.type": operation,
        "messaging.operation.name": operation,
        "messaging.destination.name": topic,
    }
    if partition is not None:
        attributes["messaging.destination.partition.id"] = str(partition)
    if group is not None:
        attributes["messaging.consumer.group.name"] = group
    return attributes


@contextmanager
def send_span(
    topic: str,
    carrier: Mapping[str, str] | None = None,
    *,
    partition: int | None = None,
    attributes: Mapping[str, Any] | None = None,
    batch: int | None = None,
) -> Iterator[Span]:
    """Trace publishing to ``topic``, as a child of ``carrier``'s context when it has one."""
    attrs = messaging_attributes("send", topic, partition=partition)
    if batch is not None:
        attrs["messaging.batch.message_count"] = batch
    attrs.update(attributes or {})
    context = extract(carrier) if carrier else None
    with tracer().start_as_current_span(
        f"send {topic}", context=context, kind=SpanKind.PRODUCER, attributes=attrs
    ) as span:
        yield span


@contextmanager
def process_span(
    topic: str,
    group: str,
    carrier: Mapping[str, str] | None,
    *,
    partition: int | None = None,
    attributes: Mapping[str, Any] | None = None,
) -> Iterator[Span]:
    """Trace consuming one record: a child of the producer's span, found in the headers.

    Use around a consumer's handling of one record (router, delivery), with
    ``carrier = from_kafka_headers(record.headers)`` or the envelope's ``trace``.
    """
    span = start_process_span(topic, group, carrier, partition=partition, attributes=attributes)
    with trace.use_span(span, end_on_exit=True):
        yield span


def start_process_span(
    topic: str,
    group: str,
    carrier: Mapping[str, str] | None,
    *,
    partition: int | None = None,
    attributes: Mapping[str, Any] | None = None,
) -> Span:
    """Start, without making it current, the ``process`` span of one record; the caller ends it.

    For a consumer that handles a batch in one transaction (the router): one
    span per record, each in its record's trace, ended once the batch commits.
    """
    attrs = messaging_attributes("process", topic, partition=partition, group=group)
    attrs.update(attributes or {})
    parent = extract(carrier)
    producer = trace.get_current_span(parent).get_span_context()
    links = [Link(producer)] if producer.is_valid else []
    return tracer().start_span(
        f"process {topic}", context=parent, kind=SpanKind.CONSUMER, attributes=attrs, links=links
    )


def context_of(span: Span) -> dict[str, str]:
    """Return the W3C trace context of ``span`` (to hand on in an outbox row or a table)."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier, context=trace.set_span_in_context(span))
    return {k: v for k, v in carrier.items() if k in TRACE_HEADERS}


def ingress_span(
    channel: str, attributes: Mapping[str, Any] | None = None
) -> AbstractContextManager[Span]:
    """Trace one input from a partner (an MLLP frame, a FHIR request): a trace starts here.

    The span is the root of the message's trace; the ingress puts its context
    in the envelope (``Envelope.trace``), and the store in the outbox headers.
    """
    return _partner_span(
        f"ingress {channel}", SpanKind.SERVER, "receive", channel, None, attributes
    )


def deliver_span(
    recipient: str,
    protocol: str,
    carrier: Mapping[str, str] | None,
    attributes: Mapping[str, Any] | None = None,
) -> AbstractContextManager[Span]:
    """Trace one delivery attempt to a partner, as a child of the span that routed it.

    ``carrier`` is the delivery's stored trace context (``deliveries.trace``):
    the attempt joins the message's trace whenever and wherever it happens.
    """
    return _partner_span(
        f"send {recipient}",
        SpanKind.CLIENT,
        "send",
        protocol,
        carrier,
        {"messaging.destination.name": recipient, **(attributes or {})},
    )


@contextmanager
def _partner_span(
    name: str,
    kind: SpanKind,
    operation: str,
    protocol: str,
    carrier: Mapping[str, str] | None,
    attributes: Mapping[str, Any] | None,
) -> Iterator[Span]:
    """Trace a hop that talks to a partner (messaging conventions, the partner's protocol).

    On the hot paths: when nobody collects spans it costs one type check
    instead of ~8 µs a message.
    """
    if not is_recording():
        yield trace.INVALID_SPAN
        return
    attrs: dict[str, Any] = {
        "messaging.system": _PROTOCOLS.get(protocol, protocol),
        "messaging.operation.type": operation,
        "messaging.operation.name": operation,
        "network.protocol.name": protocol,
        **(attributes or {}),
    }
    context = extract(carrier) if carrier is not None else None
    with tracer().start_as_current_span(name, context=context, kind=kind, attributes=attrs) as span:
        yield span


@contextmanager
def internal_span(
    name: str,
    attributes: Mapping[str, Any] | None = None,
    *,
    links: Sequence[Mapping[str, str]] = (),
) -> Iterator[Span]:
    """Trace a step inside one process (a store transaction, a translation).

    ``links``: trace contexts of the messages a batched step works for (a group
    commit serves many ingress traces at once; it links to each rather than
    belonging to one).
    """
    linked = [Link(c) for c in (_span_context(carrier) for carrier in links) if c.is_valid]
    with tracer().start_as_current_span(
        name, attributes=dict(attributes or {}), links=linked
    ) as span:
        yield span


def _span_context(carrier: Mapping[str, str]) -> trace.SpanContext:
    return trace.get_current_span(extract(carrier)).get_span_context()
