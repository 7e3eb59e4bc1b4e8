"""The mail outbox and its background sender.

Request handlers only *queue* mail (a ``MailOutbox`` row, in the database so it
survives restarts); :class:`MailSender`, started with the server, sends it through
SMTP (aiosmtplib) with retries and exponential backoff, never on the request path.
Without ``SUNRANK_SMTP_URL`` (the ``make run`` default) each mail is written to the
log instead, links included, so a developer can click them.

Several server processes may share one database: a sender claims a row by moving
its ``due_at`` forward in a conditional UPDATE (a lease), so each mail is sent by
one process; a process that dies mid-send leaves the row due again after the lease.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import make_msgid
from urllib.parse import parse_qs, unquote, urlsplit

import aiosmtplib

from app.config import Settings
from app.db.models import MailOutbox
from app.db.validation import InvalidInput

log = logging.getLogger("sunrank.mail")
BATCH = 20
LEASE = timedelta(minutes=5)


@dataclass(frozen=True)
class SmtpServer:
    host: str
    port: int
    username: str | None
    password: str | None
    use_tls: bool  # smtps: TLS from the first byte
    start_tls: bool  # smtp + ?starttls=true: upgrade after EHLO

    @classmethod
    def from_url(cls, url: str) -> SmtpServer:
        parts = urlsplit(url)
        query = parse_qs(parts.query)
        use_tls = parts.scheme == "smtps"
        start_tls = query.get("starttls", ["false"])[0].lower() in ("1", "true", "yes")
        return cls(
            host=parts.hostname or "localhost",
            port=parts.port or (465 if use_tls else 587 if start_tls else 25),
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            use_tls=use_tls,
            start_tls=start_tls,
        )


async def queue(
    settings: Settings, to: str, subject: str, body: str, user_id: int | None = None
) -> MailOutbox:
    """Queue a mail; refuses (TOO_MANY_MAILS) past the per-account hourly quota."""
    if user_id is not None:
        await check_quota(settings, user_id)
    row = await MailOutbox.create(
        user_id=user_id, to_address=to, subject=subject, body=body, due_at=datetime.now(UTC)
    )
    wake()
    return row


async def check_quota(settings: Settings, user_id: int) -> None:
    since = datetime.now(UTC) - timedelta(hours=1)
    recent = await MailOutbox.filter(user_id=user_id, created_at__gte=since).count()
    if recent >= settings.mails_per_account_per_hour:
        raise InvalidInput(
            "",
            f"too many mails for this account: at most {settings.mails_per_account_per_hour} "
            "per hour (SUNRANK_MAILS_PER_ACCOUNT_PER_HOUR); try again later",
            "TOO_MANY_MAILS",
        )


_wakeup: asyncio.Event | None = None


def wake() -> None:
    """Tell this process's sender there is mail (others poll)."""
    if _wakeup is not None:
        _wakeup.set()


def message(settings: Settings, row: MailOutbox) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = settings.mail_from
    msg["To"] = row.to_address
    msg["Subject"] = row.subject
    msg["Message-ID"] = make_msgid(domain=settings.mail_from.rpartition("@")[2].strip("> "))
    msg.set_content(row.body)
    return msg


class MailSender:
    """The background task that empties the outbox."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.smtp = SmtpServer.from_url(settings.smtp_url) if settings.smtp_url else None
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        global _wakeup
        _wakeup = asyncio.Event()
        self._task = asyncio.create_task(self._run(_wakeup), name="mail-sender")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self, wakeup: asyncio.Event) -> None:
        while True:
            try:
                while await self.send_due():
                    pass
            except asyncio.CancelledError:
                raise
            except Exception:  # the database away for a moment: try again later
                log.exception("mail outbox: could not read the queue")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wakeup.wait(), self.settings.mail_poll_seconds)
            wakeup.clear()

    async def send_due(self) -> int:
        """Send what is due now (one batch); returns how many rows were claimed."""
        now = datetime.now(UTC)
        rows = (
            await MailOutbox.filter(sent_at=None, failed=False, due_at__lte=now)
            .order_by("due_at", "id")
            .limit(BATCH)
        )
        claimed = 0
        for row in rows:
            # the lease: only the process whose UPDATE matched sends this row
            taken = await MailOutbox.filter(id=row.id, due_at=row.due_at, sent_at=None).update(
                due_at=now + LEASE
            )
            if taken:
                claimed += 1
                await self._send(row)
        return claimed

    async def _send(self, row: MailOutbox) -> None:
        try:
            await self.deliver(message(self.settings, row))
        except Exception as exc:  # SMTP refusal, network, TLS: retry with backoff
            attempts = row.attempts + 1
            failed = attempts >= self.settings.mail_max_attempts
            delay = self.settings.mail_retry_seconds * 2 ** (attempts - 1)
            await MailOutbox.filter(id=row.id).update(
                attempts=attempts,
                failed=failed,
                last_error=f"{type(exc).__name__}: {exc}"[:500],
                due_at=datetime.now(UTC) + timedelta(seconds=delay),
            )
            log.warning(
                "mail %s to %s: attempt %d failed (%s)%s",
                row.id, row.to_address, attempts, exc,
                ", giving up" if failed else f", retry in {delay:g} s",
            )  # fmt: skip
            return
        await MailOutbox.filter(id=row.id).update(
            sent_at=datetime.now(UTC), attempts=row.attempts + 1, last_error=None
        )
        log.info("mail %s sent to %s: %s", row.id, row.to_address, row.subject)

    async def deliver(self, msg: EmailMessage) -> None:
        if self.smtp is None:
            # decoded (as_string() would fold long links with quoted-printable soft breaks)
            log.info(
                "mail (no SMTP configured, SUNRANK_SMTP_URL):\nTo: %s\nSubject: %s\n\n%s",
                msg["To"], msg["Subject"], msg.get_content(),
            )  # fmt: skip
            return
        await aiosmtplib.send(
            msg,
            hostname=self.smtp.host,
            port=self.smtp.port,
            username=self.smtp.username,
            password=self.smtp.password,
            use_tls=self.smtp.use_tls,
            start_tls=self.smtp.start_tls,
            timeout=self.settings.mail_timeout_seconds,
        )
