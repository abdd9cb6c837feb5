"""Every HL7 v2 file of the corpus, sent with python-hl7's MLLP client (not carebroker's).

Well-formed messages get AA (CA in enhanced mode) with MSA-2 = their MSH-10,
or no answer when their MSH-15 asks for none (NE, or ER on success);
malformed ones get AE/AR (CE/CR) with an ERR naming segment and field; and
after each file the listener answers the next message on the same connection
normally. MSH-4 is set to a configured partner so that sender identification
is not what every file fails on.
"""

from __future__ import annotations

import asyncio
import csv
import re

import asyncpg
import hl7
import pytest
from hl7.mllp import open_hl7_connection

from tests.conftest import CORPUS, REPO
from tests.integration.mllp.conftest import Listener

ROWS = list(csv.DictReader((CORPUS / "MANIFEST.tsv").open(), delimiter="\t"))
FILES = sorted(r["local_file"] for r in ROWS if r["local_file"].endswith((".hl7", ".txt")))
PROBE = (REPO / "tests" / "data" / "oru_labo_sud.hl7").read_bytes().replace(b"\n", b"\r")

# Files carebroker refuses as a whole, and why (the manifest flags most as MALFORMED).
REFUSED = {
    "hapi/messages.txt": "comment lines (/* */, //) are not ER7",
    "hl7apy/malformed_msh_bad_encoding_chars.hl7": "MSH-2 reuses the field separator",
    "hl7apy/malformed_msh_missing_msh9.hl7": "MSH-9 empty",
    "hl7apy/malformed_msh_too_many_encoding_chars.hl7": "MSH-2 has 6 characters",
    "hl7apy/malformed_msh_truncated_type.hl7": "MSH-9 without trigger",
    "hl7apy/malformed_pid_first.hl7": "no MSH",
    "hl7apy/custom_delimiters_rsp.hl7": "MSH-9 written with ^ where $ separates components",
    "linuxforhealth/sample_unix.hl7": "MSH-2 `^~\\\\&` repeats the escape character",
    "linuxforhealth/sample_win.hl7": "MSH-2 `^~\\\\&` repeats the escape character",
    "node-hl7-complete/adt-example.hl7": "segments separated by spaces: MSH-15 reads ` EVN`",
    "node-hl7-complete/bar-example.hl7": "MSH-11 holds `BAR^A01` (fields shifted)",
    "node-hl7-complete/mdm-example.hl7": "line break inside MSH-10",
    "python-hl7/cp1252_truncated.hl7": "MSH truncated",
    "python-hl7/sample_bad_batch.hl7": "batch without MSH",
    "python-hl7/sample_bad_file.hl7": "file without MSH",
    "python-hl7/sample_bad_file1.hl7": "BHS inside a message",
    "python-hl7/sample_batch3.hl7": "BHS without BTS",
    "python-hl7/sample_file3.hl7": "FHS without FTS",
    "python-hl7/sample_file4.hl7": "FTS without FHS",
}
# Batches where some messages are refused: file -> messages refused (MSH-10 missing).
PARTLY_REFUSED = {"hapi/example_oml_o21.hl7": 2}
NEGATIVE = frozenset({"AE", "AR", "CE", "CR"})


def test_the_expectations_name_real_files() -> None:
    assert set(REFUSED) | set(PARTLY_REFUSED) <= set(FILES)
    assert len(FILES) > 60


def with_facility(data: bytes, facility: bytes = b"CORPUS") -> bytes:
    """Set MSH-4 of every MSH segment, whatever the field separator."""
    out = []
    for piece in re.split(rb"(\r\n|\r|\n)", data):
        start = piece.find(b"MSH", 0, 6)  # after a BOM too
        if start >= 0 and len(piece) > start + 4:
            separator = piece[start + 3 : start + 4]
            fields = piece.split(separator)
            if len(fields) > 3:
                fields[3] = facility
                piece = separator.join(fields)
        out.append(piece)
    return b"".join(out)


def header_of(message: hl7.Message, field: int) -> str:
    return str(message.segment("MSH")[field]) if len(message.segment("MSH")) > field else ""


def answer_is_due(sent: hl7.Message) -> bool:
    accept_ack = header_of(sent, 15).upper()
    return accept_ack not in ("NE", "ER")


def error_location(ack: hl7.Message) -> tuple[str, str]:
    """Return (segment, field) an ERR names: ERR-2 (v2.5+) or ERR-1 (older)."""
    err = ack.segment("ERR")
    location = err[2] if len(err) > 2 and str(err[2]) else err[1]
    return str(location[0][0]), str(location[0][2]) if len(location[0]) > 2 else ""


async def read(reader: asyncio.StreamReader) -> hl7.Message:
    async with asyncio.timeout(20):
        block = await reader.readblock()  # type: ignore[attr-defined]
    return hl7.parse_hl7(block.decode("latin-1"))


@pytest.mark.parametrize("name", FILES)
async def test_corpus_file_over_mllp(name: str, listener: Listener, pool: asyncpg.Pool) -> None:
    data = with_facility((CORPUS / name).read_bytes())
    reader, writer = await open_hl7_connection("127.0.0.1", listener.port, limit=1 << 24)
    try:
        writer.writeblock(data)
        await writer.drain()
        sent = messages_of(data)
        is_batch = data.lstrip(b"\xef\xbb\xbf")[:3] in (b"FHS", b"BHS") or len(sent) > 1
        if name in REFUSED:
            ack = await read(reader)
            assert str(ack.segment("MSA")[1]) in NEGATIVE, name
            segment, field = error_location(ack)
            assert re.fullmatch("[A-Z][A-Z0-9]{2}", segment) and field.isdigit(), str(ack)
            assert (
                await pool.fetchval("SELECT count(*) FROM messages WHERE status = 'accepted'") == 0
            )
            assert (
                await pool.fetchval("SELECT count(*) FROM messages WHERE status = 'rejected'") == 1
            )
        elif is_batch:
            await check_batch(name, sent, await read(reader), pool)
        else:
            control_id = header_of(sent[0], 10)
            if answer_is_due(sent[0]):
                ack = await read(reader)
                assert (str(ack.segment("MSA")[1]), str(ack.segment("MSA")[2])) in {
                    ("AA", control_id),
                    ("CA", control_id),
                }, name

        # The same connection answers the next message normally; that answer comes
        # next (one ordered stream), so a message that asked for none got none.
        writer.writeblock(PROBE.replace(b"|LS-0001|", b"|PROBE-1|"))
        await writer.drain()
        probe = await read(reader)
        assert (str(probe.segment("MSA")[1]), str(probe.segment("MSA")[2])) == ("AA", "PROBE-1")
        if name not in REFUSED and not is_batch:
            stored = await pool.fetchrow(
                "SELECT status, sender, control_id FROM messages WHERE control_id <> 'PROBE-1'"
            )
            assert tuple(stored) == ("accepted", "corpus-lab", header_of(sent[0], 10))
    finally:
        writer.close()


def messages_of(data: bytes) -> list[hl7.Message]:
    """Split a file into its messages (a new one at each MSH; batch segments dropped)."""
    messages: list[list[str]] = []
    for line in re.split(r"\r\n|\r|\n", data.decode("latin-1").removeprefix("\xef\xbb\xbf")):
        if line.startswith("MSH"):
            messages.append([line])
        elif messages and line.strip() and line[:3] not in ("BHS", "BTS", "FHS", "FTS"):
            messages[-1].append(line)
    return [hl7.parse("\r".join(m)) for m in messages]


async def check_batch(
    name: str, sent: list[hl7.Message], ack: hl7.Message, pool: asyncpg.Pool
) -> None:
    """A batch is answered by an ACK batch: one ACK per message that asked for one."""
    acks = [m for b in (ack if isinstance(ack, hl7.File) else [ack]) for m in b]
    due = [m for m in sent if answer_is_due(m)]
    refused = PARTLY_REFUSED.get(name, 0)
    codes = [str(a.segment("MSA")[1]) for a in acks]
    assert len(acks) == len(due) or refused, (name, codes)
    assert sum(code in NEGATIVE for code in codes) == refused, (name, codes)
    for a in acks:
        if str(a.segment("MSA")[1]) not in NEGATIVE:
            assert str(a.segment("MSA")[2]) in {header_of(m, 10) for m in sent}
    accepted = await pool.fetchval(
        "SELECT count(*) FROM messages WHERE status = 'accepted' AND batch_id IS NOT NULL"
    )
    # Messages refused lack MSH-10; a control id sent twice is stored once.
    assert accepted == len({header_of(m, 10) for m in sent} - {""}), name
