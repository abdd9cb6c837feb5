"""Batches and files split into messages, on corpus files and generated ones."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.hl7v2 import batch
from broker.errors import MessageError
from tests.conftest import CORPUS

PY = CORPUS / "python-hl7"


def test_file_with_two_batches_keeps_each_messages_bytes() -> None:
    data = (PY / "sample_file1.hl7").read_bytes()
    parsed = batch.split(data)
    assert [len(b.messages) for b in parsed.batches] == [2, 1]
    assert batch.header_field(parsed.header, 11) == b""
    assert batch.header_field(parsed.batches[1].header, 11) == b"abchs20070101123401-2"
    first = parsed.batches[0].messages[0]
    assert first.startswith(b"MSH|") and first in data


@pytest.mark.parametrize(
    ("name", "location"),
    [
        ("sample_batch3.hl7", "BTS-1"),
        ("sample_bad_batch.hl7", "MSH-1"),
        ("sample_file3.hl7", "FTS-1"),
        ("sample_file4.hl7", "FHS-1"),
        ("sample_bad_file.hl7", "MSH-1"),
        ("sample_bad_file1.hl7", "BHS-1"),
    ],
)
def test_malformed_corpus_batches_name_where(name: str, location: str) -> None:
    with pytest.raises(MessageError) as info:
        batch.split((PY / name).read_bytes())
    assert info.value.location == location


def test_counts_are_checked() -> None:
    data = (PY / "sample_batch1.hl7").read_bytes()
    assert len(batch.split(data).messages) == 2
    with pytest.raises(MessageError, match="BTS-1 announces 3 messages, 2 found"):
        batch.split(data.replace(b"BTS|2", b"BTS|3"))


def test_msh_concatenated_and_empty_batches() -> None:
    one = b"MSH|^~\\&|A|B|C|D|1||ADT^A01|1|P|2.5\rPID|1\r"
    assert batch.is_batch(one + one.replace(b"|1|P", b"|2|P"))
    assert not batch.is_batch(one)
    assert batch.is_batch(b"\xef\xbb\xbfBHS|^~\\&\rBTS|0\r")
    assert batch.split(b"BHS|^~\\&\rBTS|0\r").messages == []


@given(
    count=st.integers(0, 6),
    separator=st.sampled_from([b"\r", b"\n", b"\r\n"]),
    wrapped=st.booleans(),
)
def test_any_batch_splits_back_into_its_messages(
    count: int, separator: bytes, wrapped: bool
) -> None:
    messages = [
        separator.join([f"MSH|^~\\&|A|B|C|D|1||ADT^A01|{n}|P|2.5".encode(), b"PID|1", b""])
        for n in range(count)
    ]
    body = b"".join(messages)
    if wrapped:
        body = b"FHS|^~\\&" + separator + b"BHS|^~\\&" + separator + body
        body += f"BTS|{count}".encode() + separator + b"FTS|1" + separator
    assert batch.split(body).messages == messages
