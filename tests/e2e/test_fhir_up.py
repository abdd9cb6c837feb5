"""`carebroker up` serves the FHIR gateway: a partner's message in, stored, answered once."""

from __future__ import annotations

import hashlib
import signal
from pathlib import Path

import httpx
import pytest
import yaml

from tests.conftest import REPO
from tests.e2e.conftest import Running, start_carebroker
from tests.integration.test_fhir_gateway import lab_message

pytestmark = pytest.mark.e2e
TOKEN = "labo-sud-e2e-token"


def test_up_accepts_fhir_messages_once(tmp_path: Path, carebroker: list[Running]) -> None:
    data = yaml.safe_load((REPO / "tests" / "data" / "partners.yaml").read_text())
    for partner in data["partners"]:
        if partner["id"] == "labo-sud":
            partner["token_sha256"] = [hashlib.sha256(TOKEN.encode()).hexdigest()]
    config = tmp_path / "partners.yaml"
    config.write_text(yaml.safe_dump(data))
    running = start_carebroker(tmp_path, "--config", str(config))
    carebroker.append(running)
    running.wait_healthy(90)
    assert "carebroker fhir: /fhir" in running.output()

    metadata = httpx.get(f"{running.url}/fhir/metadata", timeout=10)
    assert metadata.status_code == 200
    assert metadata.json()["resourceType"] == "CapabilityStatement"

    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/fhir+json"}
    message = lab_message("E2E-1")
    first = httpx.post(
        f"{running.url}/fhir/$process-message", json=message, headers=headers, timeout=10
    )
    again = httpx.post(
        f"{running.url}/fhir/$process-message", json=message, headers=headers, timeout=10
    )
    assert first.status_code == 200, first.text
    assert again.content == first.content
    refused = httpx.post(
        f"{running.url}/fhir/$process-message", content=b"{", headers=headers, timeout=10
    )
    assert refused.status_code == 400
    assert refused.json()["resourceType"] == "OperationOutcome"

    running.stop(signal.SIGTERM)
    assert running.process.returncode == 0, running.output()
    assert "Traceback" not in running.output()


def test_bench_convert_prints_figures_with_a_baseline(tmp_path: Path) -> None:
    import subprocess

    from tests.e2e.conftest import carebroker_command

    done = subprocess.run(
        [
            *carebroker_command(),
            "bench",
            "convert",
            "--seconds",
            "0.3",
            "--type",
            "ORU^R01",
            "--corpus",
            str(REPO / "tests" / "corpus"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert "validate only" in lines[1]
    [row] = [line for line in lines if line.startswith("ORU^R01")]
    full, baseline = (float(x.replace(",", "")) for x in row.split()[3:5])
    assert full > 0 and baseline > 0
