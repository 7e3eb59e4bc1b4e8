"""``GET /me/export.zip`` over real HTTP: everything of mine, with my token only."""

from __future__ import annotations

import csv
import io
import json
import uuid
import zipfile

import pytest

from tests.accounts.test_deletion import COMPARE, VOUCH
from tests.accounts.test_mail_flows import register
from tests.api.conftest import Api

pytestmark = [pytest.mark.asyncio(loop_scope="session"), pytest.mark.slow]

RATE_LATER = (
    "mutation($v: String!) { addToRateLater(input: {youtubeId: $v}) { userErrors { code } } }"
)


def rows(archive: zipfile.ZipFile, name: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(archive.read(name).decode())))


async def test_export_carries_everything_of_mine(mail_api: Api):
    name = f"user_{uuid.uuid4().hex[:10]}"
    token = (await register(mail_api, name, f"{name}@example.org", "fr"))["token"]
    videos = [v for (v,) in await mail_api.rows("SELECT youtube_id FROM video ORDER BY id LIMIT 3")]
    scores = [{"criterion": "largely_recommended", "score": -4},
              {"criterion": "reliability", "score": 2}]  # fmt: skip
    done = await mail_api.gql(COMPARE, {"a": videos[1], "b": videos[0], "s": scores}, token)
    assert done["data"]["submitComparison"]["userErrors"] == [], done
    assert not (await mail_api.gql(RATE_LATER, {"v": videos[2]}, token))["data"]["addToRateLater"][
        "userErrors"
    ]
    assert not (await mail_api.gql(VOUCH, {"u": "aidjango"}, token))["data"]["vouch"]["userErrors"]

    response = await mail_api.client.get(
        "/me/export.zip", headers={"authorization": f"Bearer {token}"}
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/zip"
    assert "attachment" in response.headers["content-disposition"]
    archive = zipfile.ZipFile(io.BytesIO(response.content))
    profile = json.loads(archive.read("profile.json"))
    assert profile["username"] == name and profile["email"] == f"{name}@example.org"
    assert profile["language"] == "fr" and profile["email_verified"] is False
    comparisons = rows(archive, "comparisons.csv")
    # stored canonically (lower id first): the pair as given comes back the other way round
    by_criterion = {r["criteria"]: r for r in comparisons}
    assert set(by_criterion) == {"largely_recommended", "reliability"}
    main = by_criterion["largely_recommended"]
    assert {main["video_a"], main["video_b"]} == {videos[0], videos[1]}
    assert int(main["score"]) == (-4 if main["video_a"] == videos[1] else 4)
    assert main["public_username"] == name and main["week_date"] and main["score_max"] == "10"
    personal = rows(archive, "individual_criteria_scores.csv")
    assert {r["video"] for r in personal} == {videos[0], videos[1]}
    assert [r["video"] for r in rows(archive, "rate_later.csv")] == [videos[2]]
    assert rows(archive, "vouchers.csv") == [{"by_username": name, "to_username": "aidjango"}]
    assert len(rows(archive, "sessions.csv")) == 1
    assert json.loads(archive.read("settings.json"))["language"] == "en"  # the defaults
    assert token not in response.content.decode("latin-1")  # never the token itself


async def test_export_needs_a_valid_token(mail_api: Api):
    assert (await mail_api.client.get("/me/export.zip")).status_code == 401
    bad = await mail_api.client.get("/me/export.zip", headers={"authorization": "Bearer nope"})
    assert bad.status_code == 401 and bad.json()["errors"][0]["extensions"]["code"] == (
        "UNAUTHENTICATED"
    )
    malformed = await mail_api.client.get("/me/export.zip", headers={"authorization": "Basic x"})
    assert malformed.status_code == 401
