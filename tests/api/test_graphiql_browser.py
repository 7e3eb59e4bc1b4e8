"""GraphiQL in a real browser with no network but the server's (app/graphiql.py):
Debian's headless Chromium driven by Playwright (never a downloaded browser) opens
the page Sunrank serves from its own copy of GraphiQL, runs a query, then a
subscription that shows a comparison made through the API meanwhile; the page's
strict Content-Security-Policy must not block anything. Without chromium or the npm
assets the browser test skips, unless SUNRANK_TEST_SERVICES=required (CI)."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from urllib.parse import quote, urlsplit

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Route

from app.config import load_settings
from app.graphiql import content_security_policy, graphiql_page, missing_assets
from tests.api.test_edge import _Param, edge_server

CHROMIUM = "/usr/bin/chromium"
PASSWORD = "correct horse battery"


def _require(ready: bool, reason: str) -> None:
    if ready:
        return
    if os.environ.get("SUNRANK_TEST_SERVICES") == "required":
        pytest.fail(reason + " (SUNRANK_TEST_SERVICES=required)")
    pytest.skip(reason)


def test_the_policy_allows_this_server_only():
    policy = content_security_policy("127.0.0.1:8000")
    assert "script-src 'self';" in policy and "style-src 'self';" in policy
    assert "unsafe-eval" not in policy and "unsafe-inline" not in policy
    assert "connect-src 'self' ws://127.0.0.1:8000 wss://127.0.0.1:8000;" in policy
    assert "evil" not in content_security_policy("x; script-src evil")


async def test_without_assets_the_page_says_how_to_install_them(tmp_path):
    settings = load_settings({}, graphiql_assets=tmp_path / "nothing-here")
    app = Starlette(routes=[Route("/graphql", lambda request: graphiql_page(request, settings))])
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://sunrank") as client:
        page = await client.get("/graphql", headers={"Accept": "text/html"})
    assert page.status_code == 503
    assert "npm ci" in page.text and "make install" in page.text
    assert "SUNRANK_GRAPHIQL_ASSETS" in page.text and "graphiql.min.js" in page.text
    assert "Loading" not in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]


async def test_the_page_and_its_files_over_http(tmp_path):
    settings = load_settings({})
    missing = missing_assets(settings.graphiql_assets)
    _require(not missing, f"GraphiQL's assets are not installed (npm ci): {missing}")
    async with edge_server(_Param("sqlite"), tmp_path) as (_, client):
        page = await client.get("/graphql", headers={"Accept": "text/html"})
        assert page.status_code == 200 and "<title>Sunrank GraphiQL</title>" in page.text
        policy = page.headers["content-security-policy"]
        assert "script-src 'self';" in policy and "unsafe" not in policy
        assert "<script>" not in page.text and "<style" not in page.text  # nothing inline
        assert "unpkg.com" not in page.text and "https://" not in page.text
        sources = re.findall(r'(?:src|href)="(/graphiql/assets/[^"]+)"', page.text)
        assert len(sources) == 8
        for source in sources:
            asset = await client.get(source)
            assert asset.status_code == 200, source
            assert asset.headers["content-type"].startswith(
                "text/css" if source.endswith(".css") else "text/javascript"
            )
        # Only the page's files: not the rest of node_modules, nor anything else.
        for path in ("/graphiql/assets/package.json", "/graphiql/assets/..%2Fpackage.json",
                     "/graphiql/assets/graphiql%2Fpackage.json"):  # fmt: skip
            assert (await client.get(path)).status_code == 404, path
        # The API is unchanged on the same URL.
        answer = await client.post("/graphql", json={"query": "{ stats { comparisons } }"})
        assert answer.json()["data"]["stats"]["comparisons"] == 1


async def _register(client: httpx.AsyncClient, username: str) -> str:
    """A new account through the API, and its bearer token."""
    variables = {"u": username, "p": PASSWORD}
    credentials = "(input: {username: $u, password: $p})"
    registered = await client.post("/graphql", json={"variables": variables, "query":
        f"mutation($u: String!, $p: String!) {{ register{credentials} "
        "{ userErrors { message } } }"})  # fmt: skip
    assert registered.json()["data"]["register"]["userErrors"] == [], registered.text
    login = await client.post("/graphql", json={"variables": variables, "query":
        f"mutation($u: String!, $p: String!) {{ login{credentials} {{ token }} }}"})  # fmt: skip
    return login.json()["data"]["login"]["token"]


async def test_graphiql_runs_a_query_and_a_subscription_offline(tmp_path):
    settings = load_settings({})
    _require(Path(CHROMIUM).is_file() or bool(shutil.which("chromium")), "no chromium")
    missing = missing_assets(settings.graphiql_assets)
    _require(not missing, f"GraphiQL's assets are not installed (npm ci): {missing}")
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        _require(False, "the playwright package is not installed")

    async with edge_server(_Param("sqlite"), tmp_path) as (url, client):
        host = urlsplit(url).netloc
        elsewhere: list[str] = []  # requests for anything but this server
        console: list[str] = []
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(
                executable_path=CHROMIUM,
                # No name resolves: only 127.0.0.1 is reachable at all.
                args=["--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"],
            )
            try:
                context = await browser.new_context(service_workers="block")

                async def only_this_server(route, request):
                    if urlsplit(request.url).netloc == host:
                        await route.continue_()
                    else:
                        elsewhere.append(request.url)
                        await route.abort()

                await context.route("**/*", only_this_server)
                page = await context.new_page()
                page.on("console", lambda message: console.append(message.text))
                page.on("pageerror", lambda error: console.append(f"page error: {error}"))
                sockets: list[str] = []
                page.on("websocket", lambda ws: sockets.append(ws.url))

                async def run(query: str) -> None:
                    answer = await page.goto(f"{url}/graphql?q={quote(query)}")
                    assert answer is not None and answer.status == 200
                    policy = answer.headers["content-security-policy"]
                    assert "script-src 'self'" in policy and "unsafe-eval" not in policy
                    await page.locator(".graphiql-execute-button").click()

                response = page.locator(".graphiql-response")

                # A query: the answer on screen.
                await run("{ stats { users videos comparisons } }")
                await response.get_by_text('"comparisons": 1').wait_for(timeout=30_000)

                # A subscription: GraphiQL listens over WebSocket, a comparison made
                # through the API meanwhile shows up as a new message.
                await run(
                    'subscription { scoresUpdated(youtubeIds: ["video0abcde"]) '
                    "{ youtubeId scoreVersion initial } }"
                )
                await response.get_by_text('"initial": true').wait_for(timeout=30_000)
                token = await _register(client, "graphiql_fan")
                # scores as a variable: the criterion is an enum value or a string alike
                submit = await client.post(
                    "/graphql",
                    headers={"Authorization": f"Bearer {token}"},
                    json={
                        "query": "mutation($s: [ScoreInput!]!) { submitComparison(input: "
                        '{videoA: "video0abcde", videoB: "video1abcde", scores: $s}) '
                        "{ userErrors { message } } }",
                        "variables": {"s": [{"criterion": "largely_recommended", "score": 7}]},
                    },
                )
                body = submit.json()
                assert not body.get("errors"), body
                assert body["data"]["submitComparison"]["userErrors"] == [], body
                await response.get_by_text('"initial": false').wait_for(timeout=30_000)
                assert '"youtubeId": "video0abcde"' in await response.inner_text()
                assert sockets and all(urlsplit(s).netloc == host for s in sockets)
            finally:
                await browser.close()

    assert elsewhere == [], f"the page asked for other hosts: {elsewhere}"
    blocked = [m for m in console if "Content Security Policy" in m or "Refused to" in m]
    assert blocked == [], json.dumps(blocked, indent=1)
    assert not [m for m in console if m.startswith("page error")], console
