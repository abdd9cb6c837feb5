"""The MLLP listener as a deployed one: sender checks at start-up, and what peers can make it hold.

One ``carebroker run --role mllp`` process with small limits (module-scoped),
driven over loopback from several source addresses (127.0.0.1, .2, .3 ...):
connections beyond the caps are closed at once and counted on ``/metrics``;
unfinished large frames do not grow its memory (peak RSS, ``VmHWM``) and get
AR "resend later" while small messages keep getting AA; a stream of junk
outside any frame costs the sender its connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import socket
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from adapters.hl7v2.framing import END, START, frame
from tests.conftest import REPO, scratch_database
from tests.e2e.conftest import Running, carebroker_command, run_env, start_carebroker

pytestmark = pytest.mark.e2e
ORU = (REPO / "tests" / "data" / "oru_labo_sud.hl7").read_bytes().replace(b"\n", b"\r")
MIB = 1024 * 1024
BUDGET = 16 * MIB
LIMITS = {
    "CAREBROKER_MLLP__MAX_CONNECTIONS": "8",
    "CAREBROKER_MLLP__MAX_CONNECTIONS_PER_PEER": "4",
    "CAREBROKER_MLLP__MAX_BUFFERED_BYTES": str(BUDGET),
    "CAREBROKER_MLLP__MAX_STRAY_BYTES": "4096",
    "CAREBROKER_MLLP__MAX_FRAME_BYTES": str(64 * MIB),
}


@pytest.fixture(scope="module")
async def database(pg_admin_dsn: str, template_db: str) -> AsyncIterator[str]:
    async with scratch_database(pg_admin_dsn, template_db) as dsn:
        yield dsn


@pytest.fixture(scope="module")
def listener(
    tmp_path_factory: pytest.TempPathFactory, database: str, kafka_bootstrap: str
) -> Iterator[Running]:
    """``carebroker run --role mllp`` on loopback, with the example directory and small limits."""
    tmp_path = tmp_path_factory.mktemp("mllp-limits")
    env = {**run_env(database, kafka_bootstrap, "t.limits."), **LIMITS}
    env["CAREBROKER_CONFIG"] = str(REPO / "tests" / "data" / "partners.yaml")
    running = start_carebroker(tmp_path, "--role", "mllp", command="run", env=env)
    try:
        running.wait_healthy()
        yield running
    finally:
        running.stop()


def metric(running: Running, name: str, labels: str = "") -> float:
    """Read one sample of the process's /metrics (0 when absent)."""
    text = httpx.get(f"{running.url}/metrics", timeout=10).text
    match = re.search(rf"^{re.escape(name + labels)} (\S+)$", text, re.MULTILINE)
    return float(match[1]) if match else 0.0


async def until_idle(running: Running) -> None:
    """Wait until the connections of the previous test are gone on the server side too."""
    async with asyncio.timeout(20):
        while await asyncio.to_thread(metric, running, "carebroker_mllp_connections_open"):
            await asyncio.sleep(0.05)


async def connect(
    running: Running, source: str = "127.0.0.1"
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection(
        "127.0.0.1", running.mllp_port, local_addr=(source, 0), limit=1 << 20
    )


async def answer_of(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, data: bytes
) -> bytes:
    writer.write(frame(data))
    async with asyncio.timeout(30):
        return (await reader.readuntil(END)).removeprefix(START).removesuffix(END)


def msa(answer: bytes) -> tuple[str, str]:
    fields = next(s for s in answer.split(b"\r") if s.startswith(b"MSA")).decode().split("|")
    return fields[1], fields[2]


async def closed_by_server(reader: asyncio.StreamReader) -> bool:
    """Wait for the server to close the connection (EOF or reset)."""
    try:
        async with asyncio.timeout(20):
            return await reader.read(1) == b""
    except ConnectionError:
        return True


def with_control_id(control_id: str) -> bytes:
    return ORU.replace(b"|LS-0001|", f"|{control_id}|".encode(), 1)


async def test_connections_beyond_the_caps_are_closed_at_once_and_counted(
    listener: Running,
) -> None:
    await until_idle(listener)
    opened = []
    try:
        for n in range(4):  # the per-peer cap, each connection proven served
            reader, writer = await connect(listener, "127.0.0.1")
            opened.append(writer)
            assert msa(await answer_of(reader, writer, with_control_id(f"CAP-1-{n}")))[0] == "AA"
        reader, writer = await connect(listener, "127.0.0.1")
        opened.append(writer)
        assert await closed_by_server(reader)  # the fifth from the same address
        for n in range(4):  # another address still gets in, up to the total cap of 8
            reader, writer = await connect(listener, "127.0.0.2")
            opened.append(writer)
            assert msa(await answer_of(reader, writer, with_control_id(f"CAP-2-{n}")))[0] == "AA"
        reader, writer = await connect(listener, "127.0.0.3")
        opened.append(writer)
        assert await closed_by_server(reader)  # the ninth in all
        assert metric(listener, "carebroker_mllp_connections_refused_total", '{reason="per_peer"}')
        assert metric(listener, "carebroker_mllp_connections_refused_total", '{reason="total"}')
    finally:
        for writer in opened:
            writer.close()


def peak_rss(pid: int) -> int:
    """Return a process's peak resident memory (bytes), as the kernel counts it."""
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"^VmHWM:\s+(\d+) kB$", status, re.MULTILINE)
    assert match
    return int(match[1]) * 1024


async def test_unfinished_large_frames_do_not_grow_memory_and_are_told_to_resend(
    listener: Running,
) -> None:
    await until_idle(listener)
    pid = listener.process.pid
    before = peak_rss(pid)
    chunk = b"A" * MIB
    big = [await connect(listener, "127.0.0.1") for _ in range(4)]
    try:
        for n, (_, writer) in enumerate(big):
            # 40 MiB frames (under the 64 MiB frame limit), left unfinished, all at once.
            writer.write(START + with_control_id(f"BIG-{n}").split(b"\r", 1)[0] + b"\rNTE|1|")
            for _ in range(40):
                writer.write(chunk)
                await writer.drain()
        # Meanwhile a small message on its own connection is accepted as usual.
        reader, writer = await connect(listener, "127.0.0.2")
        assert msa(await answer_of(reader, writer, with_control_id("SMALL-1"))) == ("AA", "SMALL-1")
        writer.close()
        answers = []
        for reader, writer in big:
            writer.write(END)
            async with asyncio.timeout(60):
                answers.append((await reader.readuntil(END)).removeprefix(START))
        growth = peak_rss(pid) - before
    finally:
        for _, writer in big:
            writer.close()
    assert growth < 64 * MIB, f"peak memory grew by {growth / MIB:.0f} MiB for 160 MiB sent"
    for n, answer in enumerate(answers):
        assert msa(answer) == ("AR", f"BIG-{n}")
        assert b"too many large frames in progress at once: resend later" in answer
    assert metric(listener, "carebroker_mllp_frames_overloaded_total") >= 4


async def test_a_stream_of_junk_outside_frames_costs_the_connection(listener: Running) -> None:
    await until_idle(listener)
    reader, writer = await connect(listener, "127.0.0.1")
    try:
        with contextlib.suppress(ConnectionError):
            for _ in range(256):  # up to 1 MiB, never a start block
                writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" * 150)
                await writer.drain()
        assert await closed_by_server(reader)
    finally:
        writer.close()
    assert metric(listener, "carebroker_mllp_connections_dropped_total", '{reason="stray_bytes"}')
    # The listener serves the next sender as usual.
    reader, writer = await connect(listener, "127.0.0.1")
    assert msa(await answer_of(reader, writer, with_control_id("AFTER-JUNK")))[0] == "AA"
    writer.close()


def test_listening_beyond_loopback_with_an_unverifiable_sender_is_refused_at_start(
    tmp_path: Path, database_url: str, kafka_bootstrap: str, topic_prefix: str
) -> None:
    data = yaml.safe_load((REPO / "tests" / "data" / "partners.yaml").read_text())
    del data["partners"][1]["networks"]  # labo-sud: neither networks nor certificate_cn
    config = tmp_path / "partners.yaml"
    config.write_text(yaml.safe_dump(data))
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAREBROKER_")}
    env.update(run_env(database_url, kafka_bootstrap, topic_prefix))
    env["CAREBROKER_CONFIG"] = str(config)
    # An address of this machine that is not loopback, if it has one; the check
    # comes before anything is bound, so nothing listens there even briefly.
    command = [*carebroker_command(), "run", "--role", "mllp", "--mllp-host", _not_loopback()]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "partner(s) labo-sud in" in done.stderr
    assert "declare neither certificate_cn nor networks" in done.stderr
    assert "CAREBROKER_MLLP__ALLOW_UNVERIFIED_SENDERS=true" in done.stderr


def _not_loopback() -> str:
    with contextlib.suppress(OSError), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.connect(("192.0.2.1", 9))  # no packet is sent: this only picks a route
        address = str(sock.getsockname()[0])
        if not address.startswith("127."):
            return address
    return "0.0.0.0"
