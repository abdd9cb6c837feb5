"""MLLP framing over arbitrary read boundaries."""

from __future__ import annotations

import asyncio

from hypothesis import given
from hypothesis import strategies as st

from adapters.hl7v2.framing import FrameReader, frame

payloads = st.lists(
    st.binary(min_size=1, max_size=300).filter(lambda b: b"\x0b" not in b and b"\x1c" not in b),
    min_size=1,
    max_size=8,
)


async def _read_all(data: bytes, cuts: list[int], max_bytes: int):  # type: ignore[no-untyped-def]
    reader = asyncio.StreamReader(limit=64)
    position = 0
    for cut in sorted(set(cuts)):
        reader.feed_data(data[position:cut])
        position = cut
    reader.feed_data(data[position:])
    reader.feed_eof()
    frames = FrameReader(reader, max_bytes=max_bytes, keep=16)
    out = []
    while (item := await frames.read()) is not None:
        out.append(item)
    return out


@given(messages=payloads, cuts=st.lists(st.integers(0, 3000), max_size=30))
def test_frames_survive_any_read_boundaries(messages: list[bytes], cuts: list[int]) -> None:
    data = b"".join(frame(m) for m in messages)
    got = asyncio.run(_read_all(data, [c for c in cuts if c < len(data)], 10_000))
    assert [f.data for f in got] == messages


@given(messages=payloads)
def test_oversize_frames_are_cut_and_reported_and_the_stream_goes_on(messages: list[bytes]) -> None:
    data = b"".join(frame(m) for m in messages)
    got = asyncio.run(_read_all(data, [], 100))
    assert [f.oversize for f in got] == [len(m) > 100 for m in messages]
    assert [f.size for f in got] == [len(m) for m in messages]
    assert all(f.data == m[:16] for f, m in zip(got, messages, strict=True) if f.oversize)
