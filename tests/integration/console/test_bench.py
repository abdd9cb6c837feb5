"""The console benchmark runs end to end (small), so its figures can be reproduced."""

from __future__ import annotations

from broker.console.bench import run


async def test_bench_loads_times_and_compares(pg_admin_dsn: str) -> None:
    result = await run(pg_admin_dsn, 2_000, repeat=1)
    timed = ("flows", "health", "dead_letters", "alert_history", "timeline")
    assert set(result) == {"load_s"} | {f"{t}_ms" for t in timed} | {
        f"{t}_baseline_ms" for t in timed
    }
    assert all(value > 0 for value in result.values())
