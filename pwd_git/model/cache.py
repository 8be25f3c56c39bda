"""Content-addressed model artifacts under the user cache dir; never in git.

An entry is a folder named by its key with ARTIFACT.json listing every file's sha256.
Entries appear by atomic rename only, so a crash, Ctrl-C or full disk leaves none half
written; an entry that fails its checks (shape, hashes, weight headers) is removed and
retrained.
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import math
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from pwd_git.errors import PwdError
from pwd_git.lock import LockHeld, PidLock

log = logging.getLogger(__name__)

ARTIFACT = "ARTIFACT.json"
FILE_HASHES = "file-hashes.json"  # sha256 of files outside the cache (base models), by stat
_RACY_NS = 2_000_000_000  # a file modified this recently may change again without its stat changing
_OS_ERROR = re.compile(r"\(os error (\d+)\)")  # how Rust-backed writers (safetensors, tokenizers) report one


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


def run_dir(key: str) -> Path:
    """Where the Hugging Face trainer of model `key` keeps its checkpoints until the model is
    published (an interrupted training resumes from there); the same path in every process of a launch."""
    return cache_root() / "runs" / key


@contextmanager
def training(key: str, log: Callable[[str], None] = lambda _m: None) -> Iterator[None]:
    """Held while model `key` is trained: a second process training the same key (another
    `git pwd train`, the worker, a diagnose) waits here for the first, then finds its model in
    the cache instead of training it again. A flock on `locks/KEY.lock` (pwd_git.lock), so a
    trainer killed even with kill -9 never leaves it held."""
    path = cache_root() / "locks" / f"{key}.lock"
    try:
        lock = PidLock(path).acquire()
    except LockHeld as held:
        log(f"waiting for pid {held.pid or '?'}, which is training model {key[:12]}, to finish")
        lock = PidLock(path, wait=math.inf).acquire()
    try:
        yield
    finally:
        lock.release()


def _safetensors_intact(path: Path) -> bool:
    """The header parses and the tensors it lists end exactly at the end of the file."""
    try:
        size = path.stat().st_size
        with open(path, "rb") as fh:
            head = fh.read(8)
            length = int.from_bytes(head, "little")
            if len(head) < 8 or length > size - 8:
                return False
            header = json.loads(fh.read(length))
        ends = [int(v["data_offsets"][1]) for k, v in header.items() if k != "__metadata__"]
    except (OSError, ValueError, KeyError, TypeError, IndexError, AttributeError):
        return False
    return 8 + length + max(ends, default=0) == size


def _problem(path: Path, key: str, meta: object) -> str | None:
    """Why the entry at `path` with ARTIFACT.json `meta` cannot be used (None: it can)."""
    files = meta.get("files") if isinstance(meta, dict) else None
    if not isinstance(files, dict) or not all(isinstance(d, str) for d in files.values()):
        return f"{ARTIFACT} has no file hashes"
    if meta.get("key") != key or not isinstance(meta.get("base"), str):
        return f"{ARTIFACT} does not describe this model"
    if not isinstance(meta.get("stats", {}), dict) or not isinstance(meta.get("train_records", []), list):
        return f"{ARTIFACT} has fields of the wrong type"
    if not any(rel.endswith(".safetensors") for rel in files):
        return f"{ARTIFACT} lists no weights"
    for rel, digest in files.items():
        if Path(rel).is_absolute() or ".." in Path(rel).parts:
            return f"{ARTIFACT} lists {rel}, outside the entry"
        if not (path / rel).is_file() or _sha256(path / rel) != digest:
            return f"{rel} fails its hash"
        if rel.endswith(".safetensors") and not _safetensors_intact(path / rel):
            return f"{rel} is truncated or damaged"
    return None


def lookup(key: str) -> dict | None:
    """The artifact's metadata when the entry exists and passes its checks; a corrupt entry
    is removed (with a warning) so the caller retrains it."""
    path = model_dir(key)
    if not path.exists():
        return None
    try:
        meta = json.loads((path / ARTIFACT).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        meta = None
    problem = f"{ARTIFACT} is unreadable" if meta is None else _problem(path, key, meta)
    if problem is None:
        return meta
    log.warning("corrupt model cache entry %s (%s): retraining", key[:12], problem)
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)
    return None


def _errno_of(exc: BaseException) -> int | None:
    """The OS error behind `exc`: an OSError's errno, or the code a library that does its own
    I/O wrote into its message (safetensors raises SafetensorError on a full disk)."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno is not None:
            return exc.errno
        found = _OS_ERROR.search(str(exc))
        if found:
            return int(found.group(1))
        exc = exc.__cause__ or exc.__context__
    return None


def store(key: str, write: Callable[[Path], dict]) -> dict:
    """Run `write(tmpdir) -> metadata` and publish the folder atomically under `key`."""
    root = cache_root() / "models"
    tmp = None
    try:
        root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=root))
        meta = write(tmp)
        meta["files"] = {p.relative_to(tmp).as_posix(): _sha256(p) for p in sorted(tmp.rglob("*")) if p.is_file()}
        meta["key"] = key
        (tmp / ARTIFACT).write_text(json.dumps(meta, indent=2, sort_keys=True))
        dest = model_dir(key)
        if dest.exists():
            shutil.rmtree(dest)
        os.rename(tmp, dest)
        return meta
    except BaseException as exc:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
        if not isinstance(exc, PwdError) and _errno_of(exc) in (errno.ENOSPC, errno.EDQUOT):
            raise PwdError(f"disk full while saving the model to {root}; nothing was cached",
                           hint="free some space (or set PWD_GIT_CACHE to a bigger disk) and train again") from None
        raise


def file_digests(paths: list[Path]) -> dict[Path, str]:
    """sha256 of each file, remembered by (size, mtime_ns, inode) in the cache dir so an
    unchanged multi-gigabyte base model is read once, not on every run (as git's index does).
    A file modified in the last seconds is hashed but not remembered: it may still change
    without its stat showing it."""
    known_path = cache_root() / FILE_HASHES
    try:
        known = json.loads(known_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        known = {}
    if not isinstance(known, dict):
        known = {}
    out, changed, now = {}, False, time.time_ns()
    for path in paths:
        st = path.stat()
        stamp = [st.st_size, st.st_mtime_ns, st.st_ino]
        seen = known.get(str(path))
        if isinstance(seen, dict) and seen.get("stat") == stamp and isinstance(seen.get("sha256"), str):
            out[path] = seen["sha256"]
            continue
        out[path] = _sha256(path)
        if now - st.st_mtime_ns > _RACY_NS:
            known[str(path)] = {"stat": stamp, "sha256": out[path]}
            changed = True
    if changed:
        _save_json(known_path, {p: v for p, v in known.items() if os.path.exists(p)})
    return out


def _save_json(path: Path, data: dict) -> None:
    """Atomic replace; a cache of hashes that cannot be written is only a slower next run."""
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, sort_keys=True)
        os.replace(tmp, path)
    except OSError:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
