"""Sessions over real HTTP: listed with their client, revoked one by one, expiring."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import pytest

from app.auth import sha256
from tests.accounts.test_mail_flows import register
from tests.api.anonymous import answered_anonymous
from tests.api.conftest import PASSWORD, Api

pytestmark = [pytest.mark.asyncio(loop_scope="session"), pytest.mark.slow]

SESSIONS = "{ me { sessions { id createdAt lastUsedAt expiresAt client current } } }"
REVOKE = """mutation($id: ID!) { revokeSession(input: {id: $id}) {
  revoked userErrors { field message code } } }"""
LOGIN = """mutation($u: String!, $p: String!) { login(input: {username: $u, password: $p}) {
  token } }"""


async def login_as(api: Api, name: str, agent: str) -> str:
    response = await api.client.post(
        "/graphql", json={"query": LOGIN, "variables": {"u": name, "p": PASSWORD}},
        headers={"user-agent": agent},
    )  # fmt: skip
    return response.json()["data"]["login"]["token"]


async def status(api: Api, token: str) -> int:
    """200 while the token signs in; 401 once it is answered as anonymous (the
    answer itself is a 200 with a warning: tests/api/anonymous.py)."""
    response = await api.client.post(
        "/graphql", json={"query": "{ me { username } }"},
        headers={"authorization": f"Bearer {token}"},
    )  # fmt: skip
    assert response.status_code == 200, response.text
    return 401 if answered_anonymous(response) else 200


async def test_sessions_are_listed_and_revoked_one_by_one(mail_api: Api):
    name = f"user_{uuid.uuid4().hex[:10]}"
    first = (await register(mail_api, name, None))["token"]  # signing up signs in
    phone = await login_as(mail_api, name, "Phone/1.0")
    laptop = await login_as(mail_api, name, "Laptop/2.0 " + "x" * 300)
    listed = (await mail_api.gql(SESSIONS, token=phone))["data"]["me"]["sessions"]
    assert len(listed) == 3
    by_client = {(s["client"] or "")[:10]: s for s in listed}
    assert by_client["Phone/1.0"]["current"] is True
    assert len(by_client["Laptop/2.0"]["client"]) == 200  # kept to 200 characters
    assert [s["current"] for s in listed].count(True) == 1
    session = by_client["Phone/1.0"]
    created = datetime.fromisoformat(session["createdAt"])
    assert datetime.fromisoformat(session["expiresAt"]) - created == timedelta(days=30)

    laptop_id = by_client["Laptop/2.0"]["id"]
    done = await mail_api.gql(REVOKE, {"id": laptop_id}, phone)
    assert done["data"]["revokeSession"] == {"revoked": True, "userErrors": []}
    assert await status(mail_api, laptop) == 401  # at once
    assert await status(mail_api, phone) == 200 and await status(mail_api, first) == 200
    again = await mail_api.gql(REVOKE, {"id": laptop_id}, phone)
    assert again["data"]["revokeSession"]["userErrors"][0]["code"] == "UNKNOWN_SESSION"

    # someone else's session, or no session at all, is not found either
    other = f"user_{uuid.uuid4().hex[:10]}"
    theirs = (await register(mail_api, other, None))["token"]
    their_id = (await mail_api.gql(SESSIONS, token=theirs))["data"]["me"]["sessions"][0]["id"]
    for bad in (their_id, "abc", "-1", "99999999999999999999999", ""):
        refused = await mail_api.gql(REVOKE, {"id": bad}, phone)
        assert refused["data"]["revokeSession"]["userErrors"][0]["code"] == "UNKNOWN_SESSION"
    assert await status(mail_api, theirs) == 200
    anonymous = await mail_api.gql(REVOKE, {"id": their_id})
    assert anonymous["data"]["revokeSession"]["userErrors"][0]["code"] == "UNAUTHENTICATED"


async def test_tokens_expire(mail_api: Api):
    name = f"user_{uuid.uuid4().hex[:10]}"
    await register(mail_api, name, None)
    token = await login_as(mail_api, name, "Old/1.0")
    await mail_api.rows(
        "UPDATE api_token SET created_at = '2001-01-01 00:00:00+00:00' WHERE client = 'Old/1.0'"
    )
    # Aged behind the server's back: its memo of the token, made at sign-in (at most
    # TOKEN_CACHE_SECONDS old), cannot know; a real token ages for 30 days.
    mail_api.app.state.token_cache.evict(sha256(token))
    assert await status(mail_api, token) == 401
    fresh = await login_as(mail_api, name, "New/1.0")
    assert await status(mail_api, fresh) == 200
    listed = (await mail_api.gql(SESSIONS, token=fresh))["data"]["me"]["sessions"]
    assert "Old/1.0" not in [s["client"] for s in listed]
