"""A changed partner file applies to running processes without a restart, audited; a bad one not."""

from __future__ import annotations

from tests.conftest import wait_for
from tests.integration.routing.conftest import Pipeline, carebroker
from tests.messages import ORU, variant


async def test_reload_applies_a_changed_file_and_audits_what_changed(pipeline: Pipeline) -> None:
    [first] = await pipeline.accept((variant(ORU, "RL-1"), "labo-sud"))
    await pipeline.wait_status([first.message_id], {"delivered"})
    assert "chu-montpellier" not in await pipeline.deliveries(first.message_id)

    text = pipeline.partners.read_text()
    pipeline.partners.write_text(text.replace("enabled: false", "enabled: true"))
    reloaded = await carebroker(
        pipeline.settings, "partners", "reload", "--config", str(pipeline.partners)
    )
    assert reloaded.status == 0, reloaded.err
    assert "stored as version 2" in reloaded.out
    assert "routes_changed: all-lab-results-copy" in reloaded.out

    # The running router learns it through PostgreSQL (NOTIFY), no restart.
    await wait_for(lambda: pipeline.ctx.directory.routes[1].enabled, timeout=10)
    [second] = await pipeline.accept((variant(ORU, "RL-2"), "labo-sud"))
    await pipeline.wait_status([second.message_id], {"delivered"})
    assert (await pipeline.deliveries(second.message_id))["chu-montpellier"]["rules"] == [
        "route:all-lab-results-copy"
    ]
    [event] = [e for e in await pipeline.audit() if e["kind"] == "partners_reloaded"][1:]
    assert event["actor"].startswith("user:")
    assert event["detail"]["routes_changed"] == ["all-lab-results-copy"]
    assert event["detail"]["version"] == 2

    unchanged = await carebroker(
        pipeline.settings, "partners", "reload", "--config", str(pipeline.partners)
    )
    assert "unchanged" in unchanged.out
    history = await carebroker(pipeline.settings, "partners", "history")
    assert history.out.splitlines()[0].split()[0] == "2"


async def test_invalid_file_is_refused_and_the_running_directory_kept(pipeline: Pipeline) -> None:
    before = pipeline.ctx.directory.digest
    text = pipeline.partners.read_text()
    pipeline.partners.write_text(text.replace("kind: gp", "kind: pharmacy", 1))
    refused = await carebroker(
        pipeline.settings, "partners", "reload", "--config", str(pipeline.partners)
    )
    assert refused.status == 2
    line = next(
        i
        for i, row in enumerate(pipeline.partners.read_text().splitlines(), 1)
        if "kind: pharmacy" in row
    )
    assert f"partners.yaml:{line}: partner 'cabinet-dupont': partners.2.kind" in refused.err
    assert pipeline.ctx.directory.digest == before
    assert await pipeline.pool.fetchval("SELECT max(version) FROM partner_directory") == 1
