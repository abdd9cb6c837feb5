"""MLLP over TLS and mutual TLS: the client certificate names the partner; spoofing is refused."""

from __future__ import annotations

import asyncio
import ssl
import subprocess
from pathlib import Path

import asyncpg
import pytest
from hl7.mllp import open_hl7_connection

from adapters.hl7v2.mllp import server_tls_context
from tests.conftest import REPO
from tests.integration.mllp.conftest import StartListener, msa, parse_answer

ORU = (REPO / "tests" / "data" / "oru_labo_sud.hl7").read_bytes().replace(b"\n", b"\r")


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def _issue(directory: Path, name: str, cn: str, extra: str = "") -> None:
    _openssl(
        "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={cn}", cwd=directory,
    )  # fmt: skip
    ext = directory / f"{name}.ext"
    ext.write_text(extra or "basicConstraints=CA:FALSE\n")
    _openssl(
        "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", f"{name}.pem", "-days", "2", "-extfile", ext.name, cwd=directory,
    )  # fmt: skip


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A throwaway CA, a server certificate for 127.0.0.1 and client certificates."""
    directory = tmp_path_factory.mktemp("pki")
    _openssl(
        "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=carebroker test CA",
        cwd=directory,
    )  # fmt: skip
    _issue(directory, "server", "127.0.0.1", "subjectAltName=IP:127.0.0.1\n")
    for name in ("tls-clinic.example", "other-clinic.example", "stranger.example"):
        _issue(directory, name, name)
    return directory


def client_context(pki: Path, certificate: str | None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(pki / "ca.pem"))
    if certificate:
        context.load_cert_chain(pki / f"{certificate}.pem", pki / f"{certificate}.key")
    return context


def from_clinic(facility: bytes, control_id: bytes) -> bytes:
    return ORU.replace(b"|LABO-SUD|", b"|" + facility + b"|").replace(b"LS-0001", control_id)


async def test_tls_without_client_certificates(start_listener: StartListener, pki: Path) -> None:
    listener = await start_listener(tls=server_tls_context(pki / "server.pem", pki / "server.key"))
    answer = await listener.send(ORU, tls=client_context(pki, None))
    assert msa(parse_answer(answer)) == ("AA", "LS-0001")


async def test_mutual_tls_identifies_the_partner_and_refuses_spoofing(
    start_listener: StartListener, pki: Path, pool: asyncpg.Pool
) -> None:
    tls = server_tls_context(pki / "server.pem", pki / "server.key", pki / "ca.pem")
    listener = await start_listener(tls=tls)
    clinic = client_context(pki, "tls-clinic.example")

    own = await listener.send(from_clinic(b"TLS-CLINIC", b"T-1"), tls=clinic)
    assert msa(parse_answer(own)) == ("AA", "T-1")

    spoofed = parse_answer(await listener.send(from_clinic(b"OTHER-CLINIC", b"T-2"), tls=clinic))
    assert msa(spoofed) == ("AR", "T-2")
    assert str(spoofed.segment("ERR")[2]) == "MSH^1^4"
    stranger = client_context(pki, "stranger.example")
    unknown = await listener.send(from_clinic(b"TLS-CLINIC", b"T-3"), tls=stranger)
    assert msa(parse_answer(unknown)) == ("AR", "T-3")

    rows = await pool.fetch("SELECT control_id, status, sender, reason FROM messages ORDER BY id")
    assert [(r[0], r[1], r[2], (r[3] or "").split(":")[0]) for r in rows] == [
        ("T-1", "accepted", "tls-clinic", ""),
        ("T-2", "rejected", "tls-clinic", "spoofed_sender"),
        ("T-3", "rejected", "tls-clinic", "unknown_certificate"),
    ]
    events = [r["event"] for r in await pool.fetch("SELECT event FROM audit_pending ORDER BY id")]
    spoof = next(e for e in events if e["detail"].get("kind") == "spoofed_sender")
    assert spoof["kind"] == "rejected" and spoof["partner"] == "tls-clinic"
    assert spoof["detail"]["certificate_cn"] == "tls-clinic.example"
    # Operators see which certificate each message came with, accepted or not.
    subjects = await pool.fetch("SELECT control_id, peer_certificate FROM messages ORDER BY id")
    assert [tuple(r) for r in subjects] == [
        ("T-1", "CN=tls-clinic.example"),
        ("T-2", "CN=tls-clinic.example"),
        ("T-3", "CN=stranger.example"),
    ]
    received = next(e for e in events if e["kind"] == "received")
    assert received["detail"]["certificate_subject"] == "CN=tls-clinic.example"
    assert received["detail"]["peer"].startswith("127.0.0.1:")


async def test_mutual_tls_refuses_a_client_without_certificate(
    start_listener: StartListener, pki: Path
) -> None:
    tls = server_tls_context(pki / "server.pem", pki / "server.key", pki / "ca.pem")
    listener = await start_listener(tls=tls)

    async def send_without_certificate() -> None:
        reader, writer = await open_hl7_connection(
            "127.0.0.1", listener.port, ssl=client_context(pki, None)
        )
        writer.writeblock(ORU)
        await writer.drain()
        async with asyncio.timeout(10):
            await reader.readblock()

    with pytest.raises((ssl.SSLError, ConnectionError, asyncio.IncompleteReadError)):
        await send_without_certificate()
    # The listener is unharmed.
    answer = await listener.send(
        from_clinic(b"TLS-CLINIC", b"T-9"), tls=client_context(pki, "tls-clinic.example")
    )
    assert msa(parse_answer(answer)) == ("AA", "T-9")
