"""A ``helm install`` played out on this machine, without Kubernetes or Docker.

The chart is rendered with values that point at this session's PostgreSQL and
tansu; then, as the cluster would: the migration hook Job's container command
runs against an empty database, and each role Deployment's container command
starts with exactly the environment and files its pod would get (the image's
ENV, the rendered env, the partner directory ConfigMap written where it is
mounted). The code runs from the wheel the image installs, not the checkout.
Every role must answer its readiness probe, then stop cleanly on SIGTERM.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from broker.local import free_port
from broker.settings import ROLES
from tests.chart.conftest import PodStart, image_environment
from tests.conftest import REPO, scratch_database
from tests.e2e.conftest import Running

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

PARTNERS = REPO / "tests" / "data" / "partners.yaml"


@pytest.fixture
async def empty_database(pg_admin_dsn: str) -> AsyncIterator[str]:
    """A database with no schema at all, as on the day of the first install."""
    async with scratch_database(pg_admin_dsn, prefix="cbchart") as dsn:
        yield dsn


def _process_environment(
    container_env: dict[str, str], image_site: Path, home: Path
) -> dict[str, str]:
    """The image's ENV under the container's env, with this machine's Python on PATH."""
    env = image_environment()
    env["PATH"] = f"{Path(sys.executable).parent}:{os.environ['PATH']}"
    env["HOME"] = str(home)
    env["PYTHONPATH"] = str(image_site)  # what `pip install .` put in the image
    env.update(container_env)
    return env


async def test_install_migrates_then_every_role_starts_and_stops(
    render: Any,
    empty_database: str,
    kafka_bootstrap: str,
    topic_prefix: str,
    image_site: Path,
    tmp_path: Path,
    carebroker: list[Running],
) -> None:
    http_ports = {role: free_port() for role in ROLES}
    metrics_ports = {role: free_port() for role in ROLES}
    mllp_port = free_port()
    rendered = render(
        {
            "settings": {
                "kafka_bootstrap_servers": kafka_bootstrap,
                "kafka_topic_prefix": topic_prefix,
                "kafka_partitions": 4,
                # Loopback only: test traffic stays on this machine.
                "mllp": {"host": "127.0.0.1", "port": mllp_port},
                "http_host": "127.0.0.1",
                "metrics_host": "127.0.0.1",
                "config": {"directory": PARTNERS.read_text()},
            },
            # Pods each have their own address; here the roles share one, so their ports differ.
            "roles": {
                role: {
                    "settings": {"http_port": http_ports[role], "metrics_port": metrics_ports[role]}
                }
                for role in ROLES
            },
        }
    )
    config_maps = {c["metadata"]["name"]: c["data"] for c in rendered.of_kind("ConfigMap")}
    # The Secret a CloudNativePG cluster would hold (the chart's default reference).
    secrets = {"carebroker-db-app": {"uri": empty_database}}

    (job,) = rendered.of_kind("Job")
    pod = job["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    root = tmp_path / "migrate"
    env = PodStart(root, config_maps, secrets).environment(pod, container)
    migrated = subprocess.run(
        container["command"] + container["args"],
        env=_process_environment(env, image_site, root / "tmp"),
        cwd=root / "tmp",
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert migrated.returncode == 0, migrated.stderr
    assert "migrations applied: 0001_spine" in migrated.stdout
    conn = await asyncpg.connect(empty_database)
    try:
        assert await conn.fetchval("SELECT to_regclass('outbox') IS NOT NULL")
    finally:
        await conn.close()

    started: dict[str, Running] = {}
    for role, deployment in rendered.deployments().items():
        pod = deployment["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        assert ports["http"] == http_ports[role]
        assert ports["metrics"] == metrics_ports[role]
        root = tmp_path / role
        env = PodStart(root, config_maps, secrets).environment(pod, container)
        log = tmp_path / f"{role}.log"
        with log.open("w") as handle:
            process = subprocess.Popen(
                container["command"] + container["args"],
                env=_process_environment(env, image_site, root / "tmp"),
                cwd=root / "tmp",
                stdout=handle,
                stderr=subprocess.STDOUT,
                text=True,
            )
        running = Running(process, root / "tmp", log)
        carebroker.append(running)
        started[role] = running

    for role, running in started.items():
        assert running.http_port == http_ports[role], running.output()  # as the Service expects
        running.wait_healthy(120)
        body = httpx.get(f"{running.url}/healthz").json()
        assert body["components"][role] is True, (role, body)
        assert "carebroker ready: roles " + role in running.output()
        assert "5 partner(s) from" in running.output(), running.output()
        scraped = httpx.get(f"http://127.0.0.1:{metrics_ports[role]}/metrics")
        assert scraped.status_code == 200, role  # where the ServiceMonitor scrapes
    with socket.create_connection(("127.0.0.1", mllp_port), timeout=5):
        pass  # the mllp pod's MLLP port is bound where the Service sends senders

    for role, running in started.items():
        running.stop(signal.SIGTERM, timeout=15)
        output = running.output()
        assert running.process.returncode == 0, (role, output)
        assert "Traceback" not in output, (role, output)
