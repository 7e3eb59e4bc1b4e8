"""Abuse controls over real HTTP, with client addresses given by a trusted proxy
header: failed sign-ins per (account, address) and per address (a stranger cannot
lock the owner out), registrations per address."""

from __future__ import annotations

import uuid

import pytest

from tests.api.conftest import PASSWORD, Api

pytestmark = [pytest.mark.asyncio(loop_scope="session"), pytest.mark.slow]

SERVER_SETTINGS = {
    "forwarded_allow_ips": ("127.0.0.1",),  # the tests play addresses via X-Forwarded-For
    "login_failures_per_account_ip": 3,
    "login_failures_per_ip": 5,
    "registrations_per_ip_per_hour": 2,
}
LOGIN = """mutation($u: String!, $p: String!) { login(input: {username: $u, password: $p}) {
  token userErrors { field message code } } }"""
REGISTER = """mutation($u: String!, $p: String!) {
  register(input: {username: $u, password: $p}) { token userErrors { field message code } } }"""


async def call(api: Api, ip: str, query: str, variables: dict) -> dict:
    response = await api.client.post(
        "/graphql", json={"query": query, "variables": variables},
        headers={"x-forwarded-for": ip},
    )  # fmt: skip
    assert response.status_code == 200, response.text
    return response.json()["data"]


async def login(api: Api, ip: str, name: str, password: str) -> dict:
    return (await call(api, ip, LOGIN, {"u": name, "p": password}))["login"]


async def new_account(api: Api, ip: str) -> str:
    name = f"user_{uuid.uuid4().hex[:10]}"
    done = (await call(api, ip, REGISTER, {"u": name, "p": PASSWORD}))["register"]
    assert done["userErrors"] == [] and done["token"], done
    return name


async def test_failed_sign_ins_lock_the_address_not_the_owner(mail_api: Api):
    victim = await new_account(mail_api, "10.1.0.1")
    stranger = "10.1.0.66"
    for _ in range(3):
        wrong = await login(mail_api, stranger, victim, "guess guess")
        assert wrong["userErrors"][0]["code"] == "BAD_CREDENTIALS"
    blocked = await login(mail_api, stranger, victim, PASSWORD)  # even the right password
    assert blocked["token"] is None
    error = blocked["userErrors"][0]
    assert error["code"] == "TOO_MANY_ATTEMPTS"
    assert "SUNRANK_LOGIN_FAILURES_PER_ACCOUNT_IP" in error["message"]
    assert "try again in" in error["message"]
    # the owner, from their own address, signs in
    assert (await login(mail_api, "10.1.0.1", victim, PASSWORD))["token"]
    # the stranger's address may still sign in to another account (per-address limit: 5)
    other = await new_account(mail_api, "10.1.0.2")
    assert (await login(mail_api, stranger, other, PASSWORD))["token"]


async def test_an_address_guessing_across_accounts_is_stopped(mail_api: Api):
    guesser = "10.2.0.66"
    names = [await new_account(mail_api, f"10.2.0.{i}") for i in range(1, 4)]
    failures = 0
    for name in names:  # spread below the per-account limit, 5 in all
        for _ in range(2 if failures < 4 else 1):
            wrong = await login(mail_api, guesser, name, "guess guess")
            assert wrong["userErrors"][0]["code"] == "BAD_CREDENTIALS"
            failures += 1
    assert failures == 5
    blocked = await login(mail_api, guesser, names[2], PASSWORD)
    assert blocked["userErrors"][0]["code"] == "TOO_MANY_ATTEMPTS"
    assert "SUNRANK_LOGIN_FAILURES_PER_IP" in blocked["userErrors"][0]["message"]
    assert (await login(mail_api, "10.2.0.3", names[2], PASSWORD))["token"]


async def test_registrations_per_address(mail_api: Api):
    ip = "10.3.0.1"
    await new_account(mail_api, ip)
    await new_account(mail_api, ip)
    before = await mail_api.rows('SELECT count(*) FROM "user"')
    refused = await call(
        mail_api, ip, REGISTER, {"u": f"user_{uuid.uuid4().hex[:10]}", "p": PASSWORD}
    )
    error = refused["register"]["userErrors"][0]
    assert refused["register"]["token"] is None and error["code"] == "TOO_MANY_REGISTRATIONS"
    assert "SUNRANK_REGISTRATIONS_PER_IP_PER_HOUR" in error["message"]
    assert await mail_api.rows('SELECT count(*) FROM "user"') == before
    assert await new_account(mail_api, "10.3.0.2")  # another address is not affected
