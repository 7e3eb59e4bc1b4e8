"""A refusal to start, logged as one line.

Starlette answers any exception of the app's lifespan with ``lifespan.startup.failed``
carrying the whole traceback, which uvicorn logs as is. A refusal the operator is
meant to read (the SQLite lock held by another server process: ``LeaderLockError``)
is set by the lifespan on ``app.state.startup_refused``; this middleware sends its
one line instead of the traceback.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class OneLineStartupRefusal:
    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return

        async def send_refusal(message: Message) -> None:
            if message["type"] == "lifespan.startup.failed":
                refused = getattr(scope["app"].state, "startup_refused", None)
                if refused is not None:
                    message = {**message, "message": f"sunrank: {refused}"}
            await send(message)

        await self.app(scope, receive, send_refusal)
