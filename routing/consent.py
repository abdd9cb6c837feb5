"""Patient opposition to sharing: deliveries about these patients are blocked, never sent.

French law lets a patient object to their data being shared (CSP L1110-4;
domain-requirements §3.6, §4.4). carebroker keeps a table of oppositions,
managed with ``carebroker consent add/remove/list``. An opposition names one
patient identifier (assigning authority + value, as PID-3 carries it); the
value is stored only as its pseudonymous digest, the same digest the
envelope carries, so the router can match without any identifier in clear.

- The router checks every message's patient digests (``work.consent.opposed``):
  deliveries for an opposed patient are created ``blocked`` (no payload) and
  audited (``blocked``), the message's status is ``blocked``.
- Adding an opposition also blocks that patient's deliveries still pending.
- Removing one does not release anything already blocked: an operator
  decides with ``carebroker replay --message ID``.
"""

from __future__ import annotations

from broker.pseudonym import Pseudonymizer
from broker.store.consent import ConsentStore, Opposition

BLOCKED_REASON = "patient opposition on file"


async def add(
    store: ConsentStore,
    pseudonymizer: Pseudonymizer,
    *,
    authority: str,
    value: str,
    id_type: str = "",
    note: str = "",
    actor: str,
) -> tuple[str, int]:
    """File an opposition; block the patient's pending deliveries; return (digest, blocked)."""
    digest = pseudonymizer.digest(authority, value)
    blocked = await store.add(
        digest,
        authority=authority,
        id_type=id_type,
        note=note,
        actor=actor,
        blocked_reason=BLOCKED_REASON,
    )
    return digest, blocked


async def remove(
    store: ConsentStore, pseudonymizer: Pseudonymizer, *, authority: str, value: str, actor: str
) -> bool:
    """Withdraw an opposition; return whether there was one. Blocked deliveries stay blocked."""
    return await store.remove(
        pseudonymizer.digest(authority, value), authority=authority, actor=actor
    )


async def list_oppositions(store: ConsentStore) -> list[Opposition]:
    """Return every opposition on file, newest first."""
    return await store.list()


__all__ = ["BLOCKED_REASON", "Opposition", "add", "list_oppositions", "remove"]
