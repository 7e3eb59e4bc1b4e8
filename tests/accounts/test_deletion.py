"""Deleting an account over real HTTP: password required, everything of it goes,
the learner drops its influence through events, the name stays reserved."""

from __future__ import annotations

import uuid

import pytest

from tests.accounts.test_mail_flows import register
from tests.api.anonymous import answered_anonymous
from tests.api.conftest import ADMIN, PASSWORD, Api

pytestmark = [pytest.mark.asyncio(loop_scope="session"), pytest.mark.slow]

ERRORS = "userErrors { field message code }"
DELETE = (
    f"mutation($p: String!) {{ deleteAccount(input: {{password: $p}}) {{ deleted {ERRORS} }} }}"
)
COMPARE = f"""mutation($a: String!, $b: String!, $s: [ScoreInput!]!) {{
  submitComparison(input: {{videoA: $a, videoB: $b, scores: $s}}) {{ {ERRORS} }} }}"""
VOUCH = f"mutation($u: String!) {{ vouch(input: {{username: $u}}) {{ {ERRORS} }} }}"
SET_PRETRUST = f"""mutation($u: String!) {{
  setPretrust(input: {{username: $u, pretrust: 0.5}}) {{ {ERRORS} }} }}"""


async def count(api: Api, sql: str) -> int:
    return (await api.rows(sql))[0][0]


async def test_delete_account_removes_everything_and_its_influence(mail_api: Api):
    name = f"user_{uuid.uuid4().hex[:10]}"
    token = (await register(mail_api, name, f"{name}@example.org"))["token"]
    (uid,) = (await mail_api.rows(f"SELECT id FROM \"user\" WHERE username = '{name}'"))[0]
    admin = await mail_api.login(ADMIN)
    assert not (await mail_api.gql(SET_PRETRUST, {"u": name}, admin))["data"]["setPretrust"][
        "userErrors"
    ]
    videos = [v for (v,) in await mail_api.rows("SELECT youtube_id FROM video ORDER BY id LIMIT 3")]
    for a, b in ((videos[0], videos[1]), (videos[1], videos[2])):
        scores = [{"criterion": "largely_recommended", "score": 7}]
        done = await mail_api.gql(COMPARE, {"a": a, "b": b, "s": scores}, token)
        assert done["data"]["submitComparison"]["userErrors"] == [], done
    assert not (await mail_api.gql(VOUCH, {"u": "aidjango"}, token))["data"]["vouch"]["userErrors"]
    aidjango = await mail_api.login("aidjango")
    assert not (await mail_api.gql(VOUCH, {"u": name}, aidjango))["data"]["vouch"]["userErrors"]
    assert await mail_api.learner.contributor_scores(uid)
    assert await mail_api.learner.trust(uid) > 0
    events_before = await count(mail_api, "SELECT count(*) FROM event")

    wrong = await mail_api.gql(DELETE, {"p": "not my password"}, token)
    assert wrong["data"]["deleteAccount"]["userErrors"][0]["code"] == "BAD_CREDENTIALS"
    assert await count(mail_api, f"SELECT count(*) FROM comparison WHERE user_id = {uid}") == 2
    anonymous = await mail_api.gql(DELETE, {"p": PASSWORD})
    assert anonymous["data"]["deleteAccount"]["userErrors"][0]["code"] == "UNAUTHENTICATED"

    done = await mail_api.gql(DELETE, {"p": PASSWORD}, token)
    assert done["data"]["deleteAccount"] == {"deleted": True, "userErrors": []}
    gone = await mail_api.client.post(
        "/graphql", json={"query": "{ me { username } }"},
        headers={"authorization": f"Bearer {token}"},
    )  # fmt: skip
    assert answered_anonymous(gone)  # the token died with the account
    for table, column in (
        ("user", "id"), ("comparison", "user_id"), ("api_token", "user_id"),
        ("user_email", "user_id"), ("vouch", "voucher_id"), ("vouch", "vouchee_id"),
        ("rating_visibility", "user_id"), ("email_token", "user_id"),
    ):  # fmt: skip
        assert await count(mail_api, f'SELECT count(*) FROM "{table}" WHERE {column} = {uid}') == 0
    # 2 comparisons, 2 vouches and the pretrust, as events the learner applied already
    kinds = await mail_api.rows(f"SELECT kind FROM event WHERE id > {events_before} ORDER BY id")
    assert sorted(k for (k,) in kinds) == [
        "comparison_deleted", "comparison_deleted", "pretrust_changed",
        "vouch_changed", "vouch_changed",
    ]  # fmt: skip
    assert mail_api.learner.watermark >= events_before + 5
    assert await mail_api.learner.contributor_scores(uid) == []
    assert await mail_api.learner.trust(uid) == 0

    # the name is reserved for a while
    again = await register(mail_api, name, None)
    assert again["userErrors"][0]["code"] == "USERNAME_TAKEN"
    assert "SUNRANK_USERNAME_REUSE_DAYS" in again["userErrors"][0]["message"]
    await mail_api.rows("UPDATE released_username SET released_at = '2001-01-01 00:00:00+00:00'")
    assert (await register(mail_api, name, None))["userErrors"] == []
