"""The app's SQLite file, shared by both versions: WAL mode, a busy timeout, FULL sync."""

from __future__ import annotations

import sqlite3

BUSY_TIMEOUT_MS = 5000

SCHEMA = """
CREATE TABLE IF NOT EXISTS items (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    data TEXT NOT NULL,
    version TEXT NOT NULL,
    created_at REAL NOT NULL
)
"""


def connect(path: str) -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are explicit)."""
    conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
    conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    # FULL: an acknowledged write is on disk before the answer goes out.
    conn.execute("PRAGMA synchronous=FULL")
    return conn


def init_db(path: str) -> None:
    """Create the schema and switch the file to WAL mode (idempotent)."""
    conn = connect(path)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(SCHEMA)
    finally:
        conn.close()
