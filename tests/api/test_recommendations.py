"""Rankings like Tournesol's recommendations, over real HTTP: several languages,
duration and date windows, accent- and case-insensitive full-text search, leaving
out what I compared, ``unsafeReasons``, admin moderation, random recommendations."""

from __future__ import annotations

import uuid

import pytest

from tests.api.conftest import ADMIN
from tests.api.settle import settled_snapshot

pytestmark = pytest.mark.asyncio(loop_scope="session")
ERRORS = "userErrors { field message code }"
RANK = """query($f: VideoFilter, $u: Boolean!, $x: Boolean! = false, $first: Int! = 100) {
  rankings(filter: $f, includeUnsafe: $u, excludeCompared: $x, first: $first) {
    totalCount edges { node { youtubeId safe unsafeReasons } } } }"""
SET = "mutation($i: SetVideoMetadataInput!) { setVideoMetadata(input: $i) { " + ERRORS + " } }"
MODERATE = (
    "mutation($i: ModerateVideoInput!) { moderateVideo(input: $i) {"
    " video { youtubeId safe unsafeReasons } " + ERRORS + " } }"
)
RANDOM = """query($first: Int!, $f: VideoFilter) { randomRecommendations(first: $first, filter: $f)
  { youtubeId unsafeReasons language } }"""


async def _ranked(api, token=None, **variables) -> tuple[list[str], int]:
    body = await api.gql(RANK, {"u": False} | variables, token)
    assert "errors" not in body, body
    page = body["data"]["rankings"]
    return [e["node"]["youtubeId"] for e in page["edges"]], page["totalCount"]


async def _set(api, admin: str, youtube_id: str, **fields) -> None:
    body = await api.gql(SET, {"i": {"youtubeId": youtube_id, **fields}}, admin)
    assert body["data"]["setVideoMetadata"]["userErrors"] == [], body


async def test_filters_languages_windows_and_accent_insensitive_search(api):
    admin = await api.login(ADMIN)
    tag = "zq" + uuid.uuid4().hex[:8]  # a word no other video has
    (v1, v2, v3), _ = await _ranked(api, u=True, first=3)
    await _set(api, admin, v1, title=f"L'École de la PÉDAGOGIE {tag}", uploader="Chaîne Été",
               language="fr", durationSeconds=600, publishedAt="2020-01-01T00:00:00Z",
               tags=["Électronique"])  # fmt: skip
    await _set(api, admin, v2, title=f"Physics {tag}", description="Über alles, naïve",
               language="en", durationSeconds=3000, publishedAt="2023-06-01T00:00:00Z")  # fmt: skip
    await _set(api, admin, v3, title=f"Andere {tag}", language="de", durationSeconds=100,
               publishedAt="2024-06-01T00:00:00Z")  # fmt: skip

    async def found(**flt) -> set[str]:
        ids, total = await _ranked(api, u=True, f={"search": tag} | flt)
        assert total == len(ids)
        return set(ids)

    assert await found() == {v1, v2, v3}
    assert await found(languages=["fr", "en"]) == {v1, v2}
    assert await found(languages=["de"], language="de") == {v3}
    assert await found(minDurationSeconds=500, maxDurationSeconds=3000) == {v1, v2}
    assert await found(minDurationSeconds=601) == {v2}
    assert await found(publishedAfter="2023-01-01T00:00:00Z") == {v2, v3}
    assert await found(publishedBefore="2023-12-31T00:00:00Z", languages=["en", "de"]) == {v2}
    # accents and case aside, word prefixes, over title, channel, description and tags
    for words, expected in [
        (f"ecole pedago {tag}", {v1}),
        (f"{tag} CHAINE ete", {v1}),
        (f"electron {tag}", {v1}),
        (f"uber NAIVE {tag}", {v2}),
        (f"{tag} physique", set()),
        (f"{tag}, l'école!", {v1}),  # punctuation is no syntax
    ]:
        ids, _ = await _ranked(api, u=True, f={"search": words})
        assert set(ids) == expected, words
    # the video list filters alike; an exact YouTube id still finds its video
    body = await api.gql(
        "query($f: VideoFilter) { videos(filter: $f, first: 10) { totalCount "
        "edges { node { youtubeId } } } }", {"f": {"search": f"PÉDAGOGIE {tag}"}},
    )  # fmt: skip
    assert body["data"]["videos"]["totalCount"] == 1
    assert (await _ranked(api, u=True, f={"search": v3}))[0] == [v3]
    # a retitled video is found by its new title only (kept in sync on update)
    await _set(api, admin, v3, title=f"Neu {tag}")
    assert await found() == {v1, v2, v3}
    ids, _ = await _ranked(api, u=True, f={"search": f"andere {tag}"})
    assert ids == []


@pytest.mark.parametrize(
    ("flt", "code"),
    [
        ({"languages": ["not a language"]}, "BAD_LANGUAGE"),
        ({"languages": ["en"] * 21}, "TOO_LONG"),
        ({"minDurationSeconds": 10, "maxDurationSeconds": 5}, "EMPTY_RANGE"),
        ({"minDurationSeconds": -1}, "OUT_OF_RANGE"),
        ({"search": "x" * 201}, "TOO_LONG"),
    ],
)
async def test_bad_filters_are_clear_errors(api, flt, code):
    body = await api.gql(RANK, {"u": True, "f": flt})
    assert body["data"] is None and body["errors"][0]["extensions"]["code"] == code, body


async def test_exclude_compared_is_per_user(api):
    body = await api.gql(RANK, {"u": True, "x": True})
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED", body
    everything, total = await _ranked(api, u=True)
    for name in ("aidjango", "le_science4all"):
        token = await api.login(name)
        rows = await api.rows(
            "SELECT v.youtube_id FROM comparison c JOIN video v ON v.id IN (c.video_a_id, "
            f"c.video_b_id) JOIN \"user\" u ON u.id = c.user_id WHERE u.username = '{name}'"
        )
        compared = {r[0] for r in rows}
        for _ in range(2):  # the second answer comes from the cache: still this user's
            ids, left = await _ranked(api, token, u=True, x=True)
            assert not compared & set(ids)
            assert 0 < total - left <= len(compared)
        assert set(ids) | compared >= set(everything) - compared


async def test_unsafe_reasons_and_reversible_logged_moderation(api):
    admin = await api.login(ADMIN)
    user = await api.login("aidjango")
    top, _ = await _ranked(api, first=1)
    (video,) = top
    q = "query($id: String!) { video(youtubeId: $id) { safe unsafeReasons } }"
    assert (await api.gql(q, {"id": video}))["data"]["video"] == {"safe": True,
                                                                  "unsafeReasons": []}  # fmt: skip
    before = await settled_snapshot(api)
    for variables, token, code in [
        ({"youtubeId": video, "unsafe": True, "reason": "spam"}, user, "FORBIDDEN"),
        ({"youtubeId": video, "unsafe": True}, admin, "MISSING"),
        ({"youtubeId": video, "unsafe": True, "reason": "x" * 501}, admin, "TOO_LONG"),
        ({"youtubeId": video, "unsafe": False}, admin, "NOT_MODERATED"),
        ({"youtubeId": "zzzzzzzzzzz", "unsafe": True, "reason": "r"}, admin, "UNKNOWN_VIDEO"),
    ]:
        body = await api.gql(MODERATE, {"i": variables}, token)
        assert [e["code"] for e in body["data"]["moderateVideo"]["userErrors"]] == [code]
    assert await api.snapshot() == before

    body = await api.gql(MODERATE, {"i": {"youtubeId": video, "unsafe": True,
                                          "reason": "misleading"}}, admin)  # fmt: skip
    assert body["data"]["moderateVideo"]["video"] == {
        "youtubeId": video,
        "safe": False,
        "unsafeReasons": ["MODERATED"],
    }
    assert video not in (await _ranked(api))[0]
    assert video in (await _ranked(api, u=True))[0]
    ranked = await api.gql(RANK, {"u": True, "first": 100})
    node = next(e["node"] for e in ranked["data"]["rankings"]["edges"]
                if e["node"]["youtubeId"] == video)  # fmt: skip
    assert node["unsafeReasons"] == ["MODERATED"]

    body = await api.gql(MODERATE, {"i": {"youtubeId": video, "unsafe": False}}, admin)
    assert body["data"]["moderateVideo"]["video"]["unsafeReasons"] == []
    assert video in (await _ranked(api))[0]
    log = await api.rows(
        "SELECT l.unsafe, l.reason, u.username FROM moderation_log l JOIN video v ON "
        f"v.id = l.video_id JOIN \"user\" u ON u.id = l.admin_id WHERE v.youtube_id = '{video}' "
        "ORDER BY l.id"
    )
    assert [(bool(a), b, c) for a, b, c in log] == [
        (True, "misleading", ADMIN),
        (False, None, ADMIN),
    ]


async def test_unsafe_reasons_of_unrated_and_unavailable_videos(api):
    token = await api.login("aidjango")
    new = uuid.uuid4().hex[:11]
    await api.gql("mutation($i: String!) { addVideo(input: {youtubeId: $i}) { created } }",
                  {"i": new}, token)  # fmt: skip
    q = "query($id: String!) { video(youtubeId: $id) { safe unsafeReasons } }"
    assert (await api.gql(q, {"id": new}, token))["data"]["video"] == {
        "safe": False,
        "unsafeReasons": ["INSUFFICIENT_SCORE", "INSUFFICIENT_TRUST"],
    }
    await api.rows(f"UPDATE video SET availability = 'deleted' WHERE youtube_id = '{new}'")
    reasons = (await api.gql(q, {"id": new}, token))["data"]["video"]["unsafeReasons"]
    assert reasons == ["INSUFFICIENT_SCORE", "INSUFFICIENT_TRUST", "UNAVAILABLE"]


async def _make_safe_videos(api, n: int) -> None:
    """``n`` new videos three trusted contributors (trust 1 each) strongly prefer to
    the bottom of the ranking: safe (score > 20, trust 3 ≥ 1.5)."""
    bottom, _ = await _ranked(api, u=True)
    submit = (
        "mutation($a: String!, $b: String!) { submitComparison(input: {videoA: $a, videoB: $b,"
        " scores: [{criterion: largely_recommended, score: 10}]}) { " + ERRORS + " } }"
    )
    third = "trusted_" + uuid.uuid4().hex[:8]
    tokens = [await api.login("aidjango"), await api.login("le_science4all")]
    tokens.append(await api.register(third))
    body = await api.gql(
        "mutation($u: String!) { setPretrust(input: {username: $u, pretrust: 1}) { "
        + ERRORS + " } }", {"u": third}, await api.login(ADMIN),
    )  # fmt: skip
    assert body["data"]["setPretrust"]["userErrors"] == [], body
    for token in tokens:
        for i in range(n):
            for other in bottom[-4:]:
                new = f"safe-{i}-" + "x" * 4
                body = await api.gql(submit, {"a": other, "b": new}, token)
                assert body["data"]["submitComparison"]["userErrors"] == [], body


async def test_random_recommendations_are_safe_and_drawn_anew(api):
    safe, total = await _ranked(api)
    if total < 3:
        await _make_safe_videos(api, 3)
        safe, total = await _ranked(api)
    assert total >= 3
    body = await api.gql(RANDOM, {"first": 3})
    drawn = body["data"]["randomRecommendations"]
    assert len({v["youtubeId"] for v in drawn}) == 3
    assert all(v["unsafeReasons"] == [] and v["youtubeId"] in safe for v in drawn)
    # anonymous and identical requests: never served from the whole-response cache
    seen = set()
    for _ in range(20):
        (one,) = (await api.gql(RANDOM, {"first": 1}))["data"]["randomRecommendations"]
        seen.add(one["youtubeId"])
    assert len(seen) > 1
    everything = (await api.gql(RANDOM, {"first": 50}))["data"]["randomRecommendations"]
    assert len(everything) == min(50, total)
    for first in (0, 51):
        body = await api.gql(RANDOM, {"first": first})
        assert body["errors"][0]["extensions"]["code"] == "BAD_FIRST", body
