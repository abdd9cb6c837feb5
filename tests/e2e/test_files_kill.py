"""SIGKILL while the files role takes a stream of HPRIM files: none lost, none stored twice.

carebroker runs as a deployment of the role would (`carebroker run --role
files`) against a PostgreSQL that outlives it; it is killed while files are
being taken, then started again on the same directory.
"""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import asyncpg
import pytest

from tests.conftest import REPO, wait_for
from tests.e2e.conftest import Running, run_env, start_carebroker

pytestmark = pytest.mark.e2e
FILES = 40
SAMPLE = (REPO / "tests" / "data" / "hprim" / "labo-sud-h22.hpr").read_bytes()
PARTNERS = """
partners:
  - {id: labo-sud, name: Laboratoire Sud Biologie, kind: lab, facilities: [LABO-SUD]}
"""


def _start(tmp_path: Path, env: dict[str, str]) -> Running:
    return start_carebroker(tmp_path, "--role", "files", command="run", env=env)


async def test_sigkill_while_taking_files_loses_and_duplicates_nothing(
    tmp_path: Path,
    carebroker: list[Running],
    database_url: str,
    kafka_bootstrap: str,
    topic_prefix: str,
) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    partners = tmp_path / "partners.yaml"
    partners.write_text(PARTNERS)
    for n in range(FILES):  # one patient each, each file its own content
        data = SAMPLE.replace(b"|LS-PAT-42|", f"|LS-PAT-{n:03d}|".encode())
        (inbox / f"LS{n:04d}.HPR").write_bytes(data)
    env = {
        **run_env(database_url, kafka_bootstrap, topic_prefix),
        "CAREBROKER_CONFIG": str(partners),
        "CAREBROKER_FILES__DIRECTORY": str(inbox),
        "CAREBROKER_FILES__POLL_INTERVAL_S": "0.05",
        "CAREBROKER_FILES__SETTLE_S": "0",
    }
    done = inbox / "done"

    first = _start(tmp_path, env)
    carebroker.append(first)
    await asyncio.to_thread(first.wait_healthy, 60)
    await wait_for(lambda: done.exists() and any(done.iterdir()), timeout=60, interval=0.005)
    first.process.send_signal(signal.SIGKILL)  # in the middle of the stream
    first.process.wait(10)
    moved_before = len(list(done.iterdir()))
    assert moved_before < FILES, "the kill came after the last file: nothing to prove"

    again = _start(tmp_path, env)
    carebroker.append(again)
    await asyncio.to_thread(again.wait_healthy, 60)
    await wait_for(lambda: len(list(done.iterdir())) == FILES, timeout=60)
    again.stop(signal.SIGTERM)
    assert sorted(p.name for p in inbox.iterdir() if p.is_file()) == []

    conn = await asyncpg.connect(database_url)
    try:
        stored = await conn.fetch("SELECT control_id, status FROM messages ORDER BY control_id")
        pickups = await conn.fetch("SELECT name, outcome FROM file_pickups")
    finally:
        await conn.close()
    # Every file's patient exactly once, whatever the kill interrupted.
    assert len(stored) == FILES and {r["status"] for r in stored} == {"accepted"}
    assert len({r["control_id"] for r in stored}) == FILES
    taken = {r["name"] for r in pickups if r["outcome"] == "accepted"}
    assert taken == {f"LS{n:04d}.HPR" for n in range(FILES)}
    assert {r["outcome"] for r in pickups} <= {"accepted", "duplicate"}
