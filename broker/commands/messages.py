"""``carebroker messages search|show``: the operators' message search from a terminal.

A client of the same HTTP API as the console (``GET /api/messages``,
``/api/messages/{id}``, ``/api/messages/{id}/audit``; ``docs/openapi.json``),
so it sees and may do exactly what its user's role allows, and a patient
search is audited under that user's name. It needs the API's address
(``--url``, else ``CAREBROKER_API_URL``, else this machine's
``CAREBROKER_HTTP_HOST``/``_PORT``) and an API token
(``CAREBROKER_API_TOKEN``, or ``--token-file``), made by ``carebroker users
token NAME``.

A patient identifier given as ``--patient AUTHORITY|-`` is read from
standard input, which keeps it out of the shell history and the process list.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from broker.commands.options import settings_from
from broker.errors import ConfigError, PermanentError, TransientError

MESSAGE_STATUSES = ("accepted", "rejected", "routed", "unroutable", "blocked")
DELIVERY_STATUSES = ("pending", "delivered", "failed", "dead", "blocked")
PAGE_MAX = 1000  # the API's largest page
_RELATIVE = re.compile(r"^(\d+)([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


class ApiError(PermanentError):
    """The API refused the request (401, 403, 404, 422): asking again will not help."""


class ApiUnreachableError(TransientError):
    """The API cannot be reached, or answered with a server error."""


def register(commands: Any) -> None:
    """Add ``messages search`` and ``messages show``."""
    parser = commands.add_parser(
        "messages",
        help="search messages and show one, through the HTTP API",
        description="Search messages and show one with its deliveries and audit timeline, "
        "through carebroker's HTTP API with an API token (CAREBROKER_API_TOKEN, from "
        "`carebroker users token NAME`).",
    )
    sub = parser.add_subparsers(dest="messages_command", metavar="ACTION", required=True)

    find = sub.add_parser(
        "search",
        help="find messages, newest first",
        description="Every filter given must match. Times are ISO 8601 (a time without an "
        "offset is local) or an age: 30m, 2h, 7d.",
    )
    find.add_argument("--id", dest="id", metavar="ID", help="carebroker id")
    find.add_argument("--control-id", metavar="ID", help="MSH-10 (or the FHIR Bundle identifier)")
    find.add_argument("--sender", metavar="PARTNER", help="partner id of the sender")
    find.add_argument("--recipient", metavar="PARTNER", help="partner id of a recipient")
    find.add_argument("--type", dest="message_type", metavar="TYPE", help="e.g. ORU^R01")
    find.add_argument("--status", choices=MESSAGE_STATUSES, help="the message's status")
    find.add_argument(
        "--delivery-status", choices=DELIVERY_STATUSES,
        help="a delivery's status (with --recipient: the delivery to it)",
    )  # fmt: skip
    find.add_argument("--since", metavar="TIME", help="received at or after (ISO 8601, or 2h)")
    find.add_argument("--until", metavar="TIME", help="received before (ISO 8601, or 30m)")
    find.add_argument(
        "--patient", metavar="AUTHORITY|ID",
        help="a patient identifier as PID-3 carries it: assigning authority (OID or namespace), "
        "'|', the value; '-' as the value reads it from standard input. Needs the operator "
        "role; audited",
    )  # fmt: skip
    find.add_argument(
        "--limit", type=int, default=50, metavar="N", help="messages to list (default 50)"
    )
    find.add_argument("--cursor", metavar="C", help="continue where a previous search stopped")
    _client_options(find)
    find.set_defaults(handler=_search)

    show = sub.add_parser("show", help="one message, its deliveries and (--audit) its timeline")
    show.add_argument("message_id", metavar="ID", help="carebroker id")
    show.add_argument("--audit", action="store_true", help="add the audit timeline")
    _client_options(show)
    show.set_defaults(handler=_show)


def _client_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--url", help="the API's address (CAREBROKER_API_URL; default http://HTTP_HOST:HTTP_PORT)"
    )
    parser.add_argument(
        "--token-file", type=Path, metavar="FILE",
        help="read the API token from FILE instead of CAREBROKER_API_TOKEN",
    )  # fmt: skip
    parser.add_argument("--json", action="store_true", help="print the API's JSON")


# --- talking to the API ---------------------------------------------------------------


class Api:
    """The HTTP API, as one user (the token's)."""

    def __init__(self, url: str, token: str) -> None:
        self.url = url.rstrip("/")
        self.client = httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {token}"}, timeout=60
        )

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Api:
        """Return the API the options and the environment name, with its token."""
        settings = settings_from(args)
        host = "127.0.0.1" if settings.http_host in ("0.0.0.0", "::", "") else settings.http_host  # noqa: S104 - an address to reach, not to bind
        url = args.url or settings.api_url or f"http://{host}:{settings.http_port}"
        if args.token_file is not None:
            try:
                token = args.token_file.read_text().strip()
            except OSError as exc:
                raise ConfigError(f"cannot read the token file {args.token_file}: {exc}") from exc
        elif settings.api_token is not None:
            token = settings.api_token.get_secret_value().strip()
        else:
            token = ""
        if not token:
            raise ConfigError(
                "no API token: set CAREBROKER_API_TOKEN (or --token-file) to a token made by "
                "`carebroker users token NAME`"
            )
        return cls(url, token)

    def get(self, path: str, params: dict[str, str] | None = None) -> Any:
        """GET a JSON resource; raise ApiError / ApiUnreachableError with the API's reason."""
        return self._call("GET", path, params=params)

    def post(self, path: str, payload: dict[str, Any]) -> Any:
        """POST a JSON body (filters that must stay out of URLs); answer as ``get``."""
        return self._call("POST", path, json=payload)

    def _call(self, method: str, path: str, **request: Any) -> Any:
        try:
            response = self.client.request(method, path, **request)
        except httpx.HTTPError as exc:
            raise ApiUnreachableError(
                f"cannot reach the carebroker API at {self.url}: {exc.__class__.__name__} "
                "(is carebroker running there? see --url)"
            ) from exc
        if response.status_code >= 500:
            raise ApiUnreachableError(f"the API at {self.url} answered {response.status_code}")
        if response.status_code >= 400:
            raise ApiError(f"the API refused ({response.status_code}): {_reason(response)}")
        return response.json()


def _reason(response: httpx.Response) -> str:
    try:
        detail = response.json().get("detail")
    except (ValueError, AttributeError):
        return response.reason_phrase
    if response.status_code == 401:
        return f"{detail}; the token is unknown, expired or revoked (`carebroker users token`)"
    if isinstance(detail, list):  # validation: name the parameter, never echo its value
        return "; ".join(f"{'.'.join(map(str, d['loc'][1:]))}: {d['msg']}" for d in detail)
    return str(detail)


# --- search ------------------------------------------------------------------------


def search_params(args: argparse.Namespace, now: datetime | None = None) -> dict[str, str]:
    """Return the query parameters of ``messages search``'s options."""
    params: dict[str, str] = {}
    for option, name in (
        ("id", "id"),
        ("control_id", "control_id"),
        ("sender", "sender"),
        ("recipient", "recipient"),
        ("message_type", "message_type"),
        ("status", "status"),
        ("delivery_status", "delivery_status"),
    ):
        value = getattr(args, option)
        if value is not None:
            params[name] = value
    for option in ("since", "until"):
        value = getattr(args, option)
        if value is not None:
            params[option] = parse_time(value, option, now).isoformat()
    if args.patient is not None:
        authority, bar, value = args.patient.partition("|")
        if value == "-":
            value = sys.stdin.readline().strip()
        if not bar or not authority.strip() or not value.strip():
            raise ConfigError("--patient takes AUTHORITY|ID (or AUTHORITY|- to read the ID)")
        params["patient_authority"], params["patient_id"] = authority.strip(), value.strip()
    if args.cursor:
        params["cursor"] = args.cursor
    return params


def parse_time(text: str, option: str, now: datetime | None = None) -> datetime:
    """Read an ISO 8601 time (local when it has no offset) or an age (``30m``, ``2h``, ``7d``)."""
    relative = _RELATIVE.match(text.strip())
    if relative:
        age = timedelta(**{_UNITS[relative[2]]: int(relative[1])})
        return (now or datetime.now(UTC)) - age
    try:
        parsed = datetime.fromisoformat(text.strip())
    except ValueError as exc:
        raise ConfigError(
            f"--{option}: {text!r} is neither an ISO 8601 time nor an age like 2h"
        ) from exc
    return parsed if parsed.tzinfo else parsed.astimezone()


def collect(api: Api, params: dict[str, str], limit: int) -> tuple[list[Any], str | None]:
    """Follow the pages until ``limit`` messages or the last; return them and the next cursor."""
    found: list[Any] = []
    cursor = params.get("cursor")
    while len(found) < limit:
        page = {**params, "limit": str(min(limit - len(found), PAGE_MAX))}
        if cursor:
            page["cursor"] = cursor
        # In a body, not a query string: a patient identifier stays out of every URL.
        body = api.post("/api/messages/search", page)
        found += body["messages"]
        cursor = body["next"]
        if cursor is None:
            break
    return found, cursor


def _search(args: argparse.Namespace) -> int:
    if args.limit < 1:
        raise ConfigError("--limit must be at least 1")
    params = search_params(args)
    api = Api.from_args(args)
    found, cursor = collect(api, params, args.limit)
    if args.json:
        _out(json.dumps({"messages": found, "next": cursor}, indent=2, ensure_ascii=False))
        return 0
    rows = [
        (
            _when(m["received_at"]),
            m["id"],
            m["sender"] or "-",
            m["control_id"] or "-",
            m["message_type"] or "-",
            m["status"],
            " ".join(f"{k}:{v}" for k, v in sorted(m["deliveries"].items())) or "-",
            ",".join(m.get("recipients", [])) or "-",
        )
        for m in found
    ]
    header = ("RECEIVED (UTC)", "ID", "SENDER", "CONTROL ID", "TYPE", "STATUS", "DELIVERIES", "TO")
    _table(header, rows)
    sys.stderr.write(f"{len(found)} message(s)")
    sys.stderr.write(f"; more with --cursor {cursor}\n" if cursor else "\n")
    return 0


# --- show --------------------------------------------------------------------------


def _show(args: argparse.Namespace) -> int:
    api = Api.from_args(args)
    message = api.get(f"/api/messages/{args.message_id}")
    timeline = api.get(f"/api/messages/{args.message_id}/audit") if args.audit else None
    if args.json:
        body = {"message": message, "audit": timeline} if timeline is not None else message
        _out(json.dumps(body, indent=2, ensure_ascii=False))
        return 0
    for label, key in (
        ("id", "id"),
        ("received", "received_at"),
        ("channel", "channel"),
        ("format", "format"),
        ("sender", "sender"),
        ("control id", "control_id"),
        ("type", "message_type"),
        ("version", "version"),
        ("status", "status"),
        ("reason", "reason"),
    ):
        value = message.get(key)
        if value is not None:
            _out(f"{label + ':':<12} {_when(value) if key == 'received_at' else value}")
    _out("")
    _table(
        ("RECIPIENT", "STATUS", "ATTEMPTS", "RULE", "ACK", "DELIVERED", "LAST ERROR"),
        [
            (
                d["recipient"],
                d["status"],
                str(d["attempts"]),
                d["rule"] or "-",
                d["ack_code"] or "-",
                _when(d["delivered_at"]) if d["delivered_at"] else "-",
                d["last_error"] or "-",
            )
            for d in message["deliveries"]
        ],
    )
    if timeline is not None:
        _out("")
        _table(
            ("TIME (UTC)", "EVENT", "ACTOR", "RECIPIENT", "RULE", "OUTCOME", "CHAIN"),
            [
                (
                    _when(e["occurred_at"]),
                    e["kind"],
                    e["actor"],
                    e["recipient"] or "-",
                    e["rule"] or "-",
                    e["outcome"],
                    f"{e['day']} #{e['seq']}" if e["chained"] else "pending",
                )
                for e in timeline["events"]
            ],
        )
    return 0


# --- output ------------------------------------------------------------------------


def _when(value: str) -> str:
    return datetime.fromisoformat(value).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    widths = [max(len(str(c)) for c in column) for column in zip(header, *rows, strict=True)]
    for row in (header, *rows):
        _out("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


def _out(line: str) -> None:
    sys.stdout.write(f"{line}\n")
