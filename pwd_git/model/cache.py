"""Content-addressed model artifacts under the user cache dir; never in git.

An entry is a folder named by its key with ARTIFACT.json listing every file's sha256.
Entries appear by atomic rename only, so a crash, Ctrl-C or full disk leaves none half
written; a corrupted entry fails its hash check and is retrained.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import click

from pwd_git.errors import PwdError

ARTIFACT = "ARTIFACT.json"


def cache_root() -> Path:
    base = os.environ.get("PWD_GIT_CACHE")
    if base:
        return Path(base)
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(xdg) / "pwd-git"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def model_dir(key: str) -> Path:
    return cache_root() / "models" / key


def lookup(key: str) -> dict | None:
    """The artifact's metadata when the entry exists and every file matches its hash."""
    path = model_dir(key)
    try:
        meta = json.loads((path / ARTIFACT).read_text())
    except (OSError, ValueError):
        if path.exists():
            click.echo(f"warning: model cache entry {key[:12]} is unreadable; retraining", err=True)
            shutil.rmtree(path, ignore_errors=True)
        return None
    for rel, digest in meta.get("files", {}).items():
        if not (path / rel).is_file() or _sha256(path / rel) != digest:
            click.echo(f"warning: model cache entry {key[:12]} is corrupted ({rel} fails its hash); retraining", err=True)
            shutil.rmtree(path, ignore_errors=True)
            return None
    return meta


def store(key: str, write: Callable[[Path], dict]) -> dict:
    """Run `write(tmpdir) -> metadata` and publish the folder atomically under `key`."""
    root = cache_root() / "models"
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=root))
    try:
        meta = write(tmp)
        meta["files"] = {p.relative_to(tmp).as_posix(): _sha256(p) for p in sorted(tmp.rglob("*")) if p.is_file()}
        meta["key"] = key
        (tmp / ARTIFACT).write_text(json.dumps(meta, indent=2, sort_keys=True))
        dest = model_dir(key)
        if dest.exists():
            shutil.rmtree(dest)
        os.rename(tmp, dest)
        return meta
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise PwdError(f"disk full while saving the model to {root}; nothing was cached",
                           hint="free some space (or set PWD_GIT_CACHE to a bigger disk) and train again") from None
        raise
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
