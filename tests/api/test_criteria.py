"""Criteria like Tournesol's poll, over real HTTP: the main criterion required on a
new comparison, updates that replace (or merge) and never drop it, labels in
English and French by ``lang`` or Accept-Language, criteria as a GraphQL enum."""

from __future__ import annotations

import uuid

import pytest

from app.criteria import CRITERIA, CRITERION_NAMES
from tests.api.settle import settled_snapshot

pytestmark = pytest.mark.asyncio(loop_scope="session")
ERRORS = "userErrors { field message code }"
SUBMIT = (
    "mutation($a: String!, $b: String!, $s: [ScoreInput!]!, $merge: Boolean! = false) {"
    " submitComparison(input: {videoA: $a, videoB: $b, scores: $s, merge: $merge}) {"
    " comparison { scores { criterion score } } " + ERRORS + " } }"
)
CRITERIA_QUERY = "query($lang: LabelLanguage) { criteria(lang: $lang) { name isMain label } }"


def _new_id() -> str:
    return uuid.uuid4().hex[:11]


async def test_labels_in_english_and_french(api):
    english = (await api.gql(CRITERIA_QUERY))["data"]["criteria"]
    assert [c["name"] for c in english] == list(CRITERION_NAMES)
    assert [c["isMain"] for c in english] == [c.main for c in CRITERIA]
    assert english[0]["label"] == "Should be largely recommended"
    french = (await api.gql(CRITERIA_QUERY, {"lang": "fr"}))["data"]["criteria"]
    assert french[0]["label"] == "Devrait être largement recommandé"
    assert french[7]["label"] == "Résilience aux risques de retour de flamme"


async def test_accept_language_picks_the_labels_and_the_cache_keeps_them_apart(api):
    async def labels(header: str | None) -> list[str]:
        headers = {"accept-language": header} if header else {}
        # anonymous: the whole-response cache answers the second time of each
        response = await api.client.post(
            "/graphql", json={"query": "{ criteria { label } }"}, headers=headers
        )
        assert response.status_code == 200, response.text
        return [c["label"] for c in response.json()["data"]["criteria"]]

    for _ in range(2):
        assert (await labels("fr-CH, fr;q=0.9, en;q=0.8"))[1] == "Fiable et pas trompeur"
        assert (await labels("de, en;q=0.5"))[1] == "Reliable and not misleading"
        assert (await labels(None))[1] == "Reliable and not misleading"
        assert (await labels("en;q=0.2, fr;q=0.7"))[2] == "Important et actionnable"
    # a lang argument wins over the header; every language is listed too
    body = await api.client.post(
        "/graphql",
        json={"query": "{ criteria { en: label(lang: en) labels { language label } } }"},
        headers={"accept-language": "fr"},
    )
    first = body.json()["data"]["criteria"][0]
    assert first["en"] == "Should be largely recommended"
    assert first["labels"] == [
        {"language": "en", "label": "Should be largely recommended"},
        {"language": "fr", "label": "Devrait être largement recommandé"},
    ]


async def test_criteria_are_an_enum_in_inputs(api):
    token = await api.login("aidjango")
    before = await settled_snapshot(api)
    body = await api.gql(
        SUBMIT, {"a": _new_id(), "b": _new_id(), "s": [{"criterion": "charisma", "score": 1}]},
        token,
    )  # fmt: skip
    assert body["data"] is None
    assert "does not exist in 'CriterionName'" in body["errors"][0]["message"]
    # an enum literal works inline; a quoted string is refused by validation
    body = await api.gql(
        '{ rankings(weights: [{criterion: "pedagogy", weight: 1}]) { totalCount } }'
    )
    assert body["errors"] and body.get("data") is None
    body = await api.gql(
        "{ rankings(weights: [{criterion: pedagogy, weight: 1}]) { weights { criterion } } }"
    )
    assert body["data"]["rankings"]["weights"] == [{"criterion": "pedagogy"}]
    assert await api.snapshot() == before


async def test_main_criterion_required_on_a_new_comparison(api):
    token = await api.login("aidjango")
    a, b = _new_id(), _new_id()
    before = await settled_snapshot(api)
    body = await api.gql(SUBMIT, {"a": a, "b": b, "s": [{"criterion": "reliability", "score": 3}]},
                         token)  # fmt: skip
    errors = body["data"]["submitComparison"]["userErrors"]
    assert [(e["field"], e["code"]) for e in errors] == [("scores", "MAIN_CRITERION_REQUIRED")]
    assert "largely_recommended" in errors[0]["message"]
    assert await api.snapshot() == before  # not even the two new videos


async def test_updates_replace_by_default_merge_on_request_never_drop_the_main(api):
    token = await api.login("aidjango")
    a, b = _new_id(), _new_id()

    async def submit(scores: list[tuple[str, int]], merge: bool = False) -> dict:
        s = [{"criterion": c, "score": v} for c, v in scores]
        return (await api.gql(SUBMIT, {"a": a, "b": b, "s": s, "merge": merge}, token))["data"][
            "submitComparison"
        ]

    created = await submit([("largely_recommended", 4), ("reliability", 2)])
    assert created["userErrors"] == []
    # merge: only the criteria given change
    merged = await submit([("pedagogy", -1)], merge=True)
    assert merged["comparison"]["scores"] == [
        {"criterion": "largely_recommended", "score": 4},
        {"criterion": "reliability", "score": 2},
        {"criterion": "pedagogy", "score": -1},
    ]
    # replace (the default) without the main criterion: refused, nothing changes
    before = await settled_snapshot(api)
    refused = await submit([("reliability", 5)])
    assert [e["code"] for e in refused["userErrors"]] == ["MAIN_CRITERION_REQUIRED"]
    assert await api.snapshot() == before
    replaced = await submit([("largely_recommended", -2)])
    assert replaced["comparison"]["scores"] == [{"criterion": "largely_recommended", "score": -2}]
    rows = await api.rows(
        "SELECT s.criterion, s.score FROM comparison_score s JOIN comparison c "
        "ON c.id = s.comparison_id JOIN video v ON v.id = c.video_a_id "
        f"WHERE v.youtube_id IN ('{a}', '{b}')"
    )
    assert [r[0] for r in rows] == ["largely_recommended"]
