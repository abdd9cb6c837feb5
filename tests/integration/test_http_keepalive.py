"""The HTTP listener answers keep-alive requests without waiting on Nagle's algorithm."""

from __future__ import annotations

import socket

import httpx

from broker.health import Readiness
from broker.http import HttpServer, bind, create_app


async def test_connections_accepted_by_the_listener_send_without_delay() -> None:
    # With Nagle on, a response written in two parts waits for the client's
    # delayed ACK (40 ms on Linux) on every request after a connection's first:
    # the API's clients (console polling, `carebroker messages`, FHIR senders)
    # keep connections alive. Timing it would be flaky; the socket option is not.
    server = HttpServer(create_app(Readiness()), bind("127.0.0.1", 0))
    await server.start()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}") as http:
            for _ in range(2):
                assert (await http.get("/livez")).status_code == 200
            connections = list(server.server.server_state.connections)
            assert connections
            for connection in connections:
                sock = connection.transport.get_extra_info("socket")  # type: ignore[attr-defined]
                assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
    finally:
        await server.stop()
