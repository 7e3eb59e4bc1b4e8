"""Without SUNRANK_SMTP_URL (the ``make run`` default), account mail is written to
the log, link included, so a developer can click it."""

from __future__ import annotations

import asyncio
import logging
import re
import uuid

import pytest

from tests.api.conftest import PASSWORD, Api

pytestmark = pytest.mark.asyncio(loop_scope="session")

REGISTER = """mutation($u: String!, $p: String!, $e: String) {
  register(input: {username: $u, password: $p, email: $e}) { token userErrors { code } } }"""


async def test_mail_is_logged_without_smtp(api: Api, caplog: pytest.LogCaptureFixture):
    assert api.settings.smtp_url == ""
    name = f"user_{uuid.uuid4().hex[:10]}"
    caplog.set_level(logging.INFO, logger="sunrank.mail")
    body = await api.gql(REGISTER, {"u": name, "p": PASSWORD, "e": f"{name}@example.org"})
    assert body["data"]["register"]["userErrors"] == []
    for _ in range(200):  # the sender runs in the background: never on the request path
        logged = [r.getMessage() for r in caplog.records if f"{name}@example.org" in r.getMessage()]
        if any("verify-email" in m for m in logged):
            break
        await asyncio.sleep(0.05)
    mail = next(m for m in logged if "verify-email" in m)
    assert "no SMTP configured" in mail and "Confirm your email address" in mail
    link = re.search(r"http://\S+/account/verify-email\?token=\S+", mail)
    assert link, mail
    path = link.group(0).split("/account/", 1)[1]
    page = await api.client.get(f"/account/{path}")
    assert page.status_code == 200 and 'data-code="EMAIL_VERIFIED"' in page.text
    query = f"SELECT sent_at IS NOT NULL FROM mail_outbox WHERE to_address = '{name}@example.org'"
    for _ in range(200):  # marked sent just after it was logged
        if [bool(s) for (s,) in await api.rows(query)] == [True]:
            break
        await asyncio.sleep(0.05)
    assert [bool(s) for (s,) in await api.rows(query)] == [True]
