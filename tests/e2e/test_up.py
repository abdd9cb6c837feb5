"""`carebroker up` as a newcomer runs it: healthy, stoppable, restartable, clear when it cannot."""

from __future__ import annotations

import signal
import socket
from pathlib import Path

import httpx
import pytest

from tests.conftest import REPO
from tests.e2e.conftest import Running, start_carebroker

pytestmark = pytest.mark.e2e
PARTNERS = REPO / "tests" / "data" / "partners.yaml"


def test_up_serves_health_then_stops_cleanly_and_restarts(
    tmp_path: Path, carebroker: list[Running]
) -> None:
    first = start_carebroker(tmp_path, "--config", str(PARTNERS))
    carebroker.append(first)
    first.wait_healthy(60)
    body = httpx.get(f"{first.url}/healthz").json()
    assert body["not_ready"] == [] and body["components"]["postgresql"] is True
    assert first.children, "embedded PostgreSQL and Kafka should be child processes"
    took = first.stop(signal.SIGTERM, timeout=10)
    assert took < 10
    assert first.process.returncode == 0, first.output()
    assert first.leftover_children() == []
    output = first.output()
    for line in (
        "carebroker http: http://127.0.0.1:",
        "carebroker database: embedded PostgreSQL",
        "carebroker kafka: local broker",
        f"carebroker mllp: 127.0.0.1:{first.mllp_port}",
        "carebroker ready:",
    ):
        assert line in output, output
    assert "Traceback" not in output

    again = start_carebroker(tmp_path, "--config", str(PARTNERS), data_dir=first.data_dir)
    carebroker.append(again)
    again.wait_healthy(60)
    again.stop(signal.SIGINT, timeout=10)
    assert again.process.returncode == 0, again.output()
    assert again.leftover_children() == []


def _fails(
    tmp_path: Path,
    carebroker: list[Running],
    *args: str,
    env: dict[str, str] | None = None,
    command: str = "up",
    data_dir: Path | None = None,
) -> str:
    running = start_carebroker(tmp_path, *args, env=env, command=command, data_dir=data_dir)
    carebroker.append(running)
    running.process.wait(timeout=60)
    output = running.output()
    assert running.process.returncode == 2, output
    assert "Traceback" not in output, output
    return output


def test_taken_port_is_named(tmp_path: Path, carebroker: list[Running]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        output = _fails(tmp_path, carebroker, "--mllp-port", str(port))
    assert f"MLLP port 127.0.0.1:{port} is already in use" in output


def test_unwritable_data_dir_is_named(tmp_path: Path, carebroker: list[Running]) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    output = _fails(tmp_path, carebroker, data_dir=blocker / "data")
    assert f"data dir {blocker / 'data'} is not writable" in output


def test_invalid_config_names_file_line_and_field(
    tmp_path: Path, carebroker: list[Running]
) -> None:
    config = tmp_path / "partners.yaml"
    text = PARTNERS.read_text().replace("kind: lab", "kind: laboratory")
    config.write_text(text)
    line = next(i for i, text_line in enumerate(text.splitlines(), 1) if "laboratory" in text_line)
    output = _fails(tmp_path, carebroker, "--config", str(config))
    assert f"{config}:{line}: partner 'labo-sud': partners.1.kind" in output


def test_unreachable_postgresql_is_named(tmp_path: Path, carebroker: list[Running]) -> None:
    output = _fails(
        tmp_path,
        carebroker,
        "--role",
        "router",
        command="run",
        env={
            "CAREBROKER_DATABASE_URL": "postgresql://postgres@127.0.0.1:9/carebroker",
            "CAREBROKER_KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9",
        },
    )
    assert "cannot reach PostgreSQL at 127.0.0.1:9/carebroker: connection refused" in output


def test_unreachable_kafka_is_named(
    tmp_path: Path, carebroker: list[Running], database_url: str
) -> None:
    output = _fails(
        tmp_path,
        carebroker,
        "--role",
        "router",
        command="run",
        env={
            "CAREBROKER_DATABASE_URL": database_url,
            "CAREBROKER_KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9",
        },
    )
    assert "cannot reach Kafka at 127.0.0.1:9" in output
