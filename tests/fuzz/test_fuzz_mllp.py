"""Fuzz MLLP framing: any bytes, cut anywhere, read within the limits the listener sets.

:class:`adapters.hl7v2.framing.FrameReader` reads what peers send before
anything else does. For any byte stream and any split into reads:

- it ends cleanly, or with IncompleteReadError (the peer stopped inside a
  frame) or StrayBytesError (too much outside frames), nothing else;
- it never keeps more than its limits allow: a frame's kept bytes are at
  most the frame limit (the first ``keep`` of an oversize one, the first
  ``HEADER_BYTES`` of an overloaded one), the shared budget never goes past
  its limit and is all given back;
- it accounts for every byte: kept or counted as frame size or stray;
- well-formed frames among junk come out exactly as sent.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from adapters.hl7v2.framing import (
    FREE_BYTES,
    HEADER_BYTES,
    START,
    Frame,
    FrameBudget,
    FrameReader,
    StrayBytesError,
    frame,
)
from tests.fuzz.conftest import corpus

MAX_FRAME = 3000
KEEP = 500
STRAY = 400


async def read_stream(
    data: bytes, cuts: list[int], *, budget: FrameBudget, stream_limit: int = 64
) -> tuple[list[Frame], BaseException | None, FrameReader]:
    reader = asyncio.StreamReader(limit=stream_limit)
    at = 0
    for cut in sorted({c for c in cuts if 0 < c < len(data)}):
        reader.feed_data(data[at:cut])
        at = cut
    reader.feed_data(data[at:])
    reader.feed_eof()
    frames = FrameReader(reader, MAX_FRAME, KEEP, budget=budget, max_stray_bytes=STRAY)
    out: list[Frame] = []
    try:
        while (item := await frames.read()) is not None:
            assert budget.held <= budget.limit
            out.append(item)
            frames.release()
    except (asyncio.IncompleteReadError, StrayBytesError) as exc:
        frames.release()
        return out, exc, frames
    return out, None, frames


def check(data: bytes, cuts: list[int], budget_limit: int) -> list[Frame]:
    budget = FrameBudget(budget_limit)
    frames, ended, reader = asyncio.run(read_stream(data, cuts, budget=budget))
    assert budget.held == 0, "budget not given back"
    assert budget.peak <= budget.limit
    for item in frames:
        if item.oversize:
            assert item.size > MAX_FRAME and len(item.data) <= KEEP
        elif item.overloaded:
            assert len(item.data) <= HEADER_BYTES
        else:
            assert len(item.data) == item.size <= MAX_FRAME
    consumed = sum(f.size for f in frames) + reader.stray_bytes
    assert consumed <= len(data)
    if isinstance(ended, asyncio.IncompleteReadError):
        assert len(ended.partial) <= max(MAX_FRAME, KEEP)
    if isinstance(ended, StrayBytesError):
        assert reader.stray_bytes > STRAY
    return frames


@pytest.mark.parametrize("path", corpus("mllp"), ids=lambda p: p.name)
def test_every_corpus_stream_is_read_within_limits(path: Path) -> None:
    data = path.read_bytes()
    for budget in (0, 1 << 20):
        check(data, [], budget)
        check(data, list(range(0, len(data), 7)), budget)


@given(
    data=st.binary(max_size=4000)
    | st.lists(
        st.sampled_from([START, b"\x1c", b"\r", b"\x1c\r", b"MSH|", b"x" * 700, b"\x00"]),
        max_size=40,
    ).map(b"".join),
    cuts=st.lists(st.integers(0, 4000), max_size=20),
    budget=st.sampled_from([0, 100, 1 << 20]),
)
@example(data=START + b"a" * (FREE_BYTES + 10) + b"\x1c\r", cuts=[], budget=0)
def test_any_stream_is_read_within_limits(data: bytes, cuts: list[int], budget: int) -> None:
    check(data, cuts, budget)


payloads = st.lists(
    st.binary(min_size=1, max_size=400).filter(lambda b: START not in b and b"\x1c" not in b),
    min_size=1,
    max_size=6,
)
junk = st.binary(max_size=100).filter(lambda b: START not in b)


@given(
    messages=payloads,
    gaps=st.lists(junk, min_size=7, max_size=7),
    cuts=st.lists(st.integers(0, 3000)),
)
def test_frames_among_junk_come_out_as_sent(
    messages: list[bytes], gaps: list[bytes], cuts: list[int]
) -> None:
    data = b"".join(gap + frame(m) for gap, m in zip(gaps, messages, strict=False)) + gaps[-1]
    frames = check(data, cuts, 1 << 20)
    assert [f.data for f in frames] == messages


@given(size=st.integers(STRAY + 1, 20_000), cuts=st.lists(st.integers(0, 20_000), max_size=10))
def test_a_stream_of_junk_is_given_up_on(size: int, cuts: list[int]) -> None:
    budget = FrameBudget(0)
    data = bytes(b % 11 for b in range(size))  # never a start block (0x0b)
    _, ended, reader = asyncio.run(read_stream(data, cuts, budget=budget))
    assert isinstance(ended, StrayBytesError)
    assert reader.stray_bytes > STRAY
