"""How a request with a stale bearer token is answered (app/http/auth.py): as an
anonymous caller, with a warning, never a 401."""

from __future__ import annotations

import httpx


def answered_anonymous(response: httpx.Response) -> bool:
    """The token did not count: 200, ``me`` (if asked) null, the warning in
    ``extensions`` and ``WWW-Authenticate: Bearer error="invalid_token"``."""
    body = response.json()
    warnings = (body.get("extensions") or {}).get("warnings") or []
    return (
        response.status_code == 200
        and (body.get("data") or {}).get("me") is None
        and [w["code"] for w in warnings] == ["UNAUTHENTICATED"]
        and 'error="invalid_token"' in response.headers.get("www-authenticate", "")
    )
