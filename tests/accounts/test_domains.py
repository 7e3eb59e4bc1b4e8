"""Trusted email domains over real SMTP and HTTP: a verified address on an accepted
domain earns pretrust 0.8 through an event (trust moves at once), combined with an
admin's pretrust by taking the larger; rejecting the domain or changing the address
takes it back; the admin API and ``sunrank domains``."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid

import pytest

from tests.accounts.conftest import Inbox, link_in
from tests.accounts.test_mail_flows import CHANGE_EMAIL, mail_to, register
from tests.api.conftest import ADMIN, PASSWORD, Api

pytestmark = [pytest.mark.asyncio(loop_scope="session"), pytest.mark.slow]

ERRORS = "userErrors { field message code }"
SET_STATUS = f"""mutation($d: String!, $s: DomainStatus!) {{
  setEmailDomainStatus(input: {{domain: $d, status: $s}}) {{
    domain {{ domain status verifiedAccounts }} changedAccounts {ERRORS} }} }}"""
DOMAINS = "query($s: DomainStatus) { emailDomains(status: $s) { domain status verifiedAccounts } }"
SET_PRETRUST = f"""mutation($u: String!, $p: Float!) {{
  setPretrust(input: {{username: $u, pretrust: $p}}) {{ {ERRORS} }} }}"""
ME = "{ me { pretrust trust } }"


async def signed_up(api: Api, inbox: Inbox, domain: str) -> tuple[str, str]:
    """A new account with a verified address on ``domain``: (username, token)."""
    name = f"user_{uuid.uuid4().hex[:10]}"
    done = await register(api, name, f"{name}@{domain}")
    link = link_in(await mail_to(inbox, f"{name}@{domain}"))
    assert (await api.client.get(link)).status_code == 200
    return name, done["token"]


async def me(api: Api, token: str) -> dict:
    return (await api.gql(ME, token=token))["data"]["me"]


async def set_status(api: Api, admin: str, domain: str, status: str) -> dict:
    return (await api.gql(SET_STATUS, {"d": domain, "s": status}, admin))["data"][
        "setEmailDomainStatus"
    ]


async def test_accepted_domain_grants_pretrust_and_takes_it_back(mail_api: Api, inbox: Inbox):
    admin = await mail_api.login(ADMIN)
    domain = f"univ-{uuid.uuid4().hex[:6]}.example"
    name, token = await signed_up(mail_api, inbox, domain)
    assert await me(mail_api, token) == {"pretrust": 0.0, "trust": 0.0}
    # a verified address lists its domain for review
    listed = (await mail_api.gql(DOMAINS, {"s": "PENDING"}, admin))["data"]["emailDomains"]
    assert {"domain": domain, "status": "PENDING", "verifiedAccounts": 1} in listed

    accepted = await set_status(mail_api, admin, domain.upper(), "ACCEPTED")
    assert accepted == {
        "domain": {"domain": domain, "status": "ACCEPTED", "verifiedAccounts": 1},
        "changedAccounts": 1, "userErrors": [],
    }  # fmt: skip
    state = await me(mail_api, token)
    assert state["pretrust"] == 0.8 and state["trust"] > 0  # the learner applied it already
    events = await mail_api.rows("SELECT payload FROM event WHERE kind = 'pretrust_changed'")
    assert any('"pretrust":0.8' in str(p).replace(" ", "") for (p,) in events)

    # combined with an admin's pretrust: the larger counts, each part kept
    for value, effective in ((0.9, 0.9), (0.3, 0.8)):
        done = await mail_api.gql(SET_PRETRUST, {"u": name, "p": value}, admin)
        assert done["data"]["setPretrust"]["userErrors"] == []
        assert (await me(mail_api, token))["pretrust"] == effective
    rejected = await set_status(mail_api, admin, domain, "REJECTED")
    assert rejected["changedAccounts"] == 1
    assert (await me(mail_api, token))["pretrust"] == 0.3  # the admin's value again
    await set_status(mail_api, admin, domain, "ACCEPTED")
    assert (await me(mail_api, token))["pretrust"] == 0.8

    # a new address elsewhere takes the grant back once verified
    new = f"{name}@elsewhere-{uuid.uuid4().hex[:6]}.example"
    await mail_api.gql(CHANGE_EMAIL, {"e": new, "p": PASSWORD}, token)
    assert (await me(mail_api, token))["pretrust"] == 0.8  # not verified yet: unchanged
    assert (await mail_api.client.get(link_in(await mail_to(inbox, new)))).status_code == 200
    assert (await me(mail_api, token))["pretrust"] == 0.3


async def test_verifying_on_an_accepted_domain_grants_at_once(mail_api: Api, inbox: Inbox):
    admin = await mail_api.login(ADMIN)
    domain = f"lab-{uuid.uuid4().hex[:6]}.example"
    assert (await set_status(mail_api, admin, domain, "ACCEPTED"))["changedAccounts"] == 0
    _, token = await signed_up(mail_api, inbox, domain)
    state = await me(mail_api, token)
    assert state["pretrust"] == 0.8 and state["trust"] > 0


async def test_domain_administration_is_for_admins_and_checks_names(mail_api: Api, inbox: Inbox):
    admin = await mail_api.login(ADMIN)
    _, user = await signed_up(mail_api, inbox, "plain.example")
    refused = await set_status(mail_api, user, "plain.example", "ACCEPTED")
    assert refused["userErrors"][0]["code"] == "FORBIDDEN" and refused["domain"] is None
    listing = await mail_api.gql(DOMAINS, {}, user)
    assert listing["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    for bad in ("not a domain", "nodot", "a..b.example", "-x.example", "x" * 300 + ".example"):
        done = await set_status(mail_api, admin, bad, "ACCEPTED")
        assert [e["code"] for e in done["userErrors"]] == ["BAD_DOMAIN"], (bad, done)
    assert await mail_api.rows("SELECT count(*) FROM email_domain WHERE status = 'accepted' "
                               "AND domain = 'plain.example'") == [(0,)]  # fmt: skip


async def test_cli_manages_domains(mail_api: Api, inbox: Inbox, tmp_path):
    if mail_api.backend != "sqlite":
        pytest.skip("the CLI is exercised once, on the SQLite backend")
    domain = f"cli-{uuid.uuid4().hex[:6]}.example"
    _, token = await signed_up(mail_api, inbox, domain)
    env = {**os.environ, "SUNRANK_DATABASE_URL": mail_api.settings.db_url,
           "SUNRANK_DATA_DIR": str(tmp_path), "SUNRANK_LOG_LEVEL": "warning"}  # fmt: skip

    def sunrank(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "app", "domains", *args],
            env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip

    added = await asyncio.to_thread(sunrank, "add", domain)
    assert added.returncode == 0, added.stderr
    assert "pretrust changed for 1 account(s)" in added.stdout
    listed = await asyncio.to_thread(sunrank, "list", "--status", "accepted")
    assert f"{domain}\taccepted\t1 verified account(s)" in listed.stdout
    bad = await asyncio.to_thread(sunrank, "reject", "not a domain")
    assert bad.returncode == 1 and "is not a domain name" in bad.stderr
    # the server's learner follows the event log the CLI wrote to
    for _ in range(200):
        if (await me(mail_api, token))["pretrust"] == 0.8:
            break
        await asyncio.sleep(0.1)
    state = await me(mail_api, token)
    assert state["pretrust"] == 0.8
    for _ in range(200):
        if (await me(mail_api, token))["trust"] > 0:
            break
        await asyncio.sleep(0.1)
    assert (await me(mail_api, token))["trust"] > 0
    rejected = await asyncio.to_thread(sunrank, "reject", domain)
    assert rejected.returncode == 0 and "rejected" in rejected.stdout
    assert await mail_api.rows(
        f'SELECT pretrust FROM "user" u JOIN user_email e ON e.user_id = u.id '
        f"WHERE e.email LIKE '%@{domain}'"
    ) == [(0.0,)]
