"""Results as git notes: `refs/notes/pwd/results`, one JSON line per test run.

JSON Lines with sorted keys make notes mergeable with `cat_sort_uniq`: two clones that
record results for the same commit merge by concatenation, and identical lines dedupe.
Pushing is fetch + merge + push with retries, never a force push.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager

import click

from pwd_git.errors import PwdError
from pwd_git.git import Repo, run_git

NOTES_REF = "refs/notes/pwd/results"
REMOTE_TRACKING_REF = "refs/notes/pwd-remote/results"
SCHEMA_VERSION = 1


def dumps_line(entry: dict) -> str:
    return json.dumps(entry, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def parse_note(text: str, commit: str = "") -> list[dict]:
    """Result lines of one note; unreadable lines are skipped, newer schemas read as far as known."""
    entries = []
    for raw in text.splitlines():
        if not raw.strip():
            continue
        try:
            entry = json.loads(raw)
        except ValueError:
            click.echo(f"warning: skipping a result line that is not JSON in the note on {commit[:10]}", err=True)
            continue
        if not isinstance(entry, dict):
            continue
        if int(entry.get("schema", 0) or 0) > SCHEMA_VERSION:
            click.echo(f"warning: the note on {commit[:10]} was written by a newer pwd-git (schema {entry['schema']}); "
                       "reading the fields this version knows", err=True)
        entries.append(entry)
    return entries


def read(repo: Repo, commit: str) -> list[dict]:
    proc = run_git(["notes", "--ref", NOTES_REF, "show", commit], repo.top, check=False)
    return parse_note(proc.stdout.decode(), commit) if proc.returncode == 0 else []


def read_all(repo: Repo) -> dict[str, list[dict]]:
    """Every commit's results, read through one `cat-file --batch`."""
    proc = run_git(["notes", "--ref", NOTES_REF, "list"], repo.top, check=False)
    pairs = [line.split() for line in proc.stdout.decode().splitlines() if line.strip()]
    blobs = dict(repo.read_blobs(note for note, _ in pairs))
    return {commit: parse_note(blobs[note].decode(errors="replace"), commit) for note, commit in pairs}


@contextmanager
def _lock(repo: Repo, timeout: float = 30.0) -> Iterator[None]:
    """One writer of the notes ref at a time within this repo (other clones merge later)."""
    path = repo.pwd_dir() / "notes.lock"
    deadline = time.monotonic() + timeout
    while True:
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            break
        except FileExistsError:
            if time.monotonic() > deadline:
                raise PwdError(f"timed out waiting for {path}", hint="remove it if no pwd-git process is running") from None
            time.sleep(0.05)
    try:
        os.write(fd, str(os.getpid()).encode())
        yield
    finally:
        os.close(fd)
        os.unlink(path)


def append(repo: Repo, commit: str, entry: dict) -> None:
    """Add one result line to the note on `commit` (a single ref update: no partial note)."""
    line = dumps_line({"schema": SCHEMA_VERSION, **entry})
    with _lock(repo):
        proc = run_git(["notes", "--ref", NOTES_REF, "show", commit], repo.top, check=False)
        existing = proc.stdout.decode() if proc.returncode == 0 else ""
        lines = [ln for ln in existing.splitlines() if ln.strip()]
        if line in lines:
            return
        body = "\n".join([*lines, line]) + "\n"
        run_git(["notes", "--ref", NOTES_REF, "add", "-f", "-F", "-", commit], repo.top, input=body.encode())


def setup(repo: Repo, remote: str | None = "origin") -> list[str]:
    """Configure merge strategy, display and the fetch refspec for the results notes."""
    done = []
    repo.git("config", "notes.pwd/results.mergeStrategy", "cat_sort_uniq")
    done.append("notes.pwd/results.mergeStrategy=cat_sort_uniq")
    existing = run_git(["config", "--get-all", "notes.displayRef"], repo.top, check=False).stdout.decode().split()
    if NOTES_REF not in existing:
        repo.git("config", "--add", "notes.displayRef", NOTES_REF)
        done.append(f"notes.displayRef+={NOTES_REF}")
    if remote and _has_remote(repo, remote):
        spec = f"+{NOTES_REF}:{REMOTE_TRACKING_REF}"
        fetches = run_git(["config", "--get-all", f"remote.{remote}.fetch"], repo.top, check=False).stdout.decode().split()
        if spec not in fetches:
            repo.git("config", "--add", f"remote.{remote}.fetch", spec)
            done.append(f"remote.{remote}.fetch+={spec}")
    return done


def _has_remote(repo: Repo, remote: str) -> bool:
    return remote in repo.git("remote").split()


def pull(repo: Repo, remote: str = "origin") -> bool:
    """Fetch the remote's results and merge them into ours; False when the remote has none."""
    if not _has_remote(repo, remote):
        raise PwdError(f"no remote named {remote!r}", hint="add one with `git remote add`, or pass --remote")
    fetched = run_git(["fetch", "--quiet", remote, f"+{NOTES_REF}:{REMOTE_TRACKING_REF}"], repo.top, check=False)
    if fetched.returncode != 0:
        if b"couldn't find remote ref" in fetched.stderr:
            return False
        raise PwdError(f"fetching notes from {remote} failed: {fetched.stderr.decode().strip()}")
    with _lock(repo):
        run_git(["notes", "--ref", NOTES_REF, "merge", "--quiet", "-s", "cat_sort_uniq", REMOTE_TRACKING_REF], repo.top)
    return True


def push(repo: Repo, remote: str = "origin", retries: int = 5) -> int:
    """Fetch, merge, push; retry when someone pushed in between. Returns attempts used."""
    for attempt in range(1, retries + 1):
        pull(repo, remote)
        if run_git(["rev-parse", "--verify", "--quiet", NOTES_REF], repo.top, check=False).returncode != 0:
            return attempt  # nothing to push
        proc = run_git(["push", "--quiet", remote, f"{NOTES_REF}:{NOTES_REF}"], repo.top, check=False)
        if proc.returncode == 0:
            return attempt
        if not any(s in proc.stderr for s in (b"rejected", b"non-fast-forward", b"fetch first", b"stale info")):
            raise PwdError(f"pushing notes to {remote} failed: {proc.stderr.decode().strip()}")
        time.sleep(0.1 * attempt)
    raise PwdError(f"pushing notes to {remote} was rejected {retries} times (others keep pushing)",
                   hint="run `git pwd notes push` again")
