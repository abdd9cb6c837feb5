"""An operator finds a message from a terminal: `carebroker messages search` and `show --audit`.

Real processes: ``carebroker run`` with the ingress, pipeline, audit and
console roles against this test's PostgreSQL and the session's Kafka; an
ORU^R01 sent over MLLP, delivered to a real MLLP partner and a real FHIR
partner; users and API tokens made with ``carebroker users``; then the
``messages`` commands, as installed, over the HTTP API.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
from pathlib import Path

import asyncpg
import pytest

from adapters.hl7v2.mllp import MllpClient
from tests.conftest import wait_for
from tests.e2e.conftest import Running, carebroker_command, start_carebroker
from tests.e2e.console import PASSWORD
from tests.e2e.test_delivery_kill import healthy
from tests.integration.routing.conftest import CommandResult, partners_yaml
from tests.messages import ORU
from tests.sinks import FhirSink, MllpSink

pytestmark = pytest.mark.e2e
ROLES = ("mllp", "relay", "router", "delivery", "audit", "console")


async def run(*args: str, env: dict[str, str] | None = None, stdin: str = "") -> CommandResult:
    """Run the installed command without blocking the partner sinks in this event loop."""
    process = await asyncio.create_subprocess_exec(
        *carebroker_command(),
        *args,
        env={
            **{k: v for k, v in os.environ.items() if not k.startswith("CAREBROKER_")},
            **(env or {}),
        },
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate(stdin.encode())
    assert process.returncode is not None
    return CommandResult(process.returncode, out.decode(), err.decode())


async def token_for(database_url: str, name: str, role: str) -> str:
    db = ("--database-url", database_url)
    added = await run("users", "add", name, "--role", role, "--password-stdin", *db, stdin=PASSWORD)
    assert added.status == 0, added.err
    made = await run("users", "token", name, "--days", "1", *db)
    assert made.status == 0, made.err
    return made.out.strip()


async def test_an_operator_finds_a_message_and_reads_its_timeline_from_the_terminal(
    tmp_path: Path,
    carebroker: list[Running],
    database_url: str,
    kafka_bootstrap: str,
    topic_prefix: str,
) -> None:
    chu, dupont, fhir = MllpSink("chu"), MllpSink("dupont"), FhirSink()
    for sink in (chu, dupont, fhir):
        await sink.start()
    partners = tmp_path / "partners.yaml"
    partners.write_text(partners_yaml(chu.port, dupont.port, fhir.url))
    env = {
        "CAREBROKER_DATABASE_URL": database_url,
        "CAREBROKER_KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "CAREBROKER_KAFKA_FETCH_MAX_WAIT_MS": "10",  # tansu holds fetches: see Settings
        "CAREBROKER_KAFKA_TOPIC_PREFIX": topic_prefix,
        "CAREBROKER_KAFKA_PARTITIONS": "2",
    }
    roles = [arg for role in ROLES for arg in ("--role", role)]
    running = start_carebroker(tmp_path, *roles, "--config", str(partners), env=env, command="run")
    carebroker.append(running)
    pool = await asyncpg.connect(database_url)
    try:
        await healthy(running)
        client = MllpClient("127.0.0.1", running.mllp_port, timeout_s=30)
        await client.connect()
        assert b"MSA|AA|LS-0001" in await client.send(ORU)
        await client.close()

        async def delivered_twice_and_chained() -> bool:
            return (
                await pool.fetchval("SELECT count(*) FROM deliveries WHERE status = 'delivered'")
                == 2
                and await pool.fetchval("SELECT count(*) FROM audit_pending") == 0
            )

        await wait_for(delivered_twice_and_chained, timeout=60, interval=0.3)

        operator = {"CAREBROKER_API_TOKEN": await token_for(database_url, "olga", "operator")}
        url = ("--url", running.url)
        found = await run("messages", "search", "--control-id", "LS-0001", *url, env=operator)
        assert found.status == 0, found.err
        header, row = found.out.splitlines()
        assert header.split()[:4] == ["RECEIVED", "(UTC)", "ID", "SENDER"]
        assert " labo-sud " in row and " LS-0001 " in row and " ORU^R01 " in row
        assert "delivered:2" in row and "cabinet-dupont,maison-sante-nord" in row
        assert found.err == "1 message(s)\n"
        message_id = row.split()[2]

        listed = await run(
            "messages", "search", "--sender", "labo-sud", "--since", "1h", "--json", *url,
            env=operator,
        )  # fmt: skip
        assert listed.status == 0, listed.err
        assert [m["id"] for m in json.loads(listed.out)["messages"]] == [message_id]

        # A patient search, the identifier read from standard input (not the command line).
        patient = await run(
            "messages", "search", "--patient", "1.2.250.1.999.1|-", *url,
            env=operator, stdin="LS-PAT-42\n",
        )  # fmt: skip
        assert patient.status == 0, patient.err
        assert message_id in patient.out
        searched = await pool.fetchval(
            "SELECT count(*) FROM audit_pending WHERE event->>'kind' = 'patient_searched'"
            " AND event->>'actor' = 'user:olga'"
        ) + await pool.fetchval(
            "SELECT count(*) FROM audit WHERE kind = 'patient_searched' AND actor = 'user:olga'"
        )
        assert searched == 1

        shown = await run("messages", "show", message_id, "--audit", *url, env=operator)
        assert shown.status == 0, shown.err
        lines = shown.out.splitlines()
        assert "status:      routed" in lines
        deliveries = {line.split()[0]: line.split() for line in lines if "delivered" in line}
        assert deliveries["cabinet-dupont"][1:5] == ["delivered", "1", "ordering-provider", "AA"]
        assert deliveries["maison-sante-nord"][1:4] == ["delivered", "1", "copies-to"]
        timeline = lines[lines.index(next(x for x in lines if x.startswith("TIME (UTC)"))) + 1 :]
        hops = [(line.split()[2], line.split()[4]) for line in timeline]
        assert hops[0] == ("received", "-")
        assert ("routed", "cabinet-dupont") in hops and ("routed", "maison-sante-nord") in hops
        assert hops.index(("routed", "cabinet-dupont")) < hops.index(
            ("delivered", "cabinet-dupont")
        )
        assert hops.index(("routed", "maison-sante-nord")) < hops.index(
            ("delivered", "maison-sante-nord")
        )
        assert all(line.split()[-2].count("-") == 2 for line in timeline)  # chained: day #seq

        viewer = {"CAREBROKER_API_TOKEN": await token_for(database_url, "victor", "viewer")}
        refused = await run(
            "messages", "search", "--patient", "1.2.250.1.999.1|LS-PAT-42", *url, env=viewer
        )
        assert refused.status == 1
        assert refused.err == (
            "carebroker: error: the API refused (403): a patient search needs the operator role"
            " (you are viewer)\n"
        )
        no_token = await run("messages", "search", *url)
        assert no_token.status == 2 and "CAREBROKER_API_TOKEN" in no_token.err
        revoked = await run("messages", "search", *url, env={"CAREBROKER_API_TOKEN": "nope"})
        assert revoked.status == 1 and "(401)" in revoked.err and "users token" in revoked.err
        running.stop(signal.SIGTERM)
        assert running.process.returncode == 0, running.output()
        gone = await run("messages", "search", *url, env=operator)
        assert gone.status == 1 and f"cannot reach the carebroker API at {running.url}" in gone.err
    finally:
        await pool.close()
        for sink in (chu, dupont, fhir):
            await sink.stop()
