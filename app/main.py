"""The Starlette application: routes, middleware and lifespan (leader lock,
database, learner)."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Route, WebSocketRoute
from tortoise.contrib.starlette import RegisterTortoise

from app.auth import TokenCache
from app.cache import Cache
from app.config import Settings, load_settings
from app.db.connection import ensure_sqlite_dir, tortoise_config
from app.leader import LeaderLock
from app.learner.service import LearnerService
from app.limits import ApiGuard
from app.ops import RequestLog, healthz, metrics, readyz
from app.resolvers.context import SunrankGraphQL
from app.response_cache import ResponseCache
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
                app.state.cache = Cache.from_settings(settings)
                await learner.start()
                # Everything loaded so far (TensorFlow, the learner's state) lives for
                # the whole process: keep the cyclic GC from rescanning it, which
                # otherwise shows up as pauses of a hundred milliseconds under load.
                gc.collect()
                gc.freeze()
                try:
                    yield
                finally:
                    # After uvicorn has drained in-flight requests: checkpoint + flush.
                    await learner.stop()
                    await app.state.cache.close()
        finally:
            await leader.release()

    # The API (app/schema, app/resolvers): context from SunrankGraphQL.get_context;
    # ApiGuard checks body size, bearer token and rate limit before strawberry runs.
    graphql = SunrankGraphQL(build_schema(), graphql_ide="graphiql", allow_queries_via_get=True)
    token_cache = TokenCache()
    app = Starlette(
        routes=[
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/metrics", metrics),
            Route("/graphql", graphql, methods=["GET", "POST"]),
            WebSocketRoute("/graphql", graphql),
        ],
        middleware=[
            Middleware(RequestLog),
            Middleware(ApiGuard, settings=settings, token_cache=token_cache),
            Middleware(ResponseCache),
        ],
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.token_cache = token_cache
    return app
