"""``carebroker bench mssante``: CI-SIS document requests over MLLP -> MSSanté mails over SMTP.

What a platform sending lab and imaging reports to GPs cares about: how many
documents per second, and how many MB of documents per second, carebroker
turns into mails (CDA documents, their PDF and an IHE_XDM.zip each, rendered,
stored, routed, audited) and hands to the SMTP server.

- carebroker runs as real processes (``carebroker run``): ``mllp`` + ``relay``
  in one, ``router`` + ``delivery`` + ``audit`` in another, against one
  PostgreSQL and a local Kafka-compatible broker; the MSSanté settings point
  at a local SMTP server (this process, plain SMTP on loopback) that takes
  every mail and counts its bytes.
- Senders: ``MDM^T02`` requests (MSH-21 ``2.1^CISIS_CDA_HL7_V2``), one
  level 1 CDA document each (a PDF body padded to the size asked for), two
  RCT addresses each (two mails per document), over ``--connections`` MLLP
  connections, one in flight each.
- Measured per document size (``--sizes``, default 50 KB and 2 MB):
  documents per second and MB of documents per second from the first send to
  the last mail taken by the SMTP server; mails per second.
- Baseline, same run: the mails the SMTP server received, sent again by
  aiosmtplib alone over the same number of SMTP connections as carebroker
  uses (``CAREBROKER_MSSANTE__CONNECTIONS``): the cost of the SMTP
  submission itself. The ratio carebroker / baseline is the figure to compare.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiosmtplib

from adapters.hl7v2.framing import FrameReader, frame
from broker.commands.bench import _say, scratch_database
from broker.commands.bench_e2e import Process, _mllp_port, _start
from broker.commands.options import settings_from

MAILBOX = "bench-pfi@carebroker.invalid"
ADDRESSES = ("dr.a@bench.mssante.fr", "dr.b@bench.mssante.fr")
SIZES = {"50KB": 50 * 1024, "2MB": 2 * 1024 * 1024}
COUNTS = {"50KB": 200, "2MB": 20}


def register(bench: Any) -> None:
    """Add ``bench mssante``."""
    parser = bench.add_parser(
        "mssante",
        help="CI-SIS documents over MLLP -> MSSanté mails to a local SMTP server, vs aiosmtplib",
        description=__doc__.split("\n\n", 1)[1] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--connections", type=int, default=4, metavar="N", help="default 4")
    parser.add_argument(
        "--sizes",
        default="50KB,2MB",
        help="document sizes, comma separated, among " + ", ".join(SIZES) + " (default: both)",
    )
    parser.add_argument(
        "--count",
        type=int,
        metavar="N",
        help="documents per size (default 200 of 50 KB, 20 of 2 MB)",
    )
    parser.add_argument(
        "--smtp-connections", type=int, default=2, metavar="N", help="SMTP sessions (default 2)"
    )
    parser.add_argument("--database-url", metavar="DSN", help="PostgreSQL server to bench on")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Run the MSSanté bench; return the exit status."""
    settings = settings_from(args)
    dsn = args.database_url or settings.database_dsn()
    return asyncio.run(_bench(args, dsn))


# --- a local SMTP server that takes everything --------------------------------------------


@dataclass
class SmtpSink:
    """A minimal SMTP server on loopback: EHLO, MAIL, RCPT, DATA, RSET, QUIT; counts mails."""

    port: int = 0
    mails: list[bytes] = field(default_factory=list)
    arrived: list[float] = field(default_factory=list)
    _server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, limit=1 << 27)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()

    def reset(self) -> None:
        self.mails.clear()
        self.arrived.clear()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"220 bench ESMTP\r\n")
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            while line := await reader.readline():
                verb = line[:4].upper()
                if verb in (b"EHLO", b"HELO"):
                    writer.write(b"250-bench\r\n250-8BITMIME\r\n250-DSN\r\n250 SIZE 104857600\r\n")
                elif verb == b"DATA":
                    writer.write(b"354 go ahead\r\n")
                    await writer.drain()
                    data = await reader.readuntil(b"\r\n.\r\n")
                    self.mails.append(data[:-3].replace(b"\r\n..", b"\r\n."))
                    self.arrived.append(time.perf_counter())
                    writer.write(b"250 2.0.0 queued\r\n")
                elif verb == b"QUIT":
                    writer.write(b"221 bye\r\n")
                    await writer.drain()
                    break
                else:  # MAIL, RCPT, RSET, NOOP
                    writer.write(b"250 OK\r\n")
                await writer.drain()
        writer.close()


# --- documents and requests ---------------------------------------------------------------


def cda_document(size: int, number: int) -> bytes:
    """Return a level 1 CDA R2 document of about ``size`` bytes (a padded PDF body)."""
    head = (
        '<?xml version="1.0" encoding="UTF-8"?><ClinicalDocument xmlns="urn:hl7-org:v3">'
        '<typeId root="2.16.840.1.113883.1.3" extension="POCD_HD000040"/>'
        f'<id root="1.2.250.1.213.1.1.9.99" extension="BENCH-{number}"/>'
        '<code code="11502-2" codeSystem="2.16.840.1.113883.6.1" '
        'displayName="CR d\'examens biologiques"/><title>Compte rendu de biologie</title>'
        '<effectiveTime value="20261130093000+0100"/>'
        '<confidentialityCode code="N" codeSystem="2.16.840.1.113883.5.25"/>'
        '<languageCode code="fr-FR"/><recordTarget><patientRole>'
        f'<id root="1.2.250.1.71.4.2.7.1" extension="IPP-{number % 500}"/><patient><name>'
        "<family>BENCH</family><given>PATIENT</given></name></patient></patientRole>"
        "</recordTarget><author><assignedAuthor>"
        '<id root="1.2.250.1.71.4.2.1" extension="801234567866"/></assignedAuthor></author>'
        '<component><nonXMLBody><text mediaType="application/pdf" representation="B64">'
    )
    tail = "</text></nonXMLBody></component></ClinicalDocument>"
    room = max(0, size - len(head) - len(tail))
    pdf = b"%PDF-1.4\n" + os.urandom(max(0, room // 4 * 3 - 9))  # Base64 fills ``room``
    return (head + base64.b64encode(pdf).decode() + tail).encode()


def request(control: str, document: bytes) -> bytes:
    """Return an MDM^T02 CI-SIS request carrying ``document`` to two professionals."""
    flags = "".join(
        f"OBX|{n}|CWE|{name}^{name}^MetaDMPMSS||{value}^^expandedYes-NoIndicator||||||F\r"
        for n, (name, value) in enumerate(
            [
                ("MASQUE_PS", "N"),
                ("INVISIBLE_PATIENT", "N"),
                ("INVISIBLE_REP_LEGAUX", "N"),
                ("CONNEXION_SECRETE", "N"),
                ("MODIF_CONF_CODE", "N"),
                ("DESTDMP", "N"),
                ("DESTMSSANTEPS", "Y"),
                ("DESTMSSANTEPAT", "N"),
                ("ACK_RECEPTION", "N"),
                ("ACK_LECTURE_MSS", "N"),
            ],
            2,
        )
    )
    recipients = "".join(
        f"PRT||UC||RCT^Results Copies To^participation|||||||||||^^X.400^{address}\r"
        for address in ADDRESSES
    )
    return (
        "MSH|^~\\&|BENCH-RIS|BENCH-LAB|PFI|REGION|20261130093100||MDM^T02^MDM_T02|"
        f"{control}|P|2.6|||||FRA|UNICODE UTF-8|||2.1^CISIS_CDA_HL7_V2\r"
        "EVN||20261130093000\r"
        f"PID|||IPP-{control[-3:]}^^^BENCH&1.2.250.1.71.4.2.7.1&ISO^PI||BENCH^PATIENT||19700101|F\r"
        "PV1|1|O\rORC|NW|\rOBR|1|||11502-2^CR d'examens biologiques^LN\r"
        f"TXA|1|11502-2|TEXT|20261130093000||||||||1.2.250.1.213.1.1.9.99.{control}||||||AU\r"
        "OBX|1|ED|11502-2^CR d'examens biologiques^LN||^text^XML^Base64^"
        + base64.b64encode(document).decode()
        + "||||||F\r"
        "PRT||UC||SB^Send by^participation|801234567866^BENCH^Lab\r" + recipients + flags
    ).encode()


async def _send(port: int, connections: int, items: list[bytes]) -> None:
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for item in items:
        queue.put_nowait(item)

    async def sender() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 20)
        frames = FrameReader(reader, 1 << 20)
        try:
            while not queue.empty():
                data = queue.get_nowait()
                writer.write(frame(data))
                await writer.drain()
                answer = await frames.read()
                if answer is None or b"MSA|AA|" not in answer.data:
                    said = answer.data.decode("utf-8", "replace") if answer else "no answer"
                    raise RuntimeError(f"a request was not accepted (AA): {said}")
        finally:
            writer.close()

    await asyncio.gather(*(sender() for _ in range(connections)))


# --- the run ------------------------------------------------------------------------------


async def _bench(args: argparse.Namespace, dsn: str | None) -> int:
    with tempfile.TemporaryDirectory(prefix="carebroker-bench-mssante-") as scratch:
        async with scratch_database(dsn) as bench_dsn:
            return await _bench_in(args, bench_dsn, Path(scratch))


async def _bench_in(args: argparse.Namespace, bench_dsn: str, work: Path) -> int:
    from broker.local import LocalKafka

    kafka = LocalKafka()
    await kafka.start()
    sink = SmtpSink()
    await sink.start()
    processes: list[Process] = []
    try:
        config = work / "partners.yaml"
        config.write_text(
            "partners:\n  - {id: bench-ris, name: Bench RIS, kind: lab, facilities: [BENCH-LAB]}\n"
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith("CAREBROKER_")}
        env.update(
            CAREBROKER_DATABASE_URL=bench_dsn,
            CAREBROKER_KAFKA_BOOTSTRAP_SERVERS=kafka.bootstrap,
            CAREBROKER_KAFKA_FETCH_MAX_WAIT_MS="10",
            CAREBROKER_LOG_LEVEL="WARNING",
            CAREBROKER_MSSANTE__SMTP_URL=f"smtp://127.0.0.1:{sink.port}",
            CAREBROKER_MSSANTE__MAILBOX=MAILBOX,
            CAREBROKER_MSSANTE__CONNECTIONS=str(args.smtp_connections),
        )
        subprocess.run(  # noqa: ASYNC221 - once, before anything runs
            [str(Path(sys.executable).parent / "carebroker"), "migrate"],
            env=env, check=True, capture_output=True,
        )  # fmt: skip
        for index, roles in enumerate([["mllp", "relay"], ["router", "delivery", "audit"]]):
            processes.append(await _start(roles, env, config, work, index))
        port = _mllp_port(processes[0])
        _say(
            f"bench mssante: MDM^T02 CI-SIS requests over {args.connections} MLLP connections,"
            f" one CDA each to {len(ADDRESSES)} MSSanté addresses; carebroker "
            "mllp+relay | router+delivery+audit; SMTP: a local server, "
            f"{args.smtp_connections} sessions"
        )
        number = 0
        for label in [s.strip() for s in args.sizes.split(",") if s.strip()]:
            size = SIZES[label]
            count = args.count or COUNTS[label]
            warm = [request(f"W{label}-{i:05d}", cda_document(size, i)) for i in range(4)]
            await _measure(port, args.connections, warm, sink, processes)
            documents = []
            for _ in range(count):
                number += 1
                documents.append(cda_document(size, number))
            items = [request(f"B{label}-{i:05d}", d) for i, d in enumerate(documents)]
            seconds = await _measure(port, args.connections, items, sink, processes)
            mails = list(sink.mails)
            volume = sum(len(d) for d in documents) / 1e6
            mail_mb = sum(len(m) for m in mails) / len(mails) / 1e6
            _say(
                f"{label:>5} carebroker (routed, stored, audited): "
                f"{count / seconds:8.1f} documents/s  {volume / seconds:7.2f} MB/s of documents"
                f"  {len(mails) / seconds:8.1f} mails/s  (a mail: {mail_mb:.2f} MB)"
            )
            base = await _baseline(sink, mails, args.smtp_connections)
            _say(
                f"{'':5} aiosmtplib alone (the same mails)  : "
                f"{count / base:8.1f} documents/s  {volume / base:7.2f} MB/s of documents"
                f"  {len(mails) / base:8.1f} mails/s"
            )
            _say(f"{'':5} ratio carebroker / aiosmtplib: {base / seconds:.2f}")
        return 0
    finally:
        for process in processes:
            process.popen.send_signal(signal.SIGTERM)
        for process in processes:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.popen.wait(timeout=15)
        await sink.stop()
        await kafka.stop()


async def _measure(
    port: int, connections: int, items: list[bytes], sink: SmtpSink, watch: list[Process]
) -> float:
    """Send ``items``; return the seconds until the SMTP server has every mail of them."""
    sink.reset()
    expected = len(items) * len(ADDRESSES)
    begin = time.perf_counter()
    await _send(port, connections, items)
    if len(items) > 4:
        _say(
            f"{'':6}{len(items)} requests accepted over MLLP in {time.perf_counter() - begin:.2f} s"
        )
    deadline = time.monotonic() + 600
    while len(sink.mails) < expected:
        for process in watch:
            if process.popen.poll() is not None:
                raise RuntimeError(f"carebroker {process.roles} exited:\n{process.output()}")
        if time.monotonic() > deadline:
            raise RuntimeError("not every mail reached the SMTP server within 10 minutes")
        await asyncio.sleep(0.01)
    return sink.arrived[-1] - begin


async def _baseline(sink: SmtpSink, mails: list[bytes], connections: int) -> float:
    """Send the same mails with aiosmtplib alone; return the seconds it took."""
    sink.reset()
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for mail in mails:
        queue.put_nowait(mail)

    async def session() -> None:
        client = aiosmtplib.SMTP(hostname="127.0.0.1", port=sink.port, start_tls=False)
        await client.connect()
        try:
            while not queue.empty():
                await client.sendmail(MAILBOX, [ADDRESSES[0]], queue.get_nowait())
        finally:
            await client.quit()

    begin = time.perf_counter()
    await asyncio.gather(*(session() for _ in range(connections)))
    return time.perf_counter() - begin


__all__ = ["cda_document", "register", "request", "run"]
