"""``sunrank create-user``: password from stdin, admin flag, pretrust via the write path."""

import sqlite3
import subprocess
import sys


def test_create_user_reads_the_password_from_stdin(env_for, tmp_path):
    def run(*args, password="a long password"):
        return subprocess.run(
            [sys.executable, "-m", "app", "create-user", *args, "--password-stdin"],
            input=password + "\n", env=env_for, capture_output=True, text=True, timeout=120,
        )  # fmt: skip

    done = run("alice", "--admin", "--pretrust", "0.5")
    assert done.returncode == 0, done.stderr
    assert "created admin 'alice' with pretrust 0.5" in done.stdout
    refused = run("bob", password="short")
    assert refused.returncode == 1 and "at least 8 characters" in refused.stderr
    assert run("alice").returncode == 1
    with sqlite3.connect(tmp_path / "data" / "sunrank.sqlite3") as db:
        rows = db.execute('SELECT username, is_admin, pretrust FROM "user"').fetchall()
        assert rows == [("alice", 1, 0.5)]
        assert db.execute("SELECT kind FROM event").fetchall() == [("pretrust_changed",)]
        (hashed,) = db.execute('SELECT password_hash FROM "user"').fetchone()
        assert hashed.startswith("$argon2")
