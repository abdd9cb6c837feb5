"""The partners API: directory, health from the store, certificate expiry, admin reload."""

from __future__ import annotations

from pathlib import Path

import asyncpg
import httpx

from broker.console.partners import ERROR_CHARS, certificate
from tests.certs import self_signed_certificate
from tests.integration.console.conftest import Console, audit, get_as, sign_in
from tests.integration.console.traffic import add_delivery, add_message


async def test_partners_show_endpoint_health_and_traffic(
    client: httpx.AsyncClient, users: dict[str, str], pool: asyncpg.Pool
) -> None:
    await add_message(pool, "chu-montpellier", ago_s=5)
    await add_delivery(
        pool, "cabinet-dupont", status="delivered", received_ago_s=60, delivered_ago_s=50
    )
    await add_delivery(
        pool, "cabinet-dupont", status="failed", received_ago_s=30, last_error="E" * 1000
    )
    body = await get_as(client, "/api/partners")
    partners = {p["id"]: p for p in body["partners"]}
    assert list(partners) == [
        "chu-montpellier",
        "labo-sud",
        "cabinet-dupont",
        "maison-sante-nord",
        "cabinet-sans-interface",
    ]
    chu = partners["chu-montpellier"]
    assert (chu["endpoint"], chu["address"], chu["tls"]) == ("mllp", "127.0.0.1:7001", False)
    assert chu["accepts"] == "hl7v2 2.5 UNICODE UTF-8"
    assert chu["health"]["last_received_at"] is not None
    assert chu["inbound"]["received_1h"] == 1
    dupont = partners["cabinet-dupont"]
    assert dupont["health"]["last_delivered_at"] is not None
    assert dupont["health"]["last_error"] == "E" * ERROR_CHARS
    assert dupont["outbound"]["queued"] == 1 and dupont["outbound"]["delivered_1h"] == 1
    assert partners["labo-sud"]["endpoint"] == "" and partners["labo-sud"]["outbound"] is None
    assert partners["maison-sante-nord"]["address"] == "http://127.0.0.1:7003/fhir"
    assert body["source"].endswith("partners.yaml")
    # Tokens and practitioners stay out of the page.
    assert "token_sha256" not in str(body) and "DUPONT Anne" not in str(body)


def _pem(tmp_path: Path, days: int) -> Path:
    # An hour's margin, so that the whole days left are exactly ``days``.
    cert, _ = self_signed_certificate(tmp_path, days + 1 / 24, common_name="carebroker-client")
    return cert


def test_certificate_expiry_is_read_from_the_pem(tmp_path: Path) -> None:
    info = certificate(_pem(tmp_path, 20))
    assert info.subject == "CN=carebroker-client"
    assert info.days_left == 20 and info.error is None
    broken = tmp_path / "broken.pem"
    broken.write_text("not a certificate")
    assert certificate(broken).error == "cannot read the certificate: ValueError"
    assert certificate(tmp_path / "missing.pem").error == (
        "cannot read the certificate: FileNotFoundError"
    )


async def test_admin_reloads_the_directory_and_it_is_audited(
    client: httpx.AsyncClient, users: dict[str, str], console: Console, pool: asyncpg.Pool
) -> None:
    csrf = await sign_in(client, "ada")
    unchanged = await client.post("/api/partners/reload", headers={"X-CSRF-Token": csrf})
    assert unchanged.status_code == 200
    assert unchanged.json()["changed"] is False and unchanged.json()["partners"] == 5

    console.config.write_text(
        console.config.read_text().replace("name: Laboratoire Sud Biologie", "name: Labo Sud")
    )
    changed = await client.post("/api/partners/reload", headers={"X-CSRF-Token": csrf})
    assert changed.json()["changed"] is True
    assert console.ctx.directory.partner("labo-sud").name == "Labo Sud"  # type: ignore[union-attr]
    event = (await audit(pool))[-1]
    assert event["kind"] == "partners_reloaded" and event["actor"] == "user:ada"
    assert event["detail"]["partners_changed"] == ["labo-sud"]
    assert event["detail"]["partners"] == 5


async def test_an_invalid_file_is_refused_and_the_old_directory_stays(
    client: httpx.AsyncClient, users: dict[str, str], console: Console, pool: asyncpg.Pool
) -> None:
    before = console.ctx.directory
    console.config.write_text(console.config.read_text().replace("kind: lab", "kind: laboratory"))
    csrf = await sign_in(client, "ada")
    response = await client.post("/api/partners/reload", headers={"X-CSRF-Token": csrf})
    assert response.status_code == 422
    assert "partner 'labo-sud': partners.1.kind" in response.json()["detail"]
    assert console.ctx.directory is before
    event = (await audit(pool))[-1]
    assert event["kind"] == "partners_reloaded" and event["outcome"] == "minor_failure"
