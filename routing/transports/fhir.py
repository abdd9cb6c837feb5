"""Deliver a FHIR message Bundle to ``<url>/$process-message`` (FHIR R4 messaging).

``$process-message`` is not idempotent (FHIR R4 MessageHeader operations), so
the Bundle carries a stable ``Bundle.identifier`` (set by the render) and the
receiver is expected to recognise a resend; the request also carries
``X-Request-ID`` (this delivery) and ``X-Correlation-ID`` (the message), as
NHS BaRS receivers require (domain-requirements §1.8).

The answer decides:

- 2xx → delivered, unless the response message's
  ``MessageHeader.response.code`` says ``fatal-error`` (failed) or
  ``transient-error`` (retry);
- 409 with an OperationOutcome issue ``duplicate`` → delivered: the receiver
  already processed this Bundle (BaRS transactional integrity);
- 408, 429 and 5xx, timeouts, connection errors → retry;
- any other 4xx → failed for good, the OperationOutcome kept.
"""

from __future__ import annotations

import json
import logging
import socket
from typing import Any

import httpx

from broker.directory import FhirEndpoint
from routing.transports import Outcome, Outgoing

MAX_RESPONSE_BYTES = 1024 * 1024
# httpx logs every request at INFO (method and URL); carebroker logs outcomes itself.
logging.getLogger("httpx").setLevel(logging.WARNING)
_TRANSIENT_4XX = frozenset({408, 425, 429})


class FhirTransport:
    """POST message Bundles to one FHIR endpoint."""

    def __init__(self, recipient: str, endpoint: FhirEndpoint) -> None:
        self.recipient = recipient
        self.endpoint = endpoint
        self.concurrency = endpoint.concurrency
        self.url = endpoint.url.rstrip("/") + "/$process-message"
        self._client = httpx.AsyncClient(
            timeout=endpoint.timeout_s,
            follow_redirects=False,
            transport=httpx.AsyncHTTPTransport(
                limits=httpx.Limits(max_connections=endpoint.concurrency),
                # Headers and body leave in separate writes: without TCP_NODELAY,
                # Nagle and the receiver's delayed ACK add ~40 ms to every request.
                socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)],
            ),
        )

    async def send(self, item: Outgoing) -> Outcome:
        """POST the Bundle; the status code and the response message decide."""
        try:
            response = await self._client.post(
                self.url,
                content=item.payload,
                headers={
                    "Content-Type": "application/fhir+json",
                    "Accept": "application/fhir+json",
                    "X-Request-ID": str(item.delivery_id),
                    "X-Correlation-ID": str(item.message_id),
                },
            )
        except httpx.TimeoutException:
            return Outcome("retry", "timeout", f"no answer within {self.endpoint.timeout_s:g} s")
        except httpx.HTTPError as exc:
            return Outcome("retry", "no-connection", f"HTTP request failed: {type(exc).__name__}")
        body = response.content[:MAX_RESPONSE_BYTES]
        return read_response(response.status_code, body)

    async def close(self) -> None:
        """Close the HTTP client's connections."""
        await self._client.aclose()


def read_response(status: int, body: bytes) -> Outcome:
    """Turn an HTTP status and body into an Outcome (issue codes only in the error)."""
    code = f"HTTP {status}"
    resource = _json(body)
    if 200 <= status < 300:
        response_code = _message_response_code(resource)
        if response_code == "fatal-error":
            return Outcome("failed", code, "response message: fatal-error", body)
        if response_code == "transient-error":
            return Outcome("retry", code, "response message: transient-error", body)
        return Outcome("delivered", code, None, body)
    issues = _issue_codes(resource)
    if status == 409 and "duplicate" in issues:
        return Outcome("delivered", code, None, body)
    detail = f"{code}" + (f": OperationOutcome {', '.join(issues)}" if issues else "")
    if status >= 500 or status in _TRANSIENT_4XX:
        return Outcome("retry", code, detail, body)
    return Outcome("failed", code, detail, body)


def _json(body: bytes) -> Any:
    try:
        return json.loads(body) if body else None
    except ValueError:
        return None


def _message_response_code(resource: Any) -> str | None:
    if not isinstance(resource, dict) or resource.get("resourceType") != "Bundle":
        return None
    for entry in resource.get("entry") or []:
        inner = entry.get("resource") if isinstance(entry, dict) else None
        if isinstance(inner, dict) and inner.get("resourceType") == "MessageHeader":
            answer = inner.get("response")
            code = answer.get("code") if isinstance(answer, dict) else None
            return code if isinstance(code, str) else None
    return None


def _issue_codes(resource: Any) -> list[str]:
    if not isinstance(resource, dict) or resource.get("resourceType") != "OperationOutcome":
        return []
    return [
        str(issue.get("code"))
        for issue in resource.get("issue") or []
        if isinstance(issue, dict) and issue.get("code")
    ]
