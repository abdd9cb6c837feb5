"""``GET /api/refusals``: what strangers were refused, per address, reason and minute.

Requests refused before anyone was identified (no or unknown credentials on
the FHIR gateway or the mailbox, sign-ins with unknown names or throttled)
are not messages and are not in the audit trail; :mod:`broker.strangers`
counts them. Operators read the counts here: who (the client address), when
(the minute, first and last request), how many, the declared bytes, and why.
Never a body, a token, a password or a typed user name.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel

from broker.console.auth import Operator
from broker.console.deps import Ctx

router = APIRouter(prefix="/api/refusals", tags=["operations"])


class RefusalOut(BaseModel):
    """Requests refused to one address for one reason within one minute."""

    minute: datetime
    address: str
    channel: str
    reason: str
    requests: int
    bytes: int
    first_at: datetime
    last_at: datetime


@router.get("", summary="Requests refused to strangers, newest first")
async def refusals(
    _: Operator,
    ctx: Ctx,
    hours: Annotated[float, Query(gt=0, le=24 * 7)] = 24,
    limit: Annotated[int, Query(ge=1, le=5000)] = 500,
) -> list[RefusalOut]:
    """Return the counts of the last ``hours`` (the record keeps 7 days)."""
    since = datetime.now(UTC) - timedelta(hours=hours)
    rows = await ctx.stores.refusals.recent(since, limit)
    return [RefusalOut(**vars(r)) for r in rows]
