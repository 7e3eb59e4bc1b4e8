"""The Starlette application: routes, middleware and lifespan (leader lock or
cluster membership, database, learner)."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import timedelta

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Route, WebSocketRoute
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from tortoise.contrib.starlette import RegisterTortoise
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from app.accounts.mailer import MailSender
from app.accounts.routes import ROUTES as ACCOUNT_ROUTES
from app.auth import TokenCache
from app.cache import Cache
from app.config import Settings, load_settings
from app.datasets.published import PublicExports
from app.db.connection import ensure_sqlite_dir, tortoise_config
from app.engine.cluster import Cluster
from app.engine.leader import LeaderLock, LeaderLockError
from app.engine.service import LearnerService
from app.graphiql import ROUTES as GRAPHIQL_ROUTES
from app.graphiql import SunrankGraphiQL
from app.http.asgi import QuietDenials
from app.http.auth import Authenticate
from app.http.body import BodyLimits
from app.http.cors import Cors
from app.http.lifespan import OneLineStartupRefusal
from app.http.log import RequestLog
from app.http.media import GraphQLMediaType
from app.http.persisted import PersistedQueries
from app.http.ratelimit import RateLimit, RateLimiter
from app.http.websocket import WebSocketGuard
from app.ops import healthz, metrics, readyz
from app.resolvers.catalog import VideoCatalog
from app.response_cache import ResponseCache
from app.schema import build_schema
from app.sources.queue import start_worker

log = logging.getLogger("sunrank")


async def _each_step(*steps: Callable[[], Awaitable[object]] | None) -> None:
    """Await each shutdown step in turn (None: nothing to do), logging a failure
    instead of skipping the steps after it."""
    for step in steps:
        if step is None:
            continue
        try:
            await step()
        except Exception:
            log.exception("shutdown step %s failed", getattr(step, "__qualname__", step))


def edge_middleware(
    settings: Settings, token_cache: TokenCache, limiter: RateLimiter
) -> list[Middleware]:
    """The edge (app/http), outermost first; each applies to HTTP and WebSocket alike:

    1. the client's address, from X-Forwarded-For only when the peer is a trusted
       proxy (SUNRANK_FORWARDED_ALLOW_IPS; none by default);
    2. the request id and the log line, which then see every refusal below;
    2b. CORS (SUNRANK_CORS_ORIGINS): preflights answered, every answer below readable
       by an allowed origin; a WebSocket from another origin refused;
    2c. the media type of GraphQL answers: application/graphql-response+json when
       the client accepts it (app/http/media.py), for every answer below;
    3. the per-address rate limit, before any work is done for the request;
    4. body / message size and JSON shape;
    5. the bearer token → viewer;
    6. the per-user (per-address when anonymous) rate limit;
    7. WebSocket connection, operation, idle and slow-client limits;
    8. the whole-response cache for anonymous queries.
    """
    return [
        Middleware(ProxyHeadersMiddleware, trusted_hosts=list(settings.forwarded_allow_ips)),
        Middleware(RequestLog),
        Middleware(Cors, settings=settings),
        Middleware(GraphQLMediaType),
        Middleware(RateLimit, limiter=limiter, rule="ip"),
        Middleware(BodyLimits, max_bytes=settings.max_body_bytes),
        Middleware(Authenticate, settings=settings, token_cache=token_cache),
        Middleware(RateLimit, limiter=limiter, rule="client"),
        Middleware(WebSocketGuard, settings=settings),
        Middleware(ResponseCache),
    ]


async def _invalidate_on_refit(learner: LearnerService, cache: Cache) -> None:
    """A refit, an adopted state or an event written by another process changes
    scores without a mutation here: move the cache's data revision."""
    async for update in learner.subscribe():
        if update.remote or (update.user_id is None and not update.event_ids):
            await cache.data_changed()


def _metadata_changed(app: Starlette) -> Callable[[], Awaitable[None]]:
    """The metadata worker wrote a batch: drop what rankings keep of the videos, and
    the cached answers."""

    async def changed() -> None:
        app.state.catalog.forget()
        await app.state.cache.data_changed()

    return changed


def create_app(settings: Settings | None = None) -> Starlette:
    """Build the app. Migrations are the caller's job (``sunrank serve`` runs them)."""
    settings = settings or load_settings()
    limiter = RateLimiter(settings)
    QuietDenials.install()

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # SQLite: one server process (a second one refuses to start). PostgreSQL: any
        # number of equal processes, one of them leading refits (app/engine/cluster.py).
        sqlite = settings.db_url.startswith("sqlite:")
        leader = LeaderLock(settings.db_url, settings.data_dir) if sqlite else None
        if leader is not None:
            try:
                await leader.acquire()  # refuse to run a second learner
            except LeaderLockError as exc:
                app.state.startup_refused = f"{type(exc).__name__}: {exc}"  # one log line
                raise
        cluster: Cluster | None = None
        exporting = False

        async def on_leadership(leads: bool) -> None:
            nonlocal exporting
            await learner.set_leader(leads)
            if not learner.ready:
                return  # exports start with the server (below)
            if leads != exporting:
                # The leader builds (and stores them in PostgreSQL); the others follow.
                await exports.stop()
                if leads:
                    exports.start()
                else:
                    exports.follow()
            exporting = leads

        try:
            ensure_sqlite_dir(settings.db_url)
            async with RegisterTortoise(app, config=tortoise_config(settings.db_url)):
                log.info("database ready: %s", settings.db_url.split("@")[-1])
                learner = LearnerService(settings)
                app.state.learner = learner
                app.state.cache = Cache.from_settings(settings)
                if not sqlite:
                    learner.clustered, learner.leads = True, False
                    cluster = Cluster(
                        settings.db_url,
                        on_event=learner.wake,
                        on_checkpoint=learner.checkpoint_published,
                        on_leadership=on_leadership,
                    )
                    await cluster.start()  # before the learner: a leader starts as one
                app.state.cluster = cluster
                await learner.start()
                refits = asyncio.create_task(_invalidate_on_refit(learner, app.state.cache))
                # Video metadata from YouTube, in the background (app/sources/queue.py).
                metadata = start_worker(settings, on_change=_metadata_changed(app))
                app.state.metadata = metadata
                mail = MailSender(settings)  # account mail, from the outbox (app/accounts)
                mail.start()
                if learner.leads:
                    exports.start()  # the public dataset, rebuilt in the background
                    exporting = True
                else:  # the leader builds them: serve the one it stored in PostgreSQL
                    exports.follow()
                # Everything loaded so far (TensorFlow, the learner's state) lives for
                # the whole process: keep the cyclic GC from rescanning it, which
                # otherwise shows up as pauses of a hundred milliseconds under load.
                gc.collect()
                gc.freeze()
                try:
                    yield
                finally:
                    # After uvicorn has drained in-flight requests: checkpoint + flush.
                    # Every step runs even if one before it fails: a step skipped
                    # would leave the learner's or the mailer's tasks running.
                    refits.cancel()
                    await _each_step(
                        mail.stop,
                        getattr(app.state, "account_limits", None)
                        and app.state.account_limits.close,
                        exports.stop,
                        metadata.stop if metadata is not None else None,
                        learner.stop,  # the leader publishes its last state here
                        cluster.stop if cluster is not None else None,  # then hand the lead over
                        app.state.cache.close,
                        limiter.close,
                    )
        finally:
            await _each_step(
                cluster.stop if cluster is not None else None,
                leader.release if leader is not None else None,
            )

    # The API (app/schema, app/resolvers): context from SunrankGraphQL.get_context;
    # GraphiQL from Sunrank's own copy of its files (app/graphiql.py).
    graphql = SunrankGraphiQL(
        build_schema(),
        graphql_ide="graphiql",
        allow_queries_via_get=True,
        subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,),
        connection_init_wait_timeout=timedelta(seconds=settings.ws_init_timeout_seconds),
        max_subscriptions_per_connection=None,  # app.http.websocket counts operations
        allowed_origins=settings.cors_origins,  # the WebSocket Origin check, app.http.cors
    )
    token_cache = TokenCache()
    exports = PublicExports(settings)  # /exports/all.zip, /exports/comparisons.csv
    app = Starlette(
        routes=[
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/metrics", metrics),
            Route("/graphql", graphql, methods=["GET", "POST"]),
            WebSocketRoute("/graphql", graphql),
            *GRAPHIQL_ROUTES,  # /graphiql/assets/…
            *ACCOUNT_ROUTES,  # the pages mailed links open
            *exports.routes(),
        ],
        middleware=[
            Middleware(OneLineStartupRefusal),
            *edge_middleware(settings, token_cache, limiter),
        ],
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.catalog = VideoCatalog(settings.video_catalog_max_age_seconds)
    # automatic persisted queries; a bad allow-list file stops here (ConfigError)
    app.state.persisted_queries = PersistedQueries(settings)
    app.state.token_cache = token_cache
    app.state.exports = exports
    return app
