"""The SQLite every process uses has FTS5, whatever it imports first."""

from __future__ import annotations

import subprocess
import sys

FTS5 = (
    "import sqlite3; "
    "sqlite3.connect(':memory:').execute('CREATE VIRTUAL TABLE t USING fts5(a)'); "
    "print('fts5 ok')"
)


def test_fts5_works_after_the_learner_loaded_tensorflow():
    # the learner imports tensorflow before anything opens a database
    code = "import app.learner.model, tensorflow; " + FTS5
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().endswith("fts5 ok")
