"""Per-user settings over real HTTP: defaults, partial updates, validation."""

from __future__ import annotations

import uuid

import pytest

from tests.accounts.test_mail_flows import register
from tests.api.conftest import Api

pytestmark = [pytest.mark.asyncio(loop_scope="session"), pytest.mark.slow]

FIELDS = "defaultWeights { criterion weight } rateLaterAutoRemove language " \
    "extension { searchRecommendations showScores }"  # fmt: skip
READ = f"{{ me {{ settings {{ {FIELDS} }} }} }}"
UPDATE = f"""mutation($i: UpdateSettingsInput!) {{ updateSettings(input: $i) {{
  settings {{ {FIELDS} }} userErrors {{ field message code }} }} }}"""
DEFAULTS = {
    "defaultWeights": [], "rateLaterAutoRemove": None, "language": "en",
    "extension": {"searchRecommendations": True, "showScores": True},
}  # fmt: skip


async def update(api: Api, token: str, changes: dict) -> dict:
    return (await api.gql(UPDATE, {"i": changes}, token))["data"]["updateSettings"]


async def test_settings_are_read_and_written(mail_api: Api):
    name = f"user_{uuid.uuid4().hex[:10]}"
    token = (await register(mail_api, name, f"{name}@example.org"))["token"]
    assert (await mail_api.gql(READ, token=token))["data"]["me"]["settings"] == DEFAULTS

    done = await update(mail_api, token, {
        "defaultWeights": [{"criterion": "largely_recommended", "weight": 50},
                           {"criterion": "reliability", "weight": 20}],
        "rateLaterAutoRemove": 2, "language": "fr", "extension": {"showScores": False},
    })  # fmt: skip
    assert done["userErrors"] == []
    expected = {
        "defaultWeights": [{"criterion": "largely_recommended", "weight": 50.0},
                           {"criterion": "reliability", "weight": 20.0}],
        "rateLaterAutoRemove": 2, "language": "fr",
        "extension": {"searchRecommendations": True, "showScores": False},
    }  # fmt: skip
    assert done["settings"] == expected
    assert (await mail_api.gql(READ, token=token))["data"]["me"]["settings"] == expected
    # the account's mail follows the language
    assert await mail_api.rows(
        f'SELECT e.language FROM user_email e JOIN "user" u ON u.id = e.user_id '
        f"WHERE u.username = '{name}'"
    ) == [("fr",)]
    # only the fields given change; null puts the server default back
    partial = await update(mail_api, token, {"rateLaterAutoRemove": None})
    assert partial["settings"] == {**expected, "rateLaterAutoRemove": None}


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"defaultWeights": [{"criterion": "nonsense", "weight": 1}]}, "settings.defaultWeights"),
        ({"defaultWeights": [{"criterion": "reliability", "weight": 101}]},
         "settings.defaultWeights"),
        ({"rateLaterAutoRemove": -1}, "settings.rateLaterAutoRemove"),
        ({"rateLaterAutoRemove": 1000}, "settings.rateLaterAutoRemove"),
        ({"language": "de"}, "settings.language"),
    ],
)  # fmt: skip
async def test_invalid_settings_change_nothing(mail_api: Api, changes: dict, field: str):
    name = f"user_{uuid.uuid4().hex[:10]}"
    token = (await register(mail_api, name, None))["token"]
    await update(mail_api, token, {"language": "fr"})
    refused = await update(mail_api, token, {**changes, "extension": {"showScores": False}})
    assert refused["settings"] is None
    assert [(e["field"], e["code"]) for e in refused["userErrors"]] == [(field, "INVALID_SETTINGS")]
    assert (await mail_api.gql(READ, token=token))["data"]["me"]["settings"] == {
        **DEFAULTS, "language": "fr",
    }  # fmt: skip
    anonymous = await mail_api.gql(UPDATE, {"i": {"language": "en"}})
    assert anonymous["data"]["updateSettings"]["userErrors"][0]["code"] == "UNAUTHENTICATED"
