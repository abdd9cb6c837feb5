"""No patient data in logs, spans, metrics or the audit trail (design invariant 6).

Every HL7 v2 message of the corpus goes through what exists of the pipeline
on this branch, the way the ingress drives it: charset decoding, the lazy
reader and the routing extraction (``adapters.hl7v2``), the message store
(accept, or reject with the reader's error text), the relay to Kafka, the
audit writer, the audit exports and ``/metrics``. Logs are captured at DEBUG
with carebroker's own formatter, spans and OpenTelemetry metrics with the
in-memory exporters. Then each patient's names (PID-5, PID-6, PID-9, NK1-2),
identifiers (PID-2/3/4/18/19/20), birth date (PID-7), address (PID-11) and
phone numbers (PID-13/14) are looked for in all of it.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import re
from pathlib import Path

import asyncpg

from adapters.hl7v2 import charset
from adapters.hl7v2.er7 import Message
from adapters.hl7v2.extract import build_envelope
from broker import kafka, logs, metrics, redact
from broker.audit_export import to_atna, to_fhir
from broker.errors import MessageError
from broker.ids import new_id_at
from broker.pseudonym import Pseudonymizer
from broker.relay import Relay
from broker.settings import Settings
from broker.store import audit
from broker.store.audit import AuditWriter
from broker.store.messages import Accepted, MessageStore, Rejected
from tests.conftest import CORPUS, wait_for
from tests.integration.observe.conftest import Telemetry, http_get

PSEUDO = Pseudonymizer(b"k" * 32)
_NOISY = ("aiokafka", "faststream", "uvicorn", "uvicorn.error", "asyncio")  # as logs.configure
log = logging.getLogger("broker.ingress")  # as the ingress will log

# (segment, field, components to read) holding patient data.
_PHI_FIELDS = {
    "PID": {2: (1,), 3: (1,), 4: (1,), 5: (1, 2, 3), 6: (1, 2), 7: (1,), 9: (1, 2),
            11: (1, 2, 3, 5), 13: (1,), 14: (1,), 18: (1,), 19: (1,), 20: (1,)},
    "NK1": {2: (1, 2), 4: (1, 3), 5: (1,)},
}  # fmt: skip
# Values too short or too common to mean anything when found (a 1-digit id, "M").
_MIN_LENGTH = 4
_NOT_PHI = {"unknown", "other", "true", "false", "none", "null", "test", "home", "work"}


def corpus_files() -> list[Path]:
    return sorted(CORPUS.rglob("*.hl7"))


def patient_values(raw: bytes) -> set[str]:
    """Return the patient data of a message, read with a plain split (no carebroker code)."""
    text = raw.decode("utf-8", "replace") if raw else ""
    values: set[str] = set()
    for line in re.split(r"\r\n|\r|\n", text):
        fields = line.split("|")
        wanted = _PHI_FIELDS.get(fields[0][-3:] if fields else "")
        if not wanted or fields[1:2] == ["^~\\&"]:  # an MSH named otherwise (malformed input)
            continue
        for number, components in wanted.items():
            if number >= len(fields):
                continue
            for repetition in fields[number].split("~"):
                parts = repetition.split("^")
                for c in components:
                    if c <= len(parts):
                        value = parts[c - 1].split("&")[0].strip()
                        if len(value) >= _MIN_LENGTH and value.casefold() not in _NOT_PHI:
                            values.add(value)
                            if number == 7 and re.fullmatch(r"\d{8}.*", value):
                                values.add(f"{value[:4]}-{value[4:6]}-{value[6:8]}")
    return values


def leaks(haystack: str, values: set[str], allowed: set[str]) -> list[str]:
    """Return the values found in ``haystack`` as whole words (``1000`` is not in ``10001``)."""
    return sorted(
        f"{v!r} in ...{haystack[max(0, m.start() - 40) : m.end() + 40]!r}..."
        for v in values - allowed
        if (m := re.search(rf"(?<![\w-]){re.escape(v)}(?![\w-])", haystack))
    )


async def run_corpus(
    pool: asyncpg.Pool, settings: Settings
) -> tuple[dict[str, set[str]], set[str]]:
    """Feed every corpus message through the pipeline; return patient values and allowed ids."""
    store = MessageStore(pool, topic_prefix=settings.kafka_topic_prefix)
    found: dict[str, set[str]] = {}
    allowed: set[str] = set()  # ids the design lets through even if they look like PHI
    for path in corpus_files():
        raw = path.read_bytes()
        found[str(path.relative_to(CORPUS))] = patient_values(raw)
        message_id, at = new_id_at()
        try:
            text, codec = charset.decode(raw)
            message = Message(text)
            env = build_envelope(
                message,
                payload=raw,
                codec=codec,
                sender="labo-sud",
                channel="mllp",
                message_id=message_id,
                received_at=at,
                pseudonymizer=PSEUDO,
            )
        except MessageError as exc:
            log.warning("message rejected: %s", exc, extra={"message_id": str(message_id)})
            await store.reject(
                [Rejected(message_id, at, "mllp", "hl7v2", raw, str(exc), sender="labo-sud")]
            )
            continue
        allowed.add(env.control_id)
        log.info("message accepted", extra=redact.metadata(env))
        await store.accept([Accepted(env, b"ACK")])
    return found, allowed


async def test_no_patient_data_reaches_logs_spans_metrics_or_the_audit_trail(
    pool: asyncpg.Pool, settings: Settings, otel: Telemetry
) -> None:
    # carebroker's own logging set-up, at its most verbose, written to a buffer.
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    noisy = {name: logging.getLogger(name).level for name in _NOISY}
    logs.configure("DEBUG")
    captured = io.StringIO()
    root.handlers[0].setStream(captured)  # type: ignore[attr-defined]
    try:
        found, allowed = await run_corpus(pool, settings)
        await kafka.ensure_topics(settings)
        producer = kafka.Producer(settings)
        await producer.start()
        stop = asyncio.Event()
        relay = asyncio.create_task(Relay(pool, producer, settings.outbox_shards).run(stop))
        try:
            await wait_for(lambda: pool.fetchval("SELECT count(*) = 0 FROM outbox"), timeout=60)
        finally:
            stop.set()
            await relay
            await producer.stop()
        await AuditWriter(pool).drain_all()
        lag = metrics.LagProbe(settings)
        scraped = (await http_get("/metrics", pool, settings=settings, lag=lag)).text
    finally:
        root.handlers[:], root.level = saved
        for name, level in noisy.items():
            logging.getLogger(name).setLevel(level)

    values = set().union(*found.values())
    # The check can fail: the corpus is full of patient data, and the store holds it.
    assert len(values) > 200, sorted(values)[:20]
    payloads = b"\n".join(r["data"] for r in await pool.fetch("SELECT data FROM payloads"))
    assert leaks(payloads.decode("utf-8", "replace"), values, allowed)

    rows = await audit.read(pool, limit=100_000)
    assert len(rows) == len(found)
    places = {
        "logs": captured.getvalue(),
        "spans": "\n".join(s.to_json() for s in otel.spans.get_finished_spans()),
        "metrics (/metrics)": scraped,
        "metrics (OpenTelemetry)": (otel.metrics.get_metrics_data() or "").__str__(),
        "audit rows": "\n".join(repr(r) for r in rows),
        "FHIR AuditEvent export": "\n".join(json.dumps(to_fhir(r)) for r in rows),
        "ATNA export": "\n".join(to_atna(r) for r in rows),
        "rejection reasons": "\n".join(
            r["reason"] for r in await pool.fetch("SELECT reason FROM messages WHERE reason <> ''")
        ),
    }
    assert "message accepted" in places["logs"] and "message rejected" in places["logs"]
    assert len(otel.spans.get_finished_spans()) >= len(found)
    problems = {
        where: found_here
        for where, text in places.items()
        if (found_here := leaks(text, values, allowed))
    }
    assert problems == {}, json.dumps(problems, indent=1)
