"""The state `git pwd validate` keeps between runs: one SQLite file per domain in .git/pwd/cache/.

It holds, as key -> marshal rows:

  dirs   folder -> (file names, their (mtime_ns, size, inode) packed): a warm run compares
         these with a fresh `scandir` + `stat` and reads nothing else when they match
  files  path -> (kind, blob OID, the file's diagnostics)
  facts  "kind:OID" -> per-file facts (facts.py), so known content is never parsed again
  meta   the cache key, counts, pwd.yaml facts, the last run's full result
  and the cross-file index tables of index.py.

Each run reads and writes inside one `BEGIN IMMEDIATE` transaction, so concurrent runs
serialise and a crash leaves the previous state (SQLite's journal makes commits atomic).
The key (cache format, tool and parser versions, Python version for marshal) is checked on
open; a mismatch or any sign of corruption makes the caller start over with a cold run.
"""

from __future__ import annotations

import contextlib
import marshal
import os
import sqlite3
from pathlib import Path

from pwd_git.kb.index import TABLES

#: Bump when anything stored here changes meaning (invalidates every validate cache).
CACHE_VERSION = 9

_ALL = ("meta", "dirs", *TABLES)


class StoreError(Exception):
    """The cache is missing, from another version, or unreadable: run cold."""


class Store:
    def __init__(self, path: Path, db: sqlite3.Connection):
        self.path, self.db = path, db

    @classmethod
    def open(cls, path: Path, key: tuple) -> Store:
        """The existing cache at `path`, in a write transaction; StoreError if it is unusable."""
        if not path.is_file():
            raise StoreError("no cache yet")
        store = cls(path, _connect(path))
        try:
            store.db.execute("BEGIN IMMEDIATE")
            if store.load("meta", "key") != key:
                raise StoreError("cache from another version")
        except BaseException:
            store.close()
            raise
        return store

    @classmethod
    def create(cls, path: Path, key: tuple) -> Store:
        """A new, empty cache at `path` (anything there before is removed), in a write transaction."""
        remove(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        store = cls(path, _connect(path))
        store.db.execute("BEGIN IMMEDIATE")
        for name in _ALL:  # small rows clustered by key; a folder's row (kilobytes) keeps a rowid
            store.db.execute(f"CREATE TABLE IF NOT EXISTS {name} (k TEXT PRIMARY KEY, v BLOB NOT NULL)"
                             + ("" if name == "dirs" else " WITHOUT ROWID"))
        store.put("meta", {"key": key})
        return store

    # -- reads ------------------------------------------------------------------------------

    def load(self, table: str, key: str):
        row = self.db.execute(f"SELECT v FROM {table} WHERE k = ?", (key,)).fetchone()
        return None if row is None else marshal.loads(row[0])

    def scan(self, table: str):
        for key, value in self.db.execute(f"SELECT k, v FROM {table}"):
            yield key, marshal.loads(value)

    def count(self, table: str) -> int:
        return self.db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]

    # -- writes -----------------------------------------------------------------------------

    def put(self, table: str, rows: dict) -> None:
        """Insert or replace {key: value}; a None value deletes the row."""
        gone = [(k,) for k, v in rows.items() if v is None]
        if gone:
            self.db.executemany(f"DELETE FROM {table} WHERE k = ?", gone)
        self.db.executemany(f"INSERT OR REPLACE INTO {table} (k, v) VALUES (?, ?)",
                            ((k, marshal.dumps(v)) for k, v in rows.items() if v is not None))

    def clear(self, table: str) -> None:
        self.db.execute(f"DELETE FROM {table}")

    def commit(self) -> None:
        self.db.execute("COMMIT")

    def close(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            if self.db.in_transaction:
                self.db.execute("ROLLBACK")
        with contextlib.suppress(sqlite3.Error):
            self.db.close()


def _connect(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(str(path), timeout=30, isolation_level=None)
    try:
        db.execute("PRAGMA journal_mode=WAL")  # readers never wait on a writer
        db.execute("PRAGMA synchronous=NORMAL")  # WAL stays consistent after a crash; a cache needs no more
    except BaseException:
        db.close()
        raise
    return db


def remove(path: Path) -> None:
    """Delete a cache and SQLite's side files."""
    for suffix in ("", "-wal", "-shm", "-journal"):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(f"{path}{suffix}")
