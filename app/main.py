"""The Starlette application: routes and lifespan (database, learner)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute
from strawberry.asgi import GraphQL
from tortoise.contrib.starlette import RegisterTortoise

from app.config import Settings, load_settings
from app.db.connection import ensure_sqlite_dir, tortoise_config
from app.learner.service import LearnerService
from app.schema import build_schema

log = logging.getLogger("sunrank")


async def healthz(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


def create_app(settings: Settings | None = None) -> Starlette:
    """Build the app. Migrations are the caller's job (``sunrank serve`` runs them)."""
    settings = settings or load_settings()

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        ensure_sqlite_dir(settings.db_url)
        async with RegisterTortoise(app, config=tortoise_config(settings.db_url)):
            log.info("database ready: %s", settings.db_url.split("@")[-1])
            learner = LearnerService(settings)
            await learner.start()
            app.state.learner = learner
            try:
                yield
            finally:
                await learner.stop()

    graphql = GraphQL(build_schema(), graphql_ide="graphiql")
    app = Starlette(
        routes=[
            Route("/healthz", healthz),
            Route("/graphql", graphql, methods=["GET", "POST"]),
            WebSocketRoute("/graphql", graphql),
        ],
        lifespan=lifespan,
    )
    app.state.settings = settings
    return app
