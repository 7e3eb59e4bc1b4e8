"""The Starlette application: routes, middleware and lifespan (leader lock,
database, learner)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Route, WebSocketRoute
from strawberry.asgi import GraphQL
from tortoise.contrib.starlette import RegisterTortoise

from app.config import Settings, load_settings
from app.db.connection import ensure_sqlite_dir, tortoise_config
from app.leader import LeaderLock
from app.learner.service import LearnerService
from app.ops import RequestLog, healthz, metrics, readyz
from app.schema import build_schema

log = logging.getLogger("sunrank")


def create_app(settings: Settings | None = None) -> Starlette:
    """Build the app. Migrations are the caller's job (``sunrank serve`` runs them)."""
    settings = settings or load_settings()

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        leader = LeaderLock(settings.db_url, settings.data_dir)
        await leader.acquire()  # LeaderLockError: refuse to run a second learner
        try:
            ensure_sqlite_dir(settings.db_url)
            async with RegisterTortoise(app, config=tortoise_config(settings.db_url)):
                log.info("database ready: %s", settings.db_url.split("@")[-1])
                learner = LearnerService(settings)
                app.state.learner = learner
                await learner.start()
                try:
                    yield
                finally:
                    # After uvicorn has drained in-flight requests: checkpoint + flush.
                    await learner.stop()
        finally:
            await leader.release()

    graphql = GraphQL(build_schema(), graphql_ide="graphiql")
    app = Starlette(
        routes=[
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/metrics", metrics),
            Route("/graphql", graphql, methods=["GET", "POST"]),
            WebSocketRoute("/graphql", graphql),
        ],
        middleware=[Middleware(RequestLog)],
        lifespan=lifespan,
    )
    app.state.settings = settings
    return app
