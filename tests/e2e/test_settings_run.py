"""`carebroker run` takes the console's and the FHIR gateway's settings from its environment.

The roles read them from the one ``Settings`` the command built at start-up
(``CAREBROKER_CONSOLE__*``, ``CAREBROKER_FHIR__*``); a variable under its
pre-nesting name stops the command with one line naming the new one.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
import yaml

from tests.conftest import REPO
from tests.e2e.conftest import Running, start_carebroker
from tests.integration.test_fhir_gateway import lab_message

pytestmark = pytest.mark.e2e
BASE_URL = "https://fhir.region.example/fhir"
CERT_HEADER = "X-Client-Cert-CN"


def _partners(tmp_path: Path) -> Path:
    """The example directory, with labo-sud known by its client certificate's CN."""
    data = yaml.safe_load((REPO / "tests" / "data" / "partners.yaml").read_text())
    for partner in data["partners"]:
        if partner["id"] == "labo-sud":
            partner["certificate_cn"] = "labo-sud.example"
    config = tmp_path / "partners.yaml"
    config.write_text(yaml.safe_dump(data))
    return config


def test_run_reads_the_console_and_fhir_settings_from_the_environment(
    tmp_path: Path,
    database_url: str,
    kafka_bootstrap: str,
    topic_prefix: str,
    carebroker: list[Running],
) -> None:
    store = {
        "CAREBROKER_DATABASE_URL": database_url,
        "CAREBROKER_KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "CAREBROKER_KAFKA_FETCH_MAX_WAIT_MS": "10",  # tansu holds fetches: see Settings
        "CAREBROKER_KAFKA_TOPIC_PREFIX": topic_prefix,
        "CAREBROKER_CONFIG": str(_partners(tmp_path)),
    }
    env = {
        **store,
        "CAREBROKER_FHIR__BASE_URL": BASE_URL,
        "CAREBROKER_FHIR__CLIENT_CERT_HEADER": CERT_HEADER,
        # Never contacted: the sign-in page only offers the button.
        "CAREBROKER_CONSOLE__OIDC_ISSUER": "http://127.0.0.1:9/realms/care",
        "CAREBROKER_CONSOLE__OIDC_CLIENT_ID": "carebroker",
        "CAREBROKER_CONSOLE__OIDC_LABEL": "Pro Santé Connect",
    }
    roles = ("--role", "fhir", "--role", "console")
    running = start_carebroker(tmp_path, *roles, command="run", env=env)
    carebroker.append(running)
    running.wait_healthy(90)

    metadata = httpx.get(f"{running.url}/fhir/metadata", timeout=10).json()
    assert metadata["implementation"]["url"] == BASE_URL
    # The certificate header is trusted because the setting names it.
    headers = {CERT_HEADER: "labo-sud.example", "Content-Type": "application/fhir+json"}
    answer = httpx.post(
        f"{running.url}/fhir/$process-message",
        json=lab_message("SETTINGS-1"),
        headers=headers,
        timeout=10,
    )
    assert answer.status_code == 200, answer.text
    login = httpx.get(f"{running.url}/console/login", timeout=10)
    assert "Pro Santé Connect" in login.text
    running.stop()
    assert running.process.returncode == 0, running.output()

    # The same deployment with a variable under its old name does not start.
    env["CAREBROKER_FHIR_CLIENT_CERT_HEADER"] = env.pop("CAREBROKER_FHIR__CLIENT_CERT_HEADER")
    refused = start_carebroker(tmp_path, *roles, command="run", env=env)
    carebroker.append(refused)
    assert refused.process.wait(timeout=60) == 2
    assert refused.output() == (
        "carebroker: error: unknown settings: "
        "CAREBROKER_FHIR_CLIENT_CERT_HEADER is now CAREBROKER_FHIR__CLIENT_CERT_HEADER\n"
    )
