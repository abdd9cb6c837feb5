"""The consumer groups' timeouts fit together, so a revoke ends inside its rebalance (issue 8).

A send under way lasts up to its endpoint's answer timeout; a delivery
instance giving its partitions up waits for it (``REVOKE_WAIT_S``); the group
waits for that instance to rejoin for ``REBALANCE_TIMEOUT_MS``. Kafka drops a
member slower than that and hands its partitions on while it is still
sending. tansu, the local broker, does not drop it, so an integration test
cannot show the difference: these numbers are what keeps it from happening.
"""

from __future__ import annotations

from broker.directory import FhirEndpoint, MllpEndpoint
from routing.subscriber import REBALANCE_TIMEOUT_MS, REVOKE_WAIT_S, SESSION_TIMEOUT_MS


def test_a_revoke_outlasts_a_default_send_and_the_group_outlasts_a_revoke() -> None:
    assert MllpEndpoint.model_fields["ack_timeout_s"].default < REVOKE_WAIT_S
    assert FhirEndpoint.model_fields["timeout_s"].default < REVOKE_WAIT_S
    assert REVOKE_WAIT_S < REBALANCE_TIMEOUT_MS / 1000
    # A dead instance is still noticed by its silence, within seconds.
    assert SESSION_TIMEOUT_MS <= 10_000 < REBALANCE_TIMEOUT_MS
