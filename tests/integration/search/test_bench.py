"""`carebroker bench search` runs end to end (small), so its figures can be reproduced."""

from __future__ import annotations

from broker.commands.bench_search import run
from tests.conftest import scratch_database


async def test_bench_seeds_times_each_search_and_its_baseline(pg_admin_dsn: str) -> None:
    async with scratch_database(pg_admin_dsn) as dsn:
        seeded, indexed, baseline = await run(
            dsn, messages=3_000, days=3, repeat=2, baseline_repeat=1
        )
    assert (seeded.messages, seeded.patients, seeded.days) == (3_000, 150, 3)
    assert indexed.keys() == baseline.keys() and len(indexed) == 10
    assert all(len(t.latencies) == 2 for t in indexed.values())
    assert all(len(t.latencies) == 1 for t in baseline.values())
    # Both servers answered the same searches with the same rows.
    assert {k: t.rows for k, t in indexed.items()} == {k: t.rows for k, t in baseline.items()}
    assert indexed["control id"].rows == 1
    assert indexed["patient identifier (operator, audited)"].rows == 20
    assert indexed["recipient, newest 100"].rows == 100
