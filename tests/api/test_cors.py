"""CORS over real HTTP and WebSocket against a running server (app/http/cors.py):
preflights as a browser sends them, the headers of actual answers (refusals from the
edge included), and the same origin list deciding WebSocket handshakes."""

from __future__ import annotations

import pytest
import websockets

from app.config import ConfigError, load_settings
from tests.api.test_edge import PROTOCOL, STATS, _Param, edge_server, ws_recv, ws_send, ws_url

APP = "https://app.example.org"
OTHER = "https://evil.example.net"


def preflight(origin: str, headers: str = "authorization, content-type") -> dict[str, str]:
    return {
        "Origin": origin,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": headers,
    }


def test_no_origin_is_allowed_by_default():
    assert load_settings({}).cors_origins == ()


def test_origins_are_read_as_browsers_send_them():
    raw = "HTTPS://App.Example.org/, http://localhost:5173,https://a.example:443, *"
    settings = load_settings({"SUNRANK_CORS_ORIGINS": raw})
    assert settings.cors_origins == (
        "https://app.example.org", "http://localhost:5173", "https://a.example", "*",
    )  # fmt: skip
    for bad in ("app.example.org", "ftp://x.org", "https://x.org/path", "https://x.org:99999"):
        with pytest.raises(ConfigError, match="SUNRANK_CORS_ORIGINS"):
            load_settings({"SUNRANK_CORS_ORIGINS": bad})


async def test_preflight_and_answers_for_allowed_and_other_origins(tmp_path):
    async with edge_server(
        _Param("sqlite"), tmp_path, cors_origins=(APP,), cors_max_age_seconds=900,
        max_body_bytes=4096,
    ) as (url, client):  # fmt: skip
        # The preflight a browser sends before a POST with a bearer token.
        ok = await client.options(
            "/graphql", headers=preflight(APP, "authorization, content-type, accept")
        )
        assert ok.status_code == 200, ok.text
        assert ok.headers["access-control-allow-origin"] == APP
        assert ok.headers["access-control-allow-credentials"] == "true"
        assert ok.headers["access-control-max-age"] == "900"
        assert "POST" in ok.headers["access-control-allow-methods"]
        allowed = {h.strip().lower() for h in ok.headers["access-control-allow-headers"].split(",")}
        assert {"authorization", "content-type", "accept"} <= allowed
        assert "origin" in ok.headers["vary"].lower()

        # Another site: refused, and nothing in the answer lets the browser go on.
        refused = await client.options("/graphql", headers=preflight(OTHER))
        assert refused.status_code == 400
        assert "access-control-allow-origin" not in refused.headers
        assert "origin" in refused.text.lower()
        # A header the API does not take is refused too.
        odd = await client.options("/graphql", headers=preflight(APP, "x-not-a-header"))
        assert odd.status_code == 400 and "headers" in odd.text

        # The actual request: readable by the app, with the headers it may read.
        body = {"query": STATS}
        answer = await client.post(
            "/graphql",
            json=body,
            headers={"Origin": APP, "Accept": "application/graphql-response+json"},
        )
        assert answer.status_code == 200 and answer.json()["data"]["stats"]["comparisons"] == 1
        assert answer.headers["access-control-allow-origin"] == APP
        exposed = answer.headers["access-control-expose-headers"].lower()
        assert "x-request-id" in exposed and "retry-after" in exposed
        other = await client.post("/graphql", json=body, headers={"Origin": OTHER})
        assert "access-control-allow-origin" not in other.headers

        # A refusal from the edge (413 here) is readable by the app as well.
        big = await client.post(
            "/graphql", content=b"{" + b" " * 8000 + b"}", headers={"Origin": APP,
            "Content-Type": "application/json"},
        )  # fmt: skip
        assert big.status_code == 413
        assert big.headers["access-control-allow-origin"] == APP

        # WebSocket: the allowed origin, the server's own page (GraphiQL) and
        # non-browser clients (no Origin) connect; another site's page does not.
        host = url.removeprefix("http://")
        for origin in (APP, f"http://{host}", None):
            async with websockets.connect(ws_url(url), subprotocols=PROTOCOL, origin=origin) as ws:
                await ws_send(ws, {"type": "connection_init", "payload": {}})
                assert (await ws_recv(ws))["type"] == "connection_ack"
        with pytest.raises(websockets.InvalidStatus) as denied:
            async with websockets.connect(ws_url(url), subprotocols=PROTOCOL, origin=OTHER):
                pass
        assert denied.value.response.status_code == 403
        assert b"FORBIDDEN_ORIGIN" in denied.value.response.body


async def test_without_origins_cross_site_browsers_are_refused(tmp_path):
    async with edge_server(_Param("sqlite"), tmp_path) as (url, client):
        refused = await client.options("/graphql", headers=preflight(APP))
        assert refused.status_code == 400  # not 405: the preflight is understood
        assert "access-control-allow-origin" not in refused.headers
        answer = await client.post("/graphql", json={"query": STATS}, headers={"Origin": APP})
        assert answer.status_code == 200
        assert "access-control-allow-origin" not in answer.headers
        assert "access-control-allow-credentials" not in answer.headers
        with pytest.raises(websockets.InvalidStatus) as denied:
            async with websockets.connect(ws_url(url), subprotocols=PROTOCOL, origin=APP):
                pass
        assert denied.value.response.status_code == 403
