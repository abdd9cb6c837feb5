"""The HTTP listener's socket lets asyncio disable Nagle on every connection it accepts."""

from __future__ import annotations

import asyncio
import socket

from broker.http import bind


async def test_accepted_connections_get_tcp_nodelay() -> None:
    # asyncio sets TCP_NODELAY on an accepted socket only when the listening socket's
    # protocol is IPPROTO_TCP; with 0 every response waited 40 ms for a delayed ACK.
    sock = bind("127.0.0.1", 0)
    accepted: asyncio.Queue[bool] = asyncio.Queue()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        raw = writer.get_extra_info("socket")
        await accepted.put(bool(raw.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)))
        writer.close()

    server = await asyncio.start_server(serve, sock=sock)
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", sock.getsockname()[1])
        assert await asyncio.wait_for(accepted.get(), 5) is True
        writer.close()
    finally:
        server.close()
        await server.wait_closed()
