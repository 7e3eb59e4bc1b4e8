"""Operations: health, readiness, metrics, request logs, graceful stop, one learner
per database, and PostgreSQL failing at startup or while serving."""

from __future__ import annotations

import json
import logging
import signal
import socket
import subprocess
import sys
import time

import httpx
import pytest
from asgi_lifespan import LifespanManager

from app.config import load_settings
from app.datasets.importer import import_dataset
from app.datasets.reader import read_dataset
from app.db import connection
from app.main import create_app
from tests.conftest import PG_HOST, PG_PORT, SAMPLE, STARTUP_TIMEOUT, running_app
from tests.tcpproxy import TcpProxy


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_server(env: dict, *args: str) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    env = {**env, "SUNRANK_PORT": str(port)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "app", "serve", *args], env=env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        if proc.poll() is not None:
            raise AssertionError(f"server exited early: {proc.stdout.read()}")
        try:
            if httpx.get(f"{base}/readyz").status_code == 200:
                return proc, base
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, "server not ready within 120 s"
        time.sleep(0.3)


@pytest.fixture
async def app_client(db, db_url, tmp_path):
    await import_dataset(read_dataset(SAMPLE))
    await connection.close()
    async with running_app(db_url, tmp_path / "data") as (_, client):
        yield client


async def test_health_readiness_metrics_and_request_log(app_client, caplog):
    caplog.set_level(logging.INFO, "sunrank.request")
    assert (await app_client.get("/healthz")).json() == {"status": "ok"}
    ready = await app_client.get("/readyz")
    assert ready.status_code == 200
    body = ready.json()
    full_fit = body.pop("full_fit")
    if "role" in body:  # PostgreSQL: a cluster of one, which leads and published its fit
        assert body.pop("role") == "leader" and body.pop("notifications") == "listening"
        assert body.pop("checkpoint")["id"] >= 1
    assert body == {
        "status": "ready",
        "database": "ok",
        "learner": "ok",
        "events_behind": 0,
    }
    # a startup fit from the database, no event since: the live scores are a full fit
    assert full_fit["events_since_refit"] == 0 and full_fit["refit_age_seconds"] >= 0

    response = await app_client.post(
        "/graphql",
        json={"query": "query Crit { criteria { name } }", "operationName": "Crit"},
        headers={"x-request-id": "client-chosen-id-42"},
    )
    assert response.headers["x-request-id"] == "client-chosen-id-42"
    line = next(r for r in caplog.records if getattr(r, "fields", {}).get("path") == "/graphql")
    assert line.fields["request_id"] == "client-chosen-id-42"
    assert line.fields["status"] == 200 and line.fields["duration_ms"] >= 0

    text = (await app_client.get("/metrics")).text
    for name in (
        "sunrank_requests_total",
        "sunrank_request_seconds_bucket",
        "sunrank_learner_update_seconds",
        "sunrank_learner_events_applied_total",
        "sunrank_learner_events_behind",
        "sunrank_learner_refit_seconds",
        "sunrank_cache_requests_total",
    ):
        assert name in text
    assert (await app_client.get("/healthz", headers={"x-request-id": "bad id!"})).headers[
        "x-request-id"
    ] != "bad id!"


def test_sigterm_drains_checkpoints_and_exits_zero(env_for, tmp_path):
    proc, base = _start_server(env_for, "--demo", "--demo-path", str(SAMPLE))
    assert httpx.post(f"{base}/graphql", json={"query": "{ criteria { name } }"}).status_code == 200
    before = set((tmp_path / "data" / "checkpoints").glob("ckpt-*"))
    proc.send_signal(signal.SIGTERM)
    output, _ = proc.communicate(timeout=60)  # a hang guard, not a speed claim
    assert proc.returncode == 0, output
    assert "checkpoint saved" in output
    after = set((tmp_path / "data" / "checkpoints").glob("ckpt-*"))
    assert after - before, "a new checkpoint was written at shutdown"


def test_a_second_server_on_the_same_database_refuses(env_for):
    proc, _ = _start_server(env_for, "--demo", "--demo-path", str(SAMPLE))
    try:
        second = subprocess.run(
            [sys.executable, "-m", "app", "serve"], env={**env_for, "SUNRANK_PORT": "1"},
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert second.returncode == 1
        assert "another Sunrank server already runs the learner" in second.stderr
        assert "Traceback" not in second.stderr
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def test_postgres_unreachable_at_startup_is_one_clear_line(env_for):
    port = _free_port()  # nothing listens there
    env = {**env_for, "SUNRANK_DATABASE_URL": f"postgres://postgres@127.0.0.1:{port}/sunrank"}
    result = subprocess.run(
        [sys.executable, "-m", "app", "serve"], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1
    assert (
        result.stderr.strip()
        .splitlines()[-1]
        .startswith(f"sunrank: cannot use the database postgres://127.0.0.1:{port}/sunrank")
    )
    assert "Traceback" not in result.stderr


@pytest.mark.postgres
async def test_postgres_lost_while_serving_fails_clearly_then_recovers(postgres_url, tmp_path):
    proxy = await TcpProxy(PG_HOST, PG_PORT).start()
    url = postgres_url.replace(f"{PG_HOST}:{PG_PORT}", f"127.0.0.1:{proxy.port}")
    await connection.migrate(url)
    await connection.init(url)
    await import_dataset(read_dataset(SAMPLE))
    await connection.close()
    app = create_app(load_settings({}, database_url=url, data_dir=tmp_path / "data"))
    query = {"query": "{ videos(first: 2) { totalCount } }"}
    async with LifespanManager(app, startup_timeout=STARTUP_TIMEOUT) as manager:
        transport = httpx.ASGITransport(app=manager.app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            assert (await client.post("/graphql", json=query)).json()["data"]["videos"][
                "totalCount"
            ] == 887

            await proxy.cut()
            # (a query not answered before: the response cache would serve that one)
            query = {"query": "{ videos(first: 3) { totalCount } }"}
            down = await client.post("/graphql", json=query)
            body = down.json()
            assert body["data"] is None
            message = body["errors"][0]["message"]
            assert "Traceback" not in message and "asyncpg" not in message
            assert (await client.get("/readyz")).status_code == 503
            assert (await client.get("/healthz")).status_code == 200

            await proxy.restore()
            for _ in range(50):  # the pool reconnects on the next requests
                up = (await client.post("/graphql", json=query)).json()
                if not up.get("errors"):
                    break
                time.sleep(0.1)
            assert up["data"]["videos"]["totalCount"] == 887
            assert (await client.get("/readyz")).status_code == 200
    await proxy.cut()


async def test_masked_errors_quote_the_request_id_of_the_log_line(app_client, caplog):
    """The operation and the request id reach the log line; an unexpected error's
    message quotes the id the client got in X-Request-ID."""
    from app.resolvers import videos

    caplog.set_level(logging.INFO)
    original = videos.page

    async def broken(*args: object) -> object:
        raise RuntimeError("disk on fire")

    videos.page = broken  # type: ignore[assignment]
    try:
        response = await app_client.post(
            "/graphql", json={"query": "query Mine { videos(first: 1) { totalCount } }"}
        )
    finally:
        videos.page = original  # type: ignore[assignment]
    request_id = response.headers["x-request-id"]
    message = response.json()["errors"][0]["message"]
    assert message == f"Internal server error (request id {request_id})"
    assert "disk on fire" not in message
    line = next(r for r in caplog.records if getattr(r, "fields", {}).get("path") == "/graphql")
    assert line.fields["operation"] == "query videos"
    assert line.fields["operation_name"] == "Mine"
    logged = [r for r in caplog.records if r.exc_info and request_id in r.getMessage()]
    assert logged and "disk on fire" in str(logged[0].exc_info[1])


def test_sigterm_lets_the_request_in_flight_finish(env_for):
    """A request accepted just before SIGTERM (an admin refit, which waits for a full
    fit) still gets its whole answer; then the server checkpoints and exits 0."""
    from tests.conftest import TINY

    creds = {"username": "admin", "password": "a long enough password"}
    created = subprocess.run(
        [sys.executable, "-m", "app", "create-user", "admin", "--admin"], env=env_for,
        input=creds["password"] + "\n", capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    proc, base = _start_server(env_for, "--demo", "--demo-path", str(TINY))
    login = "mutation($i: CredentialsInput!) { login(input: $i) { token } }"
    token = httpx.post(f"{base}/graphql", json={"query": login, "variables": {"i": creds}}).json()[
        "data"
    ]["login"]["token"]

    body = json.dumps({"query": "mutation { refit { fit { iterations } userErrors { code } } }"})
    port = int(base.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=60) as conn:
        conn.sendall(
            f"POST /graphql HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
            f"Authorization: Bearer {token}\r\nContent-Length: {len(body)}\r\n"
            f"Connection: close\r\n\r\n{body}".encode()
        )
        time.sleep(0.05)  # accepted and being served
        proc.send_signal(signal.SIGTERM)
        response = b""
        while chunk := conn.recv(65536):
            response += chunk
    output, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, output
    head, _, payload = response.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), response
    refit = json.loads(payload)["data"]["refit"]
    assert refit["userErrors"] == [] and refit["fit"]["iterations"] >= 0, refit
    assert "checkpoint saved" in output
