"""Start ``carebroker`` as a user would: the installed command, in a subprocess."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil
import pytest


def carebroker_command() -> list[str]:
    """Return the installed ``carebroker`` entry point next to this Python, or PATH's."""
    beside = Path(sys.executable).parent / "carebroker"
    found = str(beside) if beside.exists() else shutil.which("carebroker")
    assert found, "carebroker is not installed in this environment (pip install -e .)"
    return [found]


@dataclass
class Running:
    """A started ``carebroker`` process and how to reach it."""

    process: subprocess.Popen[str]
    data_dir: Path
    log: Path
    children: list[int] = field(default_factory=list)

    @property
    def http_port(self) -> int:
        """The HTTP port carebroker bound (asked for port 0, read from its banner)."""
        return self._banner_port(r"carebroker http: http://[^\s:]+:(\d+)")

    @property
    def mllp_port(self) -> int:
        """The MLLP port carebroker bound (asked for port 0, read from its banner)."""
        return self._banner_port(r"carebroker mllp: [^\s:]+:(\d+)")

    def _banner_port(self, pattern: str, timeout: float = 60.0) -> int:
        # Port 0 lets the kernel choose: no race with other processes on the
        # machine between picking a free port and binding it.
        deadline = time.monotonic() + timeout
        while True:
            match = re.search(pattern, self.output())
            if match:
                return int(match[1])
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"no banner line {pattern!r}:\n{self.output()}")
            time.sleep(0.05)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_healthy(self, timeout: float = 60.0) -> float:
        """Wait until /healthz answers 200; return the seconds it took."""
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            if self.process.poll() is not None:
                raise AssertionError(f"carebroker exited early:\n{self.output()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    self.children = [
                        c.pid for c in psutil.Process(self.process.pid).children(recursive=True)
                    ]
                    return time.monotonic() - start
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"/healthz not 200 within {timeout} s:\n{self.output()}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> float:
        """Send ``sig`` and wait for exit; return the seconds it took."""
        start = time.monotonic()
        if self.process.poll() is None:
            self.process.send_signal(sig)
            self.process.wait(timeout=timeout)
        return time.monotonic() - start

    def leftover_children(self) -> list[int]:
        return [
            pid
            for pid in self.children
            if psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
        ]


def start_carebroker(
    tmp_path: Path,
    *args: str,
    data_dir: Path | None = None,
    env: dict[str, str] | None = None,
    command: str = "up",
) -> Running:
    """Start ``carebroker up`` (or ``run``) on kernel-chosen ports, logging into tmp_path."""
    data_dir = data_dir or tmp_path / "data"
    log = tmp_path / f"carebroker-{uuid.uuid4().hex[:8]}.log"
    environment = {k: v for k, v in os.environ.items() if not k.startswith("CAREBROKER_")}
    environment.update(env or {})
    handle = log.open("w")
    process = subprocess.Popen(
        [
            *carebroker_command(),
            command,
            "--http-port",
            "0",
            "--mllp-port",
            "0",
            "--data-dir",
            str(data_dir),
            *args,
        ],
        stdout=handle,
        stderr=subprocess.STDOUT,
        text=True,
        env=environment,
        cwd=tmp_path,
    )
    handle.close()
    return Running(process, data_dir, log)


def run_env(database_url: str, kafka_bootstrap: str, topic_prefix: str) -> dict[str, str]:
    """Return the environment of ``carebroker run`` on this test's database, Kafka and topics."""
    return {
        "CAREBROKER_DATABASE_URL": database_url,
        "CAREBROKER_KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "CAREBROKER_KAFKA_FETCH_MAX_WAIT_MS": "10",  # tansu holds fetches: see Settings
        "CAREBROKER_KAFKA_TOPIC_PREFIX": topic_prefix,
        "CAREBROKER_KAFKA_PARTITIONS": "4",
    }


@pytest.fixture
def carebroker(tmp_path: Path) -> Iterator[list[Running]]:
    """Collect started processes and make sure none outlives the test."""
    started: list[Running] = []
    yield started
    for running in started:
        if running.process.poll() is None:
            running.process.kill()
            running.process.wait()
        for pid in running.leftover_children():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
