"""A real SMTP server (aiosmtpd, on 127.0.0.1) and a real Sunrank server sending to
it, once per backend (SQLite + memory cache, PostgreSQL + Redis)."""

from __future__ import annotations

import asyncio
import queue
import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest
import pytest_asyncio
from aiosmtpd.controller import Controller

from tests.api.conftest import Api, backend_settings, free_port, serving

LINK = re.compile(r"https?://\S+")


@dataclass
class Inbox:
    """Every mail the SMTP server accepted; ``refuse`` makes it answer 451 (a
    temporary failure) that many times first."""

    host: str
    port: int
    mails: queue.Queue[EmailMessage] = field(default_factory=queue.Queue)
    refuse: int = 0
    refused: int = 0

    async def handle_DATA(self, server, session, envelope) -> str:
        if self.refuse > 0:
            self.refuse -= 1
            self.refused += 1
            return "451 4.3.0 try again later"
        mail = message_from_bytes(envelope.content, policy=policy.default)
        self.mails.put(mail)  # type: ignore[arg-type]
        return "250 OK"

    async def next(self, timeout: float = 30) -> EmailMessage:
        return await asyncio.to_thread(self.mails.get, True, timeout)

    def empty(self) -> bool:
        return self.mails.empty()


def body_of(mail: EmailMessage) -> str:
    return mail.get_body(("plain",)).get_content()  # type: ignore[union-attr]


def link_in(mail: EmailMessage) -> str:
    found = LINK.search(body_of(mail))
    assert found, body_of(mail)
    return found.group(0)


@pytest.fixture(scope="module")
def inbox() -> Iterator[Inbox]:
    box = Inbox("127.0.0.1", free_port())
    controller = Controller(box, hostname=box.host, port=box.port)
    controller.start()
    try:
        yield box
    finally:
        controller.stop()


@pytest_asyncio.fixture(
    scope="module",
    loop_scope="session",
    params=["sqlite", pytest.param("postgres", marks=[pytest.mark.postgres, pytest.mark.redis])],
)
async def mail_api(request, tmp_path_factory, inbox: Inbox) -> AsyncIterator[Api]:
    tmp = tmp_path_factory.mktemp(f"accounts-{request.param}")
    port = free_port()
    settings = backend_settings(
        request, tmp, port=port, public_url=f"http://127.0.0.1:{port}",
        smtp_url=f"smtp://{inbox.host}:{inbox.port}", mail_retry_seconds=0.2,
        mail_poll_seconds=0.5, mails_per_account_per_hour=6,
        **getattr(request.module, "SERVER_SETTINGS", {}),
    )  # fmt: skip
    # mailed links must reach this server: it listens on SUNRANK_PUBLIC_URL's port
    async with serving(request.param, settings, port) as api:
        yield api
