"""The HTTP listener under a flood: slow headers, crowds of connections, huge console bodies.

One ``carebroker run --role fhir --role console`` on this module's database
and the session's Kafka, with the defaults a deployment has except a 6 s
header deadline (10 s by default) so that a test can also see it expire.
What a partner or an orchestrator would notice is asserted: ``/healthz`` and
FHIR POSTs keep answering 200 — no 503 — while thousands of connections
never finish their headers; a 64 MiB body to the console's sign-in is
answered 413 without being read; a slow client is answered 408 and closed.

The attackers come from other loopback addresses (127.0.0.2-...), as a
crowd on the Internet would; the partner and the orchestrator from 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from tests.conftest import REPO, scratch_database
from tests.e2e.conftest import Running, run_env, start_carebroker
from tests.e2e.test_delivery_kill import healthy
from tests.integration.test_fhir_gateway import lab_message

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
TOKEN = "labo-sud-flood-token"
HEADER_TIMEOUT_S = 6.0
FHIR = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/fhir+json"}


@pytest.fixture(scope="module")
def module_tmp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("flood")


@pytest.fixture(scope="module")
async def served(
    module_tmp: Path, pg_admin_dsn: str, template_db: str, kafka_bootstrap: str
) -> AsyncIterator[Running]:
    data = yaml.safe_load((REPO / "tests" / "data" / "partners.yaml").read_text())
    for partner in data["partners"]:
        if partner["id"] == "labo-sud":
            partner["token_sha256"] = [hashlib.sha256(TOKEN.encode()).hexdigest()]
    config = module_tmp / "partners.yaml"
    config.write_text(yaml.safe_dump(data))
    async with scratch_database(pg_admin_dsn, template_db) as dsn:
        env = {
            **run_env(dsn, kafka_bootstrap, "t.flood."),
            "CAREBROKER_HTTP_HEADER_TIMEOUT_S": str(HEADER_TIMEOUT_S),
            "CAREBROKER_METRICS_PORT": "0",
        }
        running = start_carebroker(
            module_tmp,
            *("--role", "fhir", "--role", "console"),
            *("--config", str(config)),
            env=env,
            command="run",
        )
        try:
            await healthy(running, timeout=90)
            await answers(running, rounds=1)  # the first FHIR POST loads the validators
            yield running
        finally:
            if running.process.poll() is None:
                running.process.terminate()
                running.process.wait(timeout=15)
            assert "Traceback" not in running.output(), running.output()


class Slowloris:
    """Connections that send part of a request's headers and then nothing."""

    def __init__(self) -> None:
        self.writers: list[asyncio.StreamWriter] = []
        self.readers: list[asyncio.StreamReader] = []

    async def open(self, port: int, count: int, addresses: int) -> None:
        async def one(i: int) -> None:
            local = f"127.0.{1 + i % addresses // 250}.{2 + i % addresses % 250}"
            try:
                reader, writer = await asyncio.open_connection(
                    "127.0.0.1", port, local_addr=(local, 0)
                )
            except OSError:
                return  # refused at once: that is one of the answers allowed
            writer.write(b"POST /api/session HTTP/1.1\r\nHost: carebroker\r\nX-Slow: ")
            self.writers.append(writer)
            self.readers.append(reader)

        for start in range(0, count, 250):
            await asyncio.gather(*(one(i) for i in range(start, min(count, start + 250))))

    def close(self) -> None:
        for writer in self.writers:
            writer.close()


@contextlib.contextmanager
def slowloris() -> Iterator[Slowloris]:
    attack = Slowloris()
    try:
        yield attack
    finally:
        attack.close()


async def answers(running: Running, rounds: int = 10) -> list[tuple[str, int, float]]:
    """What the orchestrator and a partner get meanwhile: (what, status, seconds) each."""
    seen: list[tuple[str, int, float]] = []
    async with httpx.AsyncClient(base_url=running.url, timeout=10) as client:
        for n in range(rounds):
            start = time.monotonic()
            health = await client.get("/healthz")
            seen.append(("healthz", health.status_code, time.monotonic() - start))
            start = time.monotonic()
            posted = await client.post(
                "/fhir/$process-message",
                json=lab_message(f"FLOOD-{n}-{time.time_ns()}"),
                headers=FHIR,
            )
            seen.append(("fhir", posted.status_code, time.monotonic() - start))
    return seen


@pytest.mark.parametrize(
    ("addresses", "held"),
    [
        # One address: 64 connections held (the per-address cap), the rest refused.
        pytest.param(1, 64, id="2500-from-one-address"),
        # 25 per address: all held (4,096 per listener) until their header deadline.
        pytest.param(100, 2500, id="2500-from-100-addresses"),
    ],
)
async def test_health_and_fhir_keep_answering_through_2500_unfinished_requests(
    served: Running, addresses: int, held: int
) -> None:
    with slowloris() as attack:
        await attack.open(served.http_port, 2500, addresses)
        seen = await answers(served)
        await asyncio.sleep(0.2)  # let the loop see what the server closed meanwhile
        still_open = sum(not reader.at_eof() for reader in attack.readers)
    # Measured while the flood held: the server still had its connections taken.
    assert still_open >= held * 0.9, still_open
    statuses = {(what, status) for what, status, _ in seen}
    assert statuses == {("healthz", 200), ("fhir", 200)}, seen
    slowest = max(seconds for _, _, seconds in seen)
    assert slowest < 2.0, seen


async def test_a_request_whose_headers_never_finish_is_answered_408_and_closed(
    served: Running,
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", served.http_port)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: carebroker\r\n")
    for _ in range(3):  # trickling does not buy time
        await asyncio.sleep(HEADER_TIMEOUT_S / 4)
        writer.write(b"X-Still-Here: 1\r\n")
    answer = await asyncio.wait_for(reader.read(), timeout=HEADER_TIMEOUT_S + 3)
    assert answer.startswith(b"HTTP/1.1 408"), answer
    writer.close()


async def test_huge_bodies_to_the_console_are_refused_unread_while_fhir_answers(
    served: Running,
) -> None:
    declared = 64 * 1024 * 1024

    async def upload() -> bytes:
        reader, writer = await asyncio.open_connection("127.0.0.1", served.http_port)
        writer.write(
            b"POST /api/session HTTP/1.1\r\nHost: carebroker\r\n"
            b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % declared
        )
        writer.write(b"{" + b" " * 65536)  # a start, then the client waits for an answer
        await writer.drain()
        try:
            return await asyncio.wait_for(reader.read(), timeout=5)
        finally:
            writer.close()

    uploads = asyncio.gather(*(upload() for _ in range(20)))
    seen = await answers(served, rounds=3)
    refused = await uploads
    assert all(a.startswith(b"HTTP/1.1 413") for a in refused), refused[0][:200]
    assert {(what, status) for what, status, _ in seen} == {("healthz", 200), ("fhir", 200)}

    # A chunked body (no length declared) is cut off once past the limit.
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(64):
            yield b" " * (256 * 1024)

    async with httpx.AsyncClient(base_url=served.url, timeout=10) as client:
        response = await client.post(
            "/api/session", content=chunks(), headers={"Content-Type": "application/json"}
        )
    assert response.status_code == 413


async def test_metrics_have_their_own_listener_and_leave_the_main_one(served: Running) -> None:
    port = served._banner_port(r"carebroker metrics: http://[^\s:]+:(\d+)")
    async with httpx.AsyncClient(timeout=10) as client:
        scraped = await client.get(f"http://127.0.0.1:{port}/metrics")
        assert scraped.status_code == 200
        assert "carebroker_" in scraped.text
        assert (await client.get(f"http://127.0.0.1:{port}/api/alerts")).status_code == 200
        assert (await client.get(f"http://127.0.0.1:{port}/healthz")).status_code == 200
        assert (await client.get(f"{served.url}/metrics")).status_code == 404
        assert (await client.get(f"{served.url}/api/alerts")).status_code in (401, 404, 405)
