"""Keep `.git/pwd/builds/` bounded: every revision built (by `run`, `bisect`, `patch`, the
worker) leaves a folder of shards there, and at scale each is hundreds of megabytes.

A build folder's MANIFEST.json mtime is its last use (a cache hit touches it). After a new
build, the least recently used folders beyond `PWD_GIT_KEEP_BUILDS` (default 16) are
removed with their `<key>.units` index, except a domain's latest build (the unit cache
reads it) and anything used in the last hour (another process may be reading it). Scratch
folders a killed build left behind go after a day. Everything here can be rebuilt.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from pathlib import Path

DEFAULT_KEEP = 16
IN_USE_SECONDS = 3600
STALE_TMP_SECONDS = 86400
MANIFEST = "MANIFEST.json"


def keep_count() -> int:
    try:
        return max(1, int(os.environ.get("PWD_GIT_KEEP_BUILDS", DEFAULT_KEEP)))
    except ValueError:
        return DEFAULT_KEEP


def touch(build_dir: Path) -> None:
    """Mark a cached build as used now."""
    with contextlib.suppress(OSError):
        os.utime(build_dir / MANIFEST)


def prune(cache_root: Path, keep: int | None = None, now: float | None = None) -> list[str]:
    """Remove old build folders; returns the keys removed."""
    keep = keep_count() if keep is None else keep
    now = time.time() if now is None else now
    latest = set()
    for pointer in cache_root.glob("last-*"):
        with contextlib.suppress(OSError):
            latest.add(pointer.read_text().strip())
    used: list[tuple[float, str]] = []
    for entry in cache_root.iterdir():
        if entry.name.startswith(".tmp-"):
            with contextlib.suppress(OSError):
                if now - entry.stat().st_mtime > STALE_TMP_SECONDS:
                    (shutil.rmtree if entry.is_dir() else os.unlink)(entry)
            continue
        with contextlib.suppress(OSError):
            used.append(((entry / MANIFEST).stat().st_mtime, entry.name))
    used.sort(reverse=True)
    removed = []
    for mtime, key in used[keep:]:
        if key in latest or now - mtime < IN_USE_SECONDS:
            continue
        with contextlib.suppress(OSError):
            os.unlink(cache_root / f"{key}.units")
        shutil.rmtree(cache_root / key, ignore_errors=True)
        removed.append(key)
    return removed
