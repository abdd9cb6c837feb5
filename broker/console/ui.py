"""The console's web pages: a server-rendered shell, one script, one stylesheet.

Everything is served by carebroker itself (hospitals have no internet, and
no CDN). The shell carries the navigation, the signed-in user, the CSRF token
and the labels in the request's language; ``static/app.js`` draws each page
from the same JSON API the CLI uses. A Content-Security-Policy of ``'self'``
keeps any injected markup from running script.
"""

from __future__ import annotations

import json
import uuid
from html import escape
from importlib import resources
from typing import Literal
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from broker.console.auth import COOKIE, Auth, Authenticator, Principal
from broker.console.deps import console
from broker.console.i18n import LABELS, LANG_COOKIE, LANGUAGES, Language, choose_language

Page = Literal["flows", "messages", "dead-letters", "partners", "alerts", "users"]
PAGES: tuple[Page, ...] = ("flows", "messages", "dead-letters", "partners", "alerts", "users")
# app.js first: it defines the helpers the page scripts use, and starts the page
# once every deferred script has run (DOMContentLoaded).
SCRIPTS = ("app.js", "messages.js", "alerts.js")
STATIC = {**dict.fromkeys(SCRIPTS, "text/javascript"), "style.css": "text/css"}

HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}

router = APIRouter(include_in_schema=False)


def _language(request: Request) -> Language:
    return choose_language(request.cookies.get(LANG_COOKIE), request.headers.get("accept-language"))


def safe_next(target: str | None) -> str:
    """Return ``target`` when it is a console path, so sign-in cannot redirect off-site."""
    if target and target.startswith("/console/") and not target.startswith("//"):
        return target
    return "/console/flows"


def _labels_json(lang: Language) -> str:
    # "</" would end the <script> element early; JSON allows "<\/".
    return json.dumps(LABELS[lang], ensure_ascii=False).replace("</", "<\\/")


def _document(lang: Language, title: str, body: str, data: dict[str, str]) -> Response:
    attrs = " ".join(f'data-{k}="{escape(v)}"' for k, v in data.items())
    scripts = "\n".join(f'<script src="/console/static/{s}" defer></script>' for s in SCRIPTS)
    html = f"""<!doctype html>
<html lang="{lang}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(title)} · carebroker</title>
<link rel="stylesheet" href="/console/static/style.css">
<script type="application/json" id="labels">{_labels_json(lang)}</script>
{scripts}
</head>
<body {attrs}>
{body}
</body>
</html>
"""
    return Response(html, media_type="text/html; charset=utf-8", headers=HEADERS)


def _language_switch(lang: Language, here: str) -> str:
    other: Language = next(code for code in LANGUAGES if code != lang)
    label = LABELS[other]["language_name"]
    return (
        f'<a class="lang" href="/console/lang/{other}?next={escape(quote(here, safe="/"))}" '
        f'lang="{other}" hreflang="{other}">{escape(label)}</a>'
    )


def _shell(
    lang: Language, page: Page, who: Principal, *, view: str | None = None, **data: str
) -> Response:
    """Return a page of the console; ``view`` names a sub-page (one message) of ``page``."""
    labels = LABELS[lang]
    here = data.pop("here", f"/console/{page}")
    items = []
    for name in PAGES:
        if name == "users" and who.role != "admin":
            continue
        current = ' aria-current="page"' if name == page else ""
        items.append(f'<li><a href="/console/{name}"{current}>{escape(labels[name])}</a></li>')
    role_label = labels[f"role_{who.role}"]
    body = f"""<a class="skip" href="#main">{escape(labels["skip"])}</a>
<header class="top">
  <a class="brand" href="/console/flows">carebroker</a>
  <nav aria-label="{escape(labels["nav"])}"><ul>{"".join(items)}</ul></nav>
  <div class="who">
    <span>{escape(labels["signed_in_as"])} <strong id="user">{escape(who.user)}</strong>
      (<span id="role">{escape(role_label)}</span>)</span>
    {_language_switch(lang, here)}
    <button type="button" id="sign-out">{escape(labels["sign_out"])}</button>
  </div>
</header>
<main id="main" tabindex="-1">
  <h1 id="title">{escape(labels[view or page])}</h1>
  <div id="page"><p>{escape(labels["loading"])}</p></div>
</main>"""
    return _document(
        lang,
        labels[view or page],
        body,
        {
            "page": view or page,
            "role": who.role,
            "user": who.user,
            "csrf": who.session.csrf_token,
            **data,
        },
    )


def _login(lang: Language, target: str, expired: bool, sso: str | None, failed: bool) -> Response:
    labels = LABELS[lang]
    notice = (
        f'<p class="notice" role="status">{escape(labels["session_ended"])}</p>' if expired else ""
    )
    if failed:
        notice += f'<p class="error" role="alert">{escape(labels["sso_failed"])}</p>'
    single = (
        f'<p><a class="sso" id="sso" href="/console/oidc/start?next={escape(quote(target))}">'
        f"{escape(labels['sso_sign_in'])} {escape(sso)}</a></p><p>{escape(labels['or'])}</p>"
        if sso
        else ""
    )
    body = f"""<a class="skip" href="#main">{escape(labels["skip"])}</a>
<header class="top">
  <span class="brand">carebroker</span>
  <div class="who">{_language_switch(lang, "/console/login?next=" + target)}</div>
</header>
<main id="main" tabindex="-1" class="narrow">
  <h1>{escape(labels["sign_in"])}</h1>
  {notice}
  {single}
  <form id="sign-in" novalidate>
    <label for="name">{escape(labels["user_name"])}</label>
    <input id="name" name="name" autocomplete="username" autocapitalize="none"
      spellcheck="false" required autofocus>
    <label for="password">{escape(labels["password"])}</label>
    <input id="password" name="password" type="password" autocomplete="current-password" required>
    <p id="sign-in-error" class="error" role="alert" hidden></p>
    <button type="submit">{escape(labels["sign_in"])}</button>
  </form>
</main>"""
    return _document(lang, labels["sign_in"], body, {"page": "login", "next": target})


async def _browser_principal(request: Request, auth: Authenticator) -> Principal | None:
    if COOKIE not in request.cookies:
        return None
    principal = await auth.principal(request)
    return principal if principal and principal.via == "cookie" else None


@router.get("/")
async def root() -> RedirectResponse:
    """Send people who open carebroker's address to the console."""
    return RedirectResponse("/console/flows", status_code=303)


@router.get("/console")
@router.get("/console/")
async def console_root() -> RedirectResponse:
    """Open the flows page."""
    return RedirectResponse("/console/flows", status_code=303)


@router.get("/console/login")
async def login_page(
    request: Request, auth: Auth, next: str | None = None, error: str | None = None
) -> Response:
    """Show the sign-in form (and single sign-on when set up), or go on when signed in."""
    target = safe_next(next)
    if await _browser_principal(request, auth):
        return RedirectResponse(target, status_code=303)
    sso = auth.settings.oidc_label if console(request).oidc else None
    return _login(
        _language(request),
        target,
        expired=COOKIE in request.cookies,
        sso=sso,
        failed=error == "sso",
    )


@router.get("/console/lang/{lang}")
async def switch_language(lang: str, next: str | None = None) -> RedirectResponse:
    """Remember the chosen language in a cookie (a preference, not a state change)."""
    response = RedirectResponse(safe_next(next), status_code=303)
    if lang in LANGUAGES:
        response.set_cookie(
            LANG_COOKIE, lang, max_age=365 * 86400, samesite="lax", path="/", httponly=True
        )
    return response


@router.get("/console/static/{name}")
async def static(name: str) -> Response:
    """Serve the script and the stylesheet from the installed package."""
    media = STATIC.get(name)
    if media is None:
        return Response(status_code=404)
    data = resources.files("broker.console").joinpath("static", name).read_bytes()
    return Response(
        data,
        media_type=f"{media}; charset=utf-8",
        headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "no-cache"},
    )


@router.get("/console/messages/{message_id}")
async def message_page(message_id: str, request: Request, auth: Auth) -> Response:
    """Serve one message's page (its timeline, deliveries, content and actions)."""
    try:
        parsed = uuid.UUID(message_id)
    except ValueError:
        return Response("no such message id", status_code=404, media_type="text/plain")
    here = f"/console/messages/{parsed}"
    who = await _browser_principal(request, auth)
    if who is None:
        return RedirectResponse(f"/console/login?next={here}", status_code=303)
    return _shell(
        _language(request), "messages", who, view="message", message=str(parsed), here=here
    )


@router.get("/console/{page}")
async def page(page: str, request: Request, auth: Auth) -> Response:
    """Serve one page of the console to a signed-in browser, else the sign-in form."""
    if page not in PAGES:
        return Response("no such page", status_code=404, media_type="text/plain")
    who = await _browser_principal(request, auth)
    if who is None:
        return RedirectResponse(f"/console/login?next=/console/{page}", status_code=303)
    return _shell(_language(request), page, who)
