"""The per-request context and the GraphQL ASGI app that builds it.

The context carries the services (learner, cache, settings), the signed-in
:class:`~app.auth.Viewer` found by :class:`app.limits.ApiGuard`, and per-request
memos (no global dataloaders: each request gets its own).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL

from app import auth
from app.cache import Cache
from app.config import Settings
from app.db.validation import InvalidInput
from app.resolvers.errors import unauthenticated


@dataclass
class Context:
    request: Request | WebSocket
    response: Response | None
    settings: Settings
    learner: Any  # app.learner.service.LearnerService
    cache: Cache
    token_cache: auth.TokenCache | None
    viewer: auth.Viewer | None
    connection_params: dict | None = None
    memo: dict[Any, Any] = field(default_factory=dict)

    def require_viewer(self, field: str = "") -> auth.Viewer:
        if self.viewer is None:
            raise unauthenticated(field)
        return self.viewer

    def require_admin(self) -> auth.Viewer:
        viewer = self.require_viewer()
        if not viewer.is_admin:
            raise InvalidInput("", "this mutation is for administrators only", "FORBIDDEN")
        return viewer

    async def my_scores(self) -> dict[int, list]:
        """The viewer's personal scores by video id (one learner call per request)."""
        if "my_scores" not in self.memo:
            rows = await self.learner.contributor_scores(self.viewer.id) if self.viewer else []
            by_video: dict[int, list] = {}
            for row in rows:
                by_video.setdefault(row.video_id, []).append(row)
            self.memo["my_scores"] = by_video
        return self.memo["my_scores"]


class SunrankGraphQL(GraphQL):
    """strawberry's ASGI app with our context (``context_getter``)."""

    async def get_context(self, request: Request | WebSocket, response: Response | None) -> Context:
        app = request.scope["app"]
        state = request.scope.get("state") or {}
        return Context(
            request=request,
            response=response,
            settings=app.state.settings,
            learner=app.state.learner,
            cache=app.state.cache,
            token_cache=getattr(app.state, "token_cache", None),
            viewer=state.get("viewer"),
        )
