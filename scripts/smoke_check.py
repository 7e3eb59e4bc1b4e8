"""Talk to a running Sunrank server like a first-time user; exit 1 on any surprise.

    python3 scripts/smoke_check.py http://127.0.0.1:8000

Standard library only: it runs on the host, outside the image's virtualenv.
"""

from __future__ import annotations

import json
import sys
import time
import urllib.error
import urllib.request

TIMEOUT_S = 300  # the first start loads the demo data and fits the learner


def request(base: str, path: str, body: dict | None = None, token: str | None = None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method="POST" if data else "GET")
    req.add_header("content-type", "application/json")
    if token:
        req.add_header("authorization", f"Bearer {token}")
    with urllib.request.urlopen(req, timeout=30) as response:
        return response.status, json.loads(response.read())


def graphql(base: str, query: str, variables: dict | None = None, token: str | None = None):
    _, body = request(base, "/graphql", {"query": query, "variables": variables or {}}, token)
    if body.get("errors"):
        raise AssertionError(f"GraphQL errors: {body['errors']}")
    return body["data"]


def wait_ready(base: str) -> None:
    deadline = time.monotonic() + TIMEOUT_S
    while True:
        try:
            status, body = request(base, "/readyz")
            if status == 200:
                print(f"ready: {body}")
                return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"not ready after {TIMEOUT_S} s")
        time.sleep(1)


def main(base: str) -> None:
    wait_ready(base)
    data = graphql(
        base,
        "{ criteria { name isMain } videos(first: 3) { totalCount edges { node { youtubeId } } } }",
    )
    assert data["criteria"][0] == {"name": "largely_recommended", "isMain": True}, data
    assert data["videos"]["totalCount"] == 6248, data["videos"]["totalCount"]
    print(f"query ok: {data['videos']['totalCount']} videos")
    a, b = (e["node"]["youtubeId"] for e in data["videos"]["edges"][:2])

    user = f"smoke{int(time.time())}"
    creds = {"input": {"username": user, "password": "correct horse battery staple"}}
    register = graphql(
        base,
        "mutation($input: RegisterInput!) { register(input: $input) { userErrors { message } } }",
        creds,
    )["register"]
    assert not register["userErrors"], register
    login = graphql(
        base,
        "mutation($input: CredentialsInput!) { login(input: $input) "
        "{ token userErrors { message } } }",
        creds,
    )["login"]
    assert login["token"] and not login["userErrors"], login

    submit = graphql(
        base,
        "mutation($input: SubmitComparisonInput!) { submitComparison(input: $input) {"
        " comparison { scores { criterion score } }"
        " videoA { youtubeId scores { criterion score nComparisons } }"
        " videoB { youtubeId scores { criterion score nComparisons } }"
        " userErrors { field message code } } }",
        {
            "input": {
                "videoA": a,
                "videoB": b,
                "scores": [{"criterion": "largely_recommended", "score": 7}],
            }
        },
        token=login["token"],
    )["submitComparison"]
    assert not submit["userErrors"], submit
    assert submit["comparison"]["scores"] == [{"criterion": "largely_recommended", "score": 7}]
    main_b = {s["criterion"]: s for s in submit["videoB"]["scores"]}["largely_recommended"]
    assert main_b["nComparisons"] >= 1 and -100 <= main_b["score"] <= 100, main_b
    print(f"submitComparison ok: {b} now {main_b['score']:.1f} on largely_recommended")


if __name__ == "__main__":
    try:
        main(sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8000")
    except AssertionError as exc:
        print(f"smoke check failed: {exc}", file=sys.stderr)
        sys.exit(1)
