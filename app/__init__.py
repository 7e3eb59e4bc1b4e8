"""Sunrank: a collaborative, comparison-based ranking server."""

# SQLite before TensorFlow: the tensorflow wheel carries its own SQLite, built without
# FTS5, and whichever library a process loads first serves every connection. With
# tensorflow imported first, full-text search fails ("no such module: fts5", migration
# 0020). Every entry point imports this package first, so loading sqlite3 here fixes
# the order for all of them (tests/test_sqlite_fts.py).
import sqlite3  # noqa: F401
