"""The whole-response cache for anonymous queries (app/response_cache.py): hits are
byte-identical, and a comparison or a mutation makes the next answer fresh."""

from __future__ import annotations

from app.datasets.importer import import_dataset
from app.datasets.reader import read_dataset
from app.db import connection
from tests.conftest import SAMPLE, running_app

RANKINGS = {
    "query": "{ rankings(first: 3, includeUnsafe: true) { edges { score node { youtubeId } } } }"
}
STATS = {"query": "{ stats { users } }"}


async def _gql(client, body, token=None):
    headers = {"authorization": f"Bearer {token}"} if token else {}
    response = await client.post("/graphql", json=body, headers=headers)
    return response


async def test_anonymous_queries_are_served_from_the_cache_until_data_changes(sqlite_url, tmp_path):
    await connection.migrate(sqlite_url)
    await connection.init(sqlite_url)
    await import_dataset(read_dataset(SAMPLE))
    await connection.close()
    async with running_app(sqlite_url, tmp_path / "d") as (app, client):
        first = await _gql(client, RANKINGS)
        second = await _gql(client, RANKINGS)
        assert second.content == first.content
        assert app.state.cache.hits >= 1

        before = (await _gql(client, STATS)).json()["data"]["stats"]["users"]
        creds = {"input": {"username": "newcomer", "password": "a long enough password"}}
        register = (
            "mutation($input: RegisterInput!) { register(input: $input) { userErrors { code } } }"
        )
        answer = (await _gql(client, {"query": register, "variables": creds})).json()
        assert answer["data"]["register"]["userErrors"] == [], answer
        after = (await _gql(client, STATS)).json()["data"]["stats"]["users"]
        assert after == before + 1, "a mutation invalidates cached answers"

        login = "mutation($input: CredentialsInput!) { login(input: $input) { token } }"
        token = (await _gql(client, {"query": login, "variables": creds})).json()["data"]["login"][
            "token"
        ]
        top = first.json()["data"]["rankings"]["edges"]
        a, b = top[0]["node"]["youtubeId"], top[1]["node"]["youtubeId"]
        submit = (
            "mutation($i: SubmitComparisonInput!) { submitComparison(input: $i) "
            "{ userErrors { code } } }"
        )
        version = app.state.learner.version
        await _gql(
            client,
            {
                "query": submit,
                "variables": {
                    "i": {
                        "videoA": a,
                        "videoB": b,
                        "scores": [{"criterion": "largely_recommended", "score": -10}],
                    }
                },
            },
            token,
        )
        assert app.state.learner.version > version
        third = await _gql(client, RANKINGS)
        assert third.json()["data"]["rankings"] != {} and third.status_code == 200
        misses = app.state.cache.misses
        await _gql(client, RANKINGS)
        assert app.state.cache.misses == misses, "the fresh answer is cached again"
        # signed-in requests never use the anonymous cache
        hits = app.state.cache.hits
        await _gql(client, STATS, token)
        assert app.state.cache.hits == hits
