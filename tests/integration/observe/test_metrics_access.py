"""Who may read /metrics and GET /api/alerts on the main HTTP listener: loopback, or a token.

A real listener (``HttpServer``) on this test's database. A client beyond the
machine is played by a trusted proxy on 127.0.0.9 that forwards a request
from 203.0.113.7 (X-Forwarded-For), the way an ingress controller does; no
traffic leaves loopback.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from types import SimpleNamespace

import asyncpg
import httpx
from pydantic import SecretStr

from broker import alerts, metrics
from broker.directory import Directory
from broker.health import Readiness
from broker.http import HttpServer, bind, create_app, http_limits
from broker.settings import Settings
from broker.store.db import Database
from broker.store.stores import Stores

PROXY = "127.0.0.9"
FORWARDED = {"X-Forwarded-For": "203.0.113.7"}


@asynccontextmanager
async def listener(pool: asyncpg.Pool, settings: Settings) -> AsyncIterator[str]:
    app = create_app(Readiness())
    app.state.context = SimpleNamespace(
        stores=Stores.over(Database(pool)), settings=settings, directory=Directory.empty()
    )
    app.state.lag_probe = None
    for router in (*metrics.ROUTERS, *alerts.ROUTERS):
        app.include_router(router)
    server = HttpServer(app, bind("127.0.0.1", 0), http_limits(settings))
    await server.start()
    try:
        yield f"http://127.0.0.1:{server.port}"
    finally:
        await server.stop()


def client(url: str, source: str = "127.0.0.1") -> httpx.AsyncClient:
    transport = httpx.AsyncHTTPTransport(local_address=source)
    return httpx.AsyncClient(base_url=url, transport=transport, timeout=10)


async def test_by_default_only_loopback_clients_read_metrics_and_alerts(
    pool: asyncpg.Pool,
) -> None:
    settings = Settings(http_trusted_proxies=PROXY)
    async with listener(pool, settings) as url:
        async with client(url) as local:
            assert (await local.get("/metrics")).status_code == 200
            assert (await local.get("/api/alerts")).status_code == 200
        async with client(url, PROXY) as proxied:
            for path in ("/metrics", "/api/alerts"):
                refused = await proxied.get(path, headers=FORWARDED)
                assert refused.status_code == 403, path
                assert "CAREBROKER_METRICS_TOKEN" in refused.text
                assert "carebroker_" not in refused.text
            # The health checks stay open to everyone (orchestrators, load balancers).
            assert (await proxied.get("/livez", headers=FORWARDED)).status_code == 200


async def test_forwarded_for_is_believed_only_from_a_trusted_proxy(pool: asyncpg.Pool) -> None:
    async with listener(pool, Settings()) as url, client(url) as local:
        # A local client claiming to forward for someone is just a local client.
        assert (await local.get("/metrics", headers=FORWARDED)).status_code == 200
    trusting = Settings(http_trusted_proxies=PROXY)
    async with listener(pool, trusting) as url, client(url, "127.0.0.10") as untrusted:
        # Not the trusted proxy: its header is ignored, it is loopback itself.
        assert (await untrusted.get("/metrics", headers=FORWARDED)).status_code == 200


async def test_with_a_token_every_client_must_send_it(pool: asyncpg.Pool) -> None:
    settings = Settings(metrics_token=SecretStr("scrape-secret"), http_trusted_proxies=PROXY)
    async with listener(pool, settings) as url:
        async with client(url) as local:
            missing = await local.get("/metrics")
            assert missing.status_code == 401
            assert missing.headers["WWW-Authenticate"] == "Bearer"
            wrong = await local.get("/api/alerts", headers={"Authorization": "Bearer nope"})
            assert wrong.status_code == 401
        async with client(url, PROXY) as proxied:
            good = {"Authorization": "Bearer scrape-secret", **FORWARDED}
            assert (await proxied.get("/metrics", headers=good)).status_code == 200
            assert (await proxied.get("/api/alerts", headers=good)).status_code == 200
