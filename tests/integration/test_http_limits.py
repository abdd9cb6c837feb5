"""The listener's limits in-process: a full listener makes room, bodies stay bounded.

The flood itself, against ``carebroker run``: ``tests/e2e/test_http_flood.py``.
"""

from __future__ import annotations

import asyncio

import httpx

from broker.health import Readiness
from broker.http import HttpServer, bind, create_app
from broker.http_limits import HttpLimits


async def test_a_full_listener_closes_the_longest_waiting_connection_for_a_prompt_client() -> None:
    limits = HttpLimits(max_connections=100, max_connections_per_address=50)
    server = HttpServer(create_app(Readiness()), bind("127.0.0.1", 0), limits, lambda _: 1024)
    await server.start()
    writers = []
    try:
        for i in range(300):  # from 10 addresses, 30 each: under the per-address cap
            reader, writer = await asyncio.open_connection(
                "127.0.0.1", server.port, local_addr=(f"127.0.3.{1 + i % 10}", 0)
            )
            writer.write(b"GET /livez HTTP/1.1\r\nHost: x\r\n")
            writers.append((reader, writer))
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}") as client:
            for _ in range(5):
                assert (await client.get("/livez")).status_code == 200
        evicted = [await asyncio.wait_for(r.read(), 5) for r, _ in writers[:100]]
        assert all(e.startswith(b"HTTP/1.1 408") for e in evicted), evicted[0]
        assert server.protocol.guard.open <= 100 + 1
    finally:
        for _, writer in writers:
            writer.close()
        await server.stop()


async def test_a_large_body_to_an_api_route_is_answered_413_before_it_is_sent() -> None:
    server = HttpServer(create_app(Readiness()), bind("127.0.0.1", 0), HttpLimits(), lambda _: 1024)
    await server.start()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(
            b"POST /livez HTTP/1.1\r\nHost: x\r\nContent-Length: 67108864\r\n\r\n" + b"x" * 100
        )
        answer = await asyncio.wait_for(reader.read(), 5)
        assert answer.startswith(b"HTTP/1.1 413"), answer
        assert b"refused unread" in answer
        writer.close()
    finally:
        await server.stop()
