"""GraphiQL served by Sunrank itself, so the IDE works offline and under a strict
Content-Security-Policy.

strawberry's own page loads React, GraphiQL and the explorer plugin from a public CDN
(and inline script and style): with no internet it stays "Loading...". Here the same
files (pinned with their integrity hashes in package.json / package-lock.json,
installed by ``npm ci``: ``make install`` and the image build run it) are served from
``SUNRANK_GRAPHIQL_ASSETS`` (a ``node_modules`` directory; the project's own by
default) under ``/graphiql/assets/``, only the few files the page needs, and the page
has no inline code, so its CSP allows scripts and styles from this server only and
no ``eval``. When the files are missing, the page says how to install them.

``GET /graphql`` with ``Accept: text/html`` renders the page (strawberry's
``render_graphql_ide``); everything else on ``/graphql`` is the API.
"""

from __future__ import annotations

import html
import logging
import re
from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, PlainTextResponse, Response
from starlette.routing import Route

from app.config import Settings
from app.resolvers.context import SunrankGraphQL

log = logging.getLogger("sunrank.graphiql")

ASSET_PATH = "/graphiql/assets/"
# Served name -> file under SUNRANK_GRAPHIQL_ASSETS (the npm packages' layout). Only
# these are served: the rest of node_modules is not the public's business.
VENDOR = {
    "react.production.min.js": "react/umd/react.production.min.js",
    "react-dom.production.min.js": "react-dom/umd/react-dom.production.min.js",
    "graphiql.min.js": "graphiql/graphiql.min.js",
    "graphiql.min.css": "graphiql/graphiql.min.css",
    "plugin-explorer.umd.js": "@graphiql/plugin-explorer/dist/index.umd.js",
    "plugin-explorer.css": "@graphiql/plugin-explorer/dist/style.css",
}
SCRIPTS = (
    "react.production.min.js",
    "react-dom.production.min.js",
    "graphiql.min.js",
    "plugin-explorer.umd.js",
)
STYLES = ("graphiql.min.css", "plugin-explorer.css", "sunrank-graphiql.css")

# The page's own code, served as files rather than inline so the CSP needs no
# 'unsafe-inline' (nor hashes to keep in step with the text).
OWN_JS = """\
(function () {
  "use strict";
  var EXAMPLE = [
    "# Sunrank's GraphQL API. Ctrl-Enter runs the operation; the Docs and Explorer",
    "# panels (left) list every type and field. Subscriptions run over WebSocket.",
    "{",
    "  stats { users videos comparisons }",
    "}",
    ""
  ].join("\\n");
  var parameters = new URLSearchParams(window.location.search);
  var url = window.location.origin + window.location.pathname;
  var fetcher = GraphiQL.createFetcher({
    url: url,
    subscriptionUrl: url.replace(/^http/, "ws")
  });
  var explorer = GraphiQLPluginExplorer.explorerPlugin();

  function remember(name, value) {  // the URL can be shared: it holds the query
    if (value) { parameters.set(name, value); } else { parameters.delete(name); }
    var search = parameters.toString();
    window.history.replaceState(null, "", search ? "?" + search : window.location.pathname);
  }

  function App() {
    return React.createElement(GraphiQL, {
      fetcher: fetcher,
      plugins: [explorer],
      defaultQuery: EXAMPLE,
      query: parameters.get("q") || undefined,
      variables: parameters.get("variables") || undefined,
      onEditQuery: function (value) { remember("q", value); },
      onEditVariables: function (value) { remember("variables", value); },
      defaultEditorToolsVisibility: true,
      inputValueDeprecation: true,
      isHeadersEditorEnabled: true,
      shouldPersistHeaders: true
    });
  }

  ReactDOM.createRoot(document.getElementById("graphiql")).render(React.createElement(App));
})();
"""
OWN_CSS = """\
body { height: 100%; margin: 0; width: 100%; overflow: hidden; }
#graphiql { height: 100vh; display: flex; }
.graphiql-explorer-actions select { margin-left: 4px; }
"""
OWN = {
    "sunrank-graphiql.js": (OWN_JS, "text/javascript; charset=utf-8"),
    "sunrank-graphiql.css": (OWN_CSS, "text/css; charset=utf-8"),
}
CACHE_CONTROL = "public, max-age=3600"  # pinned files, but names without a version
_HOST = re.compile(r"^(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?$")


def content_security_policy(host: str | None) -> str:
    """Scripts, styles and fetches from this server only; WebSockets to it (CSP 3's
    'self' covers ws: too, older browsers need the host spelled out). Fonts and the
    favicon are data: URLs inside GraphiQL's CSS and the page."""
    connect = "'self'"
    if host and _HOST.match(host):  # a forged Host must not write the policy
        connect += f" ws://{host} wss://{host}"
    return (
        "default-src 'none'; script-src 'self'; style-src 'self'; "
        "img-src 'self' data:; font-src 'self' data:; "
        f"connect-src {connect}; base-uri 'none'; form-action 'none'; "
        "frame-ancestors 'none'"
    )


def missing_assets(directory: Path) -> list[str]:
    return [path for path in VENDOR.values() if not (directory / path).is_file()]


def _headers(request: Request) -> dict[str, str]:
    return {
        "Content-Security-Policy": content_security_policy(request.headers.get("host")),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-cache",
    }


PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sunrank GraphiQL</title>
<link rel="icon" href="data:,">
{styles}
{scripts}
</head>
<body>
<div id="graphiql">Loading GraphiQL…</div>
<noscript>GraphiQL needs JavaScript; the API itself is at this URL (POST).</noscript>
<script src="{prefix}sunrank-graphiql.js"></script>
</body>
</html>
"""

MISSING = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>GraphiQL is not installed</title></head>
<body>
<h1>GraphiQL's files are not installed on this server</h1>
<p>Sunrank serves GraphiQL (the in-browser IDE for its GraphQL API) from its own copy
of React, GraphiQL and the explorer plugin, so that it works without internet. These
files are missing: {missing}.</p>
<p>To install them (Node.js and npm needed), run in Sunrank's directory
<code>make install</code> or <code>npm ci --omit=dev</code>, then reload this page;
or set <code>SUNRANK_GRAPHIQL_ASSETS</code> to a <code>node_modules</code> directory
that holds them. The container image has them.</p>
<p>The API itself works: send GraphQL to this URL with POST (or GET), and
subscriptions over WebSocket (graphql-transport-ws).</p>
</body>
</html>
"""


def graphiql_page(request: Request, settings: Settings) -> Response:
    prefix = request.scope.get("root_path", "") + ASSET_PATH
    missing = missing_assets(settings.graphiql_assets)
    if missing:
        log.warning(
            "GraphiQL's assets are missing from %s (%s): run `npm ci --omit=dev`",
            settings.graphiql_assets,
            ", ".join(missing),
        )
        text = MISSING.format(missing=", ".join(f"<code>{html.escape(m)}</code>" for m in missing))
        return HTMLResponse(text, status_code=503, headers=_headers(request))
    page = PAGE.format(
        prefix=prefix,
        styles="\n".join(f'<link rel="stylesheet" href="{prefix}{name}">' for name in STYLES),
        scripts="\n".join(f'<script src="{prefix}{name}"></script>' for name in SCRIPTS),
    )
    return HTMLResponse(page, headers=_headers(request))


async def asset(request: Request) -> Response:
    name = request.path_params["name"]
    headers = {"Cache-Control": CACHE_CONTROL, "X-Content-Type-Options": "nosniff"}
    if name in OWN:
        text, media_type = OWN[name]
        return Response(text, media_type=media_type, headers=headers)
    if name not in VENDOR:
        return PlainTextResponse("no such GraphiQL asset", status_code=404)
    settings: Settings = request.app.state.settings
    path = settings.graphiql_assets / VENDOR[name]
    if not path.is_file():
        return PlainTextResponse(
            "GraphiQL's assets are not installed: run `npm ci --omit=dev` (or `make install`)",
            status_code=404,
        )
    media_type = "text/css" if name.endswith(".css") else "text/javascript"
    return FileResponse(path, media_type=f"{media_type}; charset=utf-8", headers=headers)


ROUTES = [Route(ASSET_PATH + "{name}", asset, methods=["GET", "HEAD"])]


class SunrankGraphiQL(SunrankGraphQL):
    """The API view, rendering this module's GraphiQL page instead of strawberry's."""

    async def render_graphql_ide(self, request: Request) -> Response:
        return graphiql_page(request, request.app.state.settings)
