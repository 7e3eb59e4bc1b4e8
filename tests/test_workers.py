"""`sunrank serve --workers N` and `uvicorn --workers N`: several server processes on
one PostgreSQL database; SQLite refuses more than one with one clear line."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.conftest import SAMPLE

STARTED = re.compile(r"Started server process \[(\d+)\]")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_sqlite_refuses_several_workers_and_writes_nothing(env_for, tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "app", "serve", "--workers", "2"],
        env=env_for, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "sunrank: --workers 2: SQLite allows one server process; "
        "run several on PostgreSQL (SUNRANK_DATABASE_URL=postgres://...)"
    ]
    assert not (tmp_path / "data").exists()  # refused before the database was touched


@pytest.mark.parametrize(
    ("args", "env", "shown"),
    [
        (["--workers", "0"], {}, "'0'"),
        (["--workers", "many"], {}, "'many'"),
        ([], {"SUNRANK_WORKERS": "-1"}, "'-1'"),
    ],
)
def test_bad_worker_counts_are_refused(env_for, args, env, shown):
    result = subprocess.run(
        [sys.executable, "-m", "app", "serve", *args], env={**env_for, **env},
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 2
    assert f"argument --workers: expected a positive integer, got {shown}" in result.stderr
    assert "Traceback" not in result.stderr


@contextmanager
def _serving(command: list[str], env: dict[str, str], port: int) -> Iterator[list[str]]:
    """Run a multi-worker server until two workers have started; yield its output."""
    proc = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout or ()), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 300  # a hang guard on a loaded machine, not a claim
        while sum("Application startup complete" in line for line in lines) < 2:
            assert proc.poll() is None, "".join(lines)
            assert time.monotonic() < deadline, "".join(lines)
            time.sleep(0.3)
        yield lines
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=120) == 0, "".join(lines)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    reader.join(timeout=10)


def _check_two_workers(lines: list[str], base: str) -> None:
    pids = {int(m[1]) for line in lines if (m := STARTED.search(line))}
    assert len(pids) == 2, "".join(lines)
    ready = httpx.get(f"{base}/readyz", timeout=30)
    assert ready.status_code == 200, ready.text
    query = {"query": "{ criteria { name } }"}
    assert httpx.post(f"{base}/graphql", json=query, timeout=30).json()["data"]["criteria"]


@pytest.mark.postgres
@pytest.mark.slow
def test_sunrank_serve_runs_two_workers_on_postgres(env_for, postgres_url):
    port = _free_port()
    env = {**env_for, "SUNRANK_DATABASE_URL": postgres_url}
    command = [sys.executable, "-m", "app", "serve", "--workers", "2", "--port", str(port)]
    with _serving([*command, "--demo", "--demo-path", str(SAMPLE)], env, port) as lines:
        _check_two_workers(lines, f"http://127.0.0.1:{port}")
    assert "Stopping parent process" in "".join(lines)


@pytest.mark.postgres
@pytest.mark.slow
def test_uvicorn_factory_runs_two_workers_on_postgres(env_for, postgres_url):
    env = {**env_for, "SUNRANK_DATABASE_URL": postgres_url}
    migrate = [sys.executable, "-m", "app", "migrate"]  # uvicorn alone does not migrate
    subprocess.run(migrate, env=env, check=True, capture_output=True, timeout=300)
    port = _free_port()
    command = [
        sys.executable, "-m", "uvicorn", "app.main:create_app", "--factory",
        "--workers", "2", "--port", str(port),
    ]  # fmt: skip
    with _serving(command, env, port) as lines:
        _check_two_workers(lines, f"http://127.0.0.1:{port}")


@pytest.mark.postgres
def test_processes_starting_together_migrate_one_at_a_time(env_for, postgres_url):
    """Replicas started together (compose, a deploy) all migrate a fresh database."""
    env = {**env_for, "SUNRANK_DATABASE_URL": postgres_url}
    command = [sys.executable, "-m", "app", "migrate"]
    out = {"stdout": subprocess.PIPE, "stderr": subprocess.STDOUT, "text": True}
    procs = [subprocess.Popen(command, env=env, **out) for _ in range(3)]
    for proc in procs:
        output, _ = proc.communicate(timeout=300)
        assert proc.returncode == 0, output
        assert "database is up to date" in output


async def test_sqlite_lock_refuses_a_second_holder_and_dies_with_its_process(tmp_path):
    from app.engine.leader import LeaderLock, LeaderLockError

    url = f"sqlite://{tmp_path / 'sunrank.sqlite3'}"
    hold = (
        "import asyncio, sys, time\n"
        "from pathlib import Path\n"
        "from app.engine.leader import LeaderLock\n"
        f"lock = LeaderLock({url!r}, Path({str(tmp_path)!r}))\n"
        "asyncio.run(lock.acquire())\n"
        "print('held', flush=True)\n"
        "time.sleep(300)\n"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", hold], stdout=subprocess.PIPE, text=True, cwd=Path.cwd()
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(LeaderLockError, match="SQLite allows one server process"):
            await LeaderLock(url, tmp_path).acquire()
    finally:
        holder.kill()  # SIGKILL: no cleanup runs in the holder
        holder.wait()
    lock = LeaderLock(url, tmp_path)
    await lock.acquire()  # the OS dropped the lock with the process
    await lock.release()


def test_uvicorn_workers_on_sqlite_refuse_with_one_line(env_for):
    """The second worker's refusal is one line, not a traceback. uvicorn's supervisor
    still exits 0: with --workers > 1 it returns normally after a child's startup
    failure (only a single worker exits with its STARTUP_FAILURE code)."""
    migrate = [sys.executable, "-m", "app", "migrate"]
    subprocess.run(migrate, env=env_for, check=True, capture_output=True, timeout=300)
    command = [
        sys.executable, "-m", "uvicorn", "app.main:create_app", "--factory",
        "--workers", "2", "--port", str(_free_port()),
    ]  # fmt: skip
    result = subprocess.run(command, env=env_for, capture_output=True, text=True, timeout=300)
    output = result.stdout + result.stderr
    refusals = [line for line in output.splitlines() if "LeaderLockError" in line]
    assert refusals == [
        "ERROR:    sunrank: LeaderLockError: another Sunrank server already runs the learner "
        f"for {env_for['SUNRANK_DATA_DIR']} (SQLite allows one server process: use "
        "PostgreSQL for several)"
    ], output
    assert "Traceback" not in output
    assert "failed to start, stopping the parent process" in output
