"""No patient data in logs, spans, metrics or the audit trail (design invariant 6).

The whole pipeline runs in this process on real services (``flowing``): every
HL7 v2 file of the corpus is sent over MLLP with python-hl7's client to the
real ingress (MSH-4 set to ``labo-sud``, so most are accepted), every FHIR
example goes through the real gateway as ``labo-sud``; the router routes them
(a route sends everything from the lab to an HL7 v2 and a FHIR partner, so
they are translated both ways) and delivery hands them to partner sinks. Then
the audit writer chains the trail, which is exported, and ``/metrics`` is
scraped. Logs are captured at DEBUG with carebroker's own formatter, spans and
OpenTelemetry metrics with the in-memory exporters. Each patient's names
(PID-5, PID-6, PID-9, NK1-2; Patient.name), identifiers (PID-2/3/4/18/19/20;
Patient.identifier), birth date, address and phone numbers are looked for in
all of it, and in what operators read (rejection reasons, delivery errors).
"""

from __future__ import annotations

import asyncio
import dataclasses
import io
import json
import logging
import re
from pathlib import Path

from hl7.mllp import open_hl7_connection

from broker import logs, metrics
from broker.audit_export import to_atna, to_fhir
from broker.store import audit
from broker.store.audit import AuditWriter
from tests.conftest import CORPUS, wait_for
from tests.integration.mllp.test_mllp_corpus import with_facility
from tests.integration.observe.conftest import Flowing, Telemetry, http_get
from tests.integration.test_fhir_gateway import LAB_TOKEN
from tests.messages import ORU

PROBE = ORU.replace(b"\n", b"\r")
_NOISY = ("aiokafka", "faststream", "uvicorn", "uvicorn.error", "asyncio")  # as logs.configure

# (segment, field, components to read) holding patient data.
_PHI_FIELDS = {
    "PID": {2: (1,), 3: (1,), 4: (1,), 5: (1, 2, 3), 6: (1, 2), 7: (1,), 9: (1, 2),
            11: (1, 2, 3, 5), 13: (1,), 14: (1,), 18: (1,), 19: (1,), 20: (1,)},
    "NK1": {2: (1, 2), 4: (1, 3), 5: (1,)},
}  # fmt: skip
# Values too short or too common to mean anything when found (a 1-digit id, "M").
_MIN_LENGTH = 4
_NOT_PHI = {"unknown", "other", "true", "false", "none", "null", "test", "home", "work", "patient"}
# A number this short (a PID-3 of "1000") is also an audit sequence number or a count.
_MIN_DIGITS = 5


def _means_something(value: str) -> bool:
    """Tell whether finding ``value`` would mean a leak, not a coincidence."""
    if len(value) < (_MIN_DIGITS if value.isdigit() else _MIN_LENGTH):
        return False
    return value.casefold() not in _NOT_PHI


def corpus_files() -> list[Path]:
    return sorted(CORPUS.rglob("*.hl7"))


def fhir_files() -> list[Path]:
    return sorted(CORPUS.glob("fhir-r4-examples/*.json")) + sorted(
        CORPUS.glob("fhir-referral-nhs-bars/*.json")
    )


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
                        if _means_something(value):
                            values.add(value)
                            if number == 7 and re.fullmatch(r"\d{8}.*", value):
                                values.add(f"{value[:4]}-{value[4:6]}-{value[6:8]}")
    return values


def fhir_patient_values(document: object) -> set[str]:
    """Return the names, identifiers, birth dates, phones and addresses of every Patient."""
    values: set[str] = set()

    def keep(value: object) -> None:
        text = str(value).strip() if value is not None else ""
        if _means_something(text):
            values.add(text)

    def walk(node: object) -> None:
        if isinstance(node, list):
            for item in node:
                walk(item)
            return
        if not isinstance(node, dict):
            return
        if node.get("resourceType") == "Patient":
            for name in node.get("name", []):
                keep(name.get("family"))
                for given in name.get("given", []):
                    keep(given)
            for ident in node.get("identifier", []):
                keep(ident.get("value"))
            keep(node.get("birthDate"))
            for point in node.get("telecom", []):
                keep(point.get("value"))
            for address in node.get("address", []):
                for line in address.get("line", []):
                    keep(line)
                keep(address.get("postalCode"))
        for value in node.values():
            walk(value)

    walk(document)
    return values


_PEER = re.compile(r"127\.0\.0\.1:\d+")


def leaks(haystack: str, values: set[str], allowed: set[str]) -> list[str]:
    """Return the values found in ``haystack`` as whole words (``1000`` is not in ``10001``).

    Peers' addresses are recorded on purpose and are no patient data: their
    ephemeral ports (a postal code such as 50112 can be one) are left out.
    """
    haystack = _PEER.sub("127.0.0.1:PORT", haystack)
    return sorted(
        f"{v!r} in ...{haystack[max(0, m.start() - 40) : m.end() + 40]!r}..."
        for v in values - allowed
        # A plain substring test first: thousands of values over megabytes of spans.
        if v in haystack and (m := re.search(rf"(?<![\w-]){re.escape(v)}(?![\w-])", haystack))
    )


def as_text(row: audit.Row) -> str:
    """Return an audit row as an operator reads it (times as ISO text, hashes in hex)."""
    fields = {**dataclasses.asdict(row), "prev_hash": row.prev_hash.hex(), "hash": row.hash.hex()}
    return json.dumps(fields, default=str)


async def send_v2_corpus(flowing: Flowing) -> dict[str, set[str]]:
    """Send every HL7 v2 file over MLLP, each followed by a probe; return patient values.

    Eight senders at a time, one connection each, as partners' systems do.
    """
    found: dict[str, set[str]] = {"probe": patient_values(PROBE)}
    gate = asyncio.Semaphore(8)

    async def send(number: int, path: Path) -> None:
        raw = with_facility(path.read_bytes(), b"LABO-SUD")
        found[str(path.relative_to(CORPUS))] = patient_values(raw)
        async with gate:
            reader, writer = await open_hl7_connection(
                "127.0.0.1", flowing.mllp_port, limit=1 << 24
            )
            try:
                writer.writeblock(raw)
                # One ordered stream: once the probe is answered, so was the file.
                probe = f"PROBE-{number}"
                writer.writeblock(PROBE.replace(b"|LS-0001|", f"|{probe}|".encode()))
                await writer.drain()
                async with asyncio.timeout(60):
                    while f"MSA|AA|{probe}".encode() not in bytes(await reader.readblock()):
                        pass
            finally:
                writer.close()

    await asyncio.gather(*(send(n, path) for n, path in enumerate(corpus_files())))
    return found


async def send_fhir_corpus(flowing: Flowing) -> tuple[dict[str, set[str]], list[int]]:
    """POST every FHIR example to the gateway as labo-sud; return patient values, statuses."""
    found: dict[str, set[str]] = {}
    statuses = []
    headers = {"Authorization": f"Bearer {LAB_TOKEN}", "Content-Type": "application/fhir+json"}
    async with flowing.pipeline.api() as api:
        for path in fhir_files():
            data = path.read_bytes()
            document = json.loads(data)
            found[str(path.relative_to(CORPUS))] = fhir_patient_values(document)
            kind, bundle_type = document["resourceType"], document.get("type")
            target = (
                "$process-message"
                if kind == "Bundle" and bundle_type == "message"
                else ""
                if kind == "Bundle" and bundle_type == "transaction"
                else kind
            )
            # Other resource types go to /fhir/<type> too: refused (404), and kept.
            response = await api.post(f"/fhir/{target}", content=data, headers=headers)
            statuses.append(response.status_code)
    return found, statuses


async def test_no_patient_data_reaches_logs_spans_metrics_or_the_audit_trail(
    flowing: Flowing, otel: Telemetry
) -> None:
    pipeline = flowing.pipeline
    pool = pipeline.pool
    # carebroker's own logging set-up, at its most verbose, written to a buffer.
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    noisy = {name: logging.getLogger(name).level for name in _NOISY}
    logs.configure("DEBUG")
    captured = io.StringIO()
    root.handlers[0].setStream(captured)  # type: ignore[attr-defined]
    try:
        found = await send_v2_corpus(flowing)
        fhir_found, statuses = await send_fhir_corpus(flowing)
        found.update(fhir_found)

        async def settled() -> bool:
            return bool(
                await pool.fetchval(
                    "SELECT NOT EXISTS (SELECT 1 FROM messages WHERE status = 'accepted')"
                    " AND NOT EXISTS (SELECT 1 FROM deliveries WHERE status = 'pending'"
                    " AND posted_at IS NULL)"
                )
            )

        await wait_for(settled, timeout=180, interval=0.5)
        await AuditWriter(pool).drain_all()
        lag = metrics.LagProbe(pipeline.settings)
        scraped = (await http_get("/metrics", pool, settings=pipeline.settings, lag=lag)).text
    finally:
        root.handlers[:], root.level = saved
        for name, level in noisy.items():
            logging.getLogger(name).setLevel(level)

    values = set().union(*found.values())
    # The check can fail: the corpus is full of patient data, the store holds it, and
    # the partners received it (translated too), through every hop checked below.
    assert len(values) > 250, sorted(values)[:20]
    allowed = {r["control_id"] for r in await pool.fetch("SELECT control_id FROM messages")}
    payloads = b"\n".join(r["data"] for r in await pool.fetch("SELECT data FROM payloads"))
    assert leaks(payloads.decode("utf-8", "replace"), values, allowed)
    assert leaks("\n".join(r.text for r in pipeline.dupont.received), values, allowed)
    assert leaks(json.dumps(pipeline.fhir.bundles), values, allowed)
    counts = {
        r["status"]: r["n"]
        for r in await pool.fetch("SELECT status, count(*) AS n FROM messages GROUP BY status")
    }
    assert counts.get("routed", 0) > 100 and counts.get("rejected", 0) > 10, counts
    assert (201 in statuses and 200 in statuses and 400 in statuses) or 404 in statuses, statuses
    translated = await pool.fetchval(
        "SELECT count(*) FROM deliveries WHERE 'translated' = ANY(flags)"
    )
    assert translated > 50

    rows = await audit.read(pool, limit=200_000)
    spans = otel.spans.get_finished_spans()
    names = {s.name for s in spans}
    assert {
        "ingress mllp",
        "ingress fhir",
        "send cabinet-dupont",
        "send maison-sante-nord",
    } <= names
    places = {
        "logs": captured.getvalue(),
        "spans": "\n".join(s.to_json() for s in spans),
        "metrics (/metrics)": scraped,
        "metrics (OpenTelemetry)": (otel.metrics.get_metrics_data() or "").__str__(),
        "audit rows": "\n".join(as_text(r) for r in rows),
        "FHIR AuditEvent export": "\n".join(json.dumps(to_fhir(r)) for r in rows),
        "ATNA export": "\n".join(to_atna(r) for r in rows),
        "rejection reasons": "\n".join(
            r["reason"] for r in await pool.fetch("SELECT reason FROM messages WHERE reason <> ''")
        ),
        "delivery errors": "\n".join(
            r["last_error"]
            for r in await pool.fetch("SELECT last_error FROM deliveries WHERE last_error <> ''")
        ),
        "application ACK reasons": "\n".join(
            r["reason"] for r in await pool.fetch("SELECT reason FROM app_acks WHERE reason <> ''")
        ),
    }
    assert "message refused" in places["logs"] and "fhir message accepted" in places["logs"]
    assert {r.kind for r in rows} >= {"received", "rejected", "routed", "translated", "delivered"}
    problems = {
        where: found_here
        for where, text in places.items()
        if (found_here := leaks(text, values, allowed))
    }
    assert problems == {}, json.dumps(problems, indent=1)
