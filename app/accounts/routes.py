"""The pages mail links open: ``GET /account/verify-email?token=…`` confirms an
address; ``GET /account/reset-password?token=…`` shows a form that POSTs the new
password back. Plain HTML with no script, in the account's language when known,
else the browser's (Accept-Language). A front end may instead read the token from
the link and call the ``verifyEmail`` / ``resetPassword`` mutations itself.
"""

from __future__ import annotations

import asyncio
from html import escape
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

from app.accounts import service, templates
from app.accounts.export import export_zip
from app.db.models import Event
from app.db.validation import InvalidInput

MAX_FORM_BYTES = 8 * 1024

TEXTS = {
    "verified": {
        "en": "Your email address {email} is confirmed. You can close this page.",
        "fr": "Votre adresse e-mail {email} est confirmée. Vous pouvez fermer cette page.",
    },
    "reset_form": {
        "en": "Choose a new password (at least 8 characters):",
        "fr": "Choisissez un nouveau mot de passe (au moins 8 caractères) :",
    },
    "reset_done": {
        "en": "Your password is changed; every session was signed out. Sign in again.",
        "fr": "Votre mot de passe est modifié ; toutes les sessions ont été déconnectées. "
        "Reconnectez-vous.",
    },
    "submit": {"en": "Save", "fr": "Enregistrer"},
    "no_token": {
        "en": "This page needs the link from your mail.",
        "fr": "Cette page a besoin du lien reçu par e-mail.",
    },
}


async def apply(request: Request, event: Event | None) -> None:
    """Hand a committed pretrust change to the learner (shielded from a client that
    hangs up; the learner's housekeeping would catch up anyway)."""
    if event is not None:
        await asyncio.shield(request.app.state.learner.apply(event))


def browser_language(request: Request) -> str:
    return templates.language(request.headers.get("accept-language", "")[:2])


def page(lang: str, body: str, status: int = 200) -> HTMLResponse:
    html = (
        f'<!doctype html><html lang="{lang}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width">'
        f"<title>Sunrank</title></head><body><main>{body}</main></body></html>"
    )
    return HTMLResponse(html, status, headers={"cache-control": "no-store"})


def error_page(lang: str, exc: InvalidInput) -> HTMLResponse:
    return page(lang, f'<p role="alert" data-code="{exc.code}">{escape(exc.message)}</p>', 400)


async def verify_email(request: Request) -> HTMLResponse:
    lang = browser_language(request)
    settings = request.app.state.settings
    try:
        row, event = await service.verify_email(settings, request.query_params.get("token", ""))
    except InvalidInput as exc:
        return error_page(lang, exc)
    await apply(request, event)
    text = TEXTS["verified"][row.language].format(email=escape(row.email))
    return page(row.language, f'<p data-code="EMAIL_VERIFIED">{text}</p>')


def reset_form(lang: str, token: str) -> str:
    return (
        f'<form method="post"><label>{TEXTS["reset_form"][lang]} '
        '<input type="password" name="password" minlength="8" required '
        'autocomplete="new-password"></label>'
        f'<input type="hidden" name="token" value="{escape(token)}">'
        f'<button type="submit">{TEXTS["submit"][lang]}</button></form>'
    )


async def reset_password(request: Request) -> HTMLResponse:
    lang = browser_language(request)
    if request.method == "GET":
        token = request.query_params.get("token", "")
        if not token:
            return page(lang, f'<p data-code="NO_TOKEN">{TEXTS["no_token"][lang]}</p>', 400)
        return page(lang, reset_form(lang, token))
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            return page(lang, "<p>Request too large.</p>", 413)
    form = parse_qs(body.decode("utf-8", "replace"))
    token = form.get("token", [""])[0]
    settings, state = request.app.state.settings, request.app.state
    try:
        _, event = await service.reset_password(
            settings, token, form.get("password", [""])[0], getattr(state, "token_cache", None)
        )
    except InvalidInput as exc:
        return error_page(lang, exc)
    await apply(request, event)
    return page(lang, f'<p data-code="PASSWORD_RESET">{TEXTS["reset_done"][lang]}</p>')


ROUTES = [
    Route("/me/export.zip", export_zip, methods=["GET"]),
    Route(service.VERIFY_PATH, verify_email, methods=["GET"]),
    Route(service.RESET_PATH, reset_password, methods=["GET", "POST"]),
]
