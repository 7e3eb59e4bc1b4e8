"""Admins deactivate accounts over real HTTP: no sign-in, sessions end, influence
leaves the scores at once (and stays out of full refits), data kept; reactivation
brings it back."""

from __future__ import annotations

import uuid

import pytest

from tests.accounts.test_deletion import COMPARE, SET_PRETRUST, VOUCH, count
from tests.accounts.test_mail_flows import register
from tests.api.anonymous import answered_anonymous
from tests.api.conftest import ADMIN, PASSWORD, Api

pytestmark = [pytest.mark.asyncio(loop_scope="session"), pytest.mark.slow]

ERRORS = "userErrors { field message code }"
SET_ACTIVE = f"""mutation($u: String!, $a: Boolean!) {{
  setAccountActive(input: {{username: $u, active: $a, reason: "spam"}}) {{ active {ERRORS} }} }}"""
REFIT = "mutation { refit { fit { converged } userErrors { code } } }"
LOGIN = f"""mutation($u: String!, $p: String!) {{ login(input: {{username: $u, password: $p}}) {{
  token {ERRORS} }} }}"""


async def set_active(api: Api, token: str, name: str, active: bool) -> dict:
    return (await api.gql(SET_ACTIVE, {"u": name, "a": active}, token))["data"]["setAccountActive"]


async def test_deactivation_takes_influence_out_and_back(mail_api: Api):
    name = f"user_{uuid.uuid4().hex[:10]}"
    token = (await register(mail_api, name, None))["token"]
    (uid,) = (await mail_api.rows(f"SELECT id FROM \"user\" WHERE username = '{name}'"))[0]
    admin = await mail_api.login(ADMIN)
    await mail_api.gql(SET_PRETRUST, {"u": name}, admin)
    videos = [v for (v,) in await mail_api.rows("SELECT youtube_id FROM video ORDER BY id LIMIT 3")]
    for a, b in ((videos[0], videos[1]), (videos[1], videos[2])):
        scores = [{"criterion": "largely_recommended", "score": -6}]
        done = await mail_api.gql(COMPARE, {"a": a, "b": b, "s": scores}, token)
        assert done["data"]["submitComparison"]["userErrors"] == [], done
    assert not (await mail_api.gql(VOUCH, {"u": "aidjango"}, token))["data"]["vouch"]["userErrors"]
    before = await mail_api.learner.contributor_scores(uid)
    assert before and await mail_api.learner.trust(uid) > 0

    user_token = await mail_api.login(name)
    refused = await set_active(mail_api, user_token, name, False)
    assert refused["userErrors"][0]["code"] == "FORBIDDEN"
    myself = await set_active(mail_api, admin, ADMIN, False)
    assert myself["userErrors"][0]["code"] == "SELF_DEACTIVATION"

    assert await set_active(mail_api, admin, name, False) == {"active": False, "userErrors": []}
    assert await mail_api.learner.contributor_scores(uid) == []
    assert await mail_api.learner.trust(uid) == 0
    gone = await mail_api.client.post(
        "/graphql", json={"query": "{ me { username } }"},
        headers={"authorization": f"Bearer {token}"},
    )  # fmt: skip
    assert answered_anonymous(gone)
    login = (await mail_api.gql(LOGIN, {"u": name, "p": PASSWORD}))["data"]["login"]
    assert login["token"] is None and login["userErrors"][0]["code"] == "DEACTIVATED"
    # the data stays, and a full refit from the database leaves it out too
    assert await count(mail_api, f"SELECT count(*) FROM comparison WHERE user_id = {uid}") == 2
    assert (await mail_api.gql(REFIT, token=admin))["data"]["refit"]["userErrors"] == []
    assert await mail_api.learner.contributor_scores(uid) == []
    assert await mail_api.learner.trust(uid) == 0
    again = await set_active(mail_api, admin, name, False)  # idempotent
    assert again == {"active": False, "userErrors": []}
    # pretrust given meanwhile waits for the reactivation
    raised = f"""mutation {{ setPretrust(input: {{username: "{name}", pretrust: 0.7}}) {{
      userErrors {{ code }} }} }}"""
    assert (await mail_api.gql(raised, token=admin))["data"]["setPretrust"]["userErrors"] == []
    assert await mail_api.learner.trust(uid) == 0

    assert await set_active(mail_api, admin, name, True) == {"active": True, "userErrors": []}
    after = await mail_api.learner.contributor_scores(uid)
    assert {(s.video_id, s.criterion) for s in after} == {(s.video_id, s.criterion) for s in before}
    assert await mail_api.learner.trust(uid) > 0
    assert await mail_api.rows(f'SELECT pretrust FROM "user" WHERE id = {uid}') == [(0.7,)]
    assert await mail_api.login(name)
