"""Results as git notes: `refs/notes/pwd/results`, one JSON line per test run.

JSON Lines with sorted keys make notes mergeable with `cat_sort_uniq`: two clones that
record results for the same commit merge by concatenation, and identical lines dedupe.
Pushing is fetch + merge + push with retries, never a force push. The same plumbing
(append, setup, pull, push) carries every ref of SHARED_REFS: the results and the bisect
conclusions (`refs/notes/pwd/bisect`, written and read by pwd_git.bisect.record).

Lines merge in from every clone, so reading trusts none of them: `parse_note` is the one
reader, and a line that is not JSON or does not fit the result schema (`problem`) is
skipped with one warning naming the commit, never a crash in `log`, `show` or `diagnose`.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from pwd_git.errors import PwdError, quote
from pwd_git.git import Repo, run_git
from pwd_git.lock import LockHeld, PidLock

NOTES_REF = "refs/notes/pwd/results"
BISECT_REF = "refs/notes/pwd/bisect"
SHARED_REFS = (NOTES_REF, BISECT_REF)  # what `git pwd notes setup|pull|push` carry
#: One glob for all of them: a plain `git fetch` does not fail on a remote that lacks one
#: (an exact refspec does), and fetched refs land beside ours, to be merged, never over them.
FETCH_SPEC = "+refs/notes/pwd/*:refs/notes/pwd-remote/*"
_LEGACY_FETCH_SPEC = "+refs/notes/pwd/results:refs/notes/pwd-remote/results"  # what setup added before FETCH_SPEC
SCHEMA_VERSION = 1
LOCK_WAIT = 30.0  # seconds a notes write waits for another one in this repo

log = logging.getLogger(__name__)

#: Fields that hold text in a result line (when present).
_TEXT_FIELDS = ("base", "build_key", "commit", "kb_tree", "model_key", "reused_from", "run_key", "shards_hash",
                "time", "tool", "verdict")
#: What a full test run writes in `metrics` (besides acc), and so what reusing a result needs.
_FULL_METRICS = ("acc_norm", "n", "levels", "concepts", "chains")


def dumps_line(entry: dict) -> str:
    return json.dumps(entry, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _score_problem(name: str, value: object) -> str | None:
    """`{"acc": number, "n": count}` (a level, concept, chain or the control set)."""
    if not isinstance(value, dict):
        return f"{name} is {quote(value)}, expected an object"
    if not _is_number(value.get("acc")):
        return f"{name}.acc is {quote(value.get('acc'))}, expected a number"
    if not _is_count(value.get("n")):
        return f"{name}.n is {quote(value.get('n'))}, expected a count"
    if "acc_norm" in value and not _is_number(value["acc_norm"]):
        return f"{name}.acc_norm is {quote(value['acc_norm'])}, expected a number"
    return None


def _metrics_problem(metrics: object) -> str | None:
    if not isinstance(metrics, dict):
        return f"metrics is {quote(metrics)}, expected an object"
    if not _is_number(metrics.get("acc")):
        return f"metrics.acc is {quote(metrics.get('acc'))}, expected a number"
    if "acc_norm" in metrics and not _is_number(metrics["acc_norm"]):
        return f"metrics.acc_norm is {quote(metrics['acc_norm'])}, expected a number"
    if "n" in metrics and not _is_count(metrics["n"]):
        return f"metrics.n is {quote(metrics['n'])}, expected a count"
    for table in ("levels", "concepts", "chains"):
        rows = metrics.get(table, {})
        if not isinstance(rows, dict):
            return f"metrics.{table} is {quote(rows)}, expected an object"
        for key, value in rows.items():
            found = _score_problem(f"metrics.{table}.{key[:40]}", value)
            if found:
                return found
    if metrics.get("control") is not None:
        return _score_problem("metrics.control", metrics["control"])
    return None


def _is_ids(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def problem(entry: object) -> str | None:
    """Why a parsed note line does not fit the result schema (None when it does). Checks the
    type of every field readers use, when present: lines from other clones or older tools
    may lack fields, but a field that is there has the shape `test` writes."""
    if not isinstance(entry, dict):
        return f"it is {quote(entry)}, not a JSON object"
    if "schema" in entry and not _is_count(entry["schema"]):
        return f"schema is {quote(entry['schema'])}, expected a version number"
    for key in _TEXT_FIELDS:
        if key in entry and not isinstance(entry[key], str):
            return f"{key} is {quote(entry[key])}, expected a string"
    if "metrics" in entry:
        found = _metrics_problem(entry["metrics"])
        if found:
            return found
    if "failed" in entry and not _is_ids(entry["failed"]):
        return f"failed is {quote(entry['failed'])}, expected a list of item ids"
    baseline = entry.get("baseline")
    if baseline is not None:
        if not isinstance(baseline, dict):
            return f"baseline is {quote(baseline)}, expected an object"
        for key in ("regressed", "fixed"):
            if key in baseline and not _is_ids(baseline[key]):
                return f"baseline.{key} is {quote(baseline[key])}, expected a list of item ids"
    return None


def is_complete(entry: dict) -> bool:
    """A (schema-valid) line holds everything a full test run writes: metrics with every
    table, and the failed items. Only such a line can stand in for running the tests."""
    metrics = entry.get("metrics")
    return isinstance(metrics, dict) and all(k in metrics for k in _FULL_METRICS) and "failed" in entry


def parse_note(text: str, commit: str = "", *, check: Callable[[object], str | None] = problem,
               kind: str = "result", schema: int = SCHEMA_VERSION) -> list[dict]:
    """The lines of one note that fit the schema (`check`: why a line does not), in order. Each
    other line is skipped with one warning naming the commit; newer schemas are read as far as
    this version knows. The defaults read result notes."""
    entries = []
    for number, raw in enumerate(text.splitlines(), 1):
        if not raw.strip():
            continue
        try:
            entry = json.loads(raw)
        except (ValueError, RecursionError):
            found: str | None = "it is not JSON"
        else:
            found = check(entry)
        if found:
            log.warning("skipping line %d of the %s note on %s: %s", number, kind, commit[:10] or "?", found)
            continue
        if entry.get("schema", 0) > schema:
            log.warning("the note on %s was written by a newer pwd-git (schema %d); reading the fields this "
                        "version knows", commit[:10], entry["schema"])
        entries.append(entry)
    return entries


def note_text(repo: Repo, commit: str, ref: str = NOTES_REF) -> str:
    """The raw note of `ref` on `commit` ("" when there is none)."""
    proc = run_git(["notes", "--ref", ref, "show", "--end-of-options", commit], repo.top, check=False)
    return proc.stdout.decode(errors="replace") if proc.returncode == 0 else ""


def note_texts(repo: Repo, ref: str = NOTES_REF) -> dict[str, str]:
    """Every raw note of `ref`, by commit, read through one `cat-file --batch`."""
    proc = run_git(["notes", "--ref", ref, "list"], repo.top, check=False)
    pairs = [line.split() for line in proc.stdout.decode().splitlines() if line.strip()]
    blobs = dict(repo.read_blobs(note for note, _ in pairs))
    return {commit: blobs[note].decode(errors="replace") for note, commit in pairs}


def read(repo: Repo, commit: str) -> list[dict]:
    """The valid result lines on `commit` (see `parse_note`)."""
    return parse_note(note_text(repo, commit), commit)


def read_all(repo: Repo) -> dict[str, list[dict]]:
    """Every commit's results."""
    return {commit: parse_note(text, commit) for commit, text in note_texts(repo).items()}


@contextmanager
def _lock(repo: Repo, wait: float = LOCK_WAIT) -> Iterator[None]:
    """One writer of the notes ref at a time within this repo (other clones merge later). A
    flock (lock.py): a writer killed mid-way leaves a file, never a held lock."""
    try:
        with PidLock(repo.pwd_dir() / "notes.lock", wait=wait):
            yield
    except LockHeld as exc:
        raise PwdError(f"timed out after {wait:.0f} s waiting for {exc.path} (held by pid {exc.pid or '?'})",
                       hint="another pwd-git process is writing results in this repository; run again when it is done"
                       ) from None


def append(repo: Repo, commit: str, entry: dict, ref: str = NOTES_REF) -> None:
    """Add one line to the note of `ref` on `commit` (a single ref update: no partial note;
    killed mid-way, the ref is either the old note or the new one). `entry`'s own schema
    field wins over the results' SCHEMA_VERSION."""
    line = dumps_line({"schema": SCHEMA_VERSION, **entry})
    with _lock(repo):
        lines = [ln for ln in note_text(repo, commit, ref).splitlines() if ln.strip()]
        if line in lines:
            return
        body = "\n".join([*lines, line]) + "\n"
        run_git(["notes", "--ref", ref, "add", "-f", "-F", "-", "--end-of-options", commit], repo.top,
                input=body.encode())


def setup(repo: Repo, remote: str | None = "origin") -> list[str]:
    """Configure merge strategy (every shared ref), `git log` display (results) and the fetch
    refspec (FETCH_SPEC, replacing the results-only one earlier versions set)."""
    done = []
    for ref in SHARED_REFS:
        name = ref.removeprefix("refs/notes/")
        repo.git("config", f"notes.{name}.mergeStrategy", "cat_sort_uniq")
        done.append(f"notes.{name}.mergeStrategy=cat_sort_uniq")
    existing = run_git(["config", "--get-all", "notes.displayRef"], repo.top, check=False).stdout.decode().split()
    if NOTES_REF not in existing:
        repo.git("config", "--add", "notes.displayRef", NOTES_REF)
        done.append(f"notes.displayRef+={NOTES_REF}")
    if remote and _has_remote(repo, remote):
        key = f"remote.{remote}.fetch"
        fetches = run_git(["config", "--get-all", key], repo.top, check=False).stdout.decode().split()
        if _LEGACY_FETCH_SPEC in fetches:
            repo.git("config", "--fixed-value", "--unset-all", key, _LEGACY_FETCH_SPEC)
            done.append(f"{key}-={_LEGACY_FETCH_SPEC}")
        if FETCH_SPEC not in fetches:
            repo.git("config", "--add", key, FETCH_SPEC)
            done.append(f"{key}+={FETCH_SPEC}")
    return done


def _has_remote(repo: Repo, remote: str) -> bool:
    return remote in repo.git("remote").split()


def _tracking(ref: str) -> str:
    """Where FETCH_SPEC puts the remote's copy of `ref`."""
    return ref.replace("refs/notes/pwd/", "refs/notes/pwd-remote/", 1)


def _exists(repo: Repo, ref: str) -> bool:
    return run_git(["rev-parse", "--verify", "--quiet", ref], repo.top, check=False).returncode == 0


def pull(repo: Repo, remote: str = "origin") -> list[str]:
    """Fetch the remote's notes and merge each shared ref into ours; the refs merged (none
    when the remote has no notes). One fetch for all (FETCH_SPEC, pruned: a ref the remote
    no longer has is not merged again)."""
    if not _has_remote(repo, remote):
        raise PwdError(f"no remote named {quote(remote)}", hint="add one with `git remote add`, or pass --remote")
    fetched = run_git(["fetch", "--quiet", "--prune", remote, FETCH_SPEC], repo.top, check=False)
    if fetched.returncode != 0:
        raise PwdError(f"fetching notes from {remote} failed: {fetched.stderr.decode().strip()}")
    merged = []
    with _lock(repo):
        for ref in SHARED_REFS:
            if _exists(repo, _tracking(ref)):
                run_git(["notes", "--ref", ref, "merge", "--quiet", "-s", "cat_sort_uniq", _tracking(ref)], repo.top)
                merged.append(ref)
    return merged


def push(repo: Repo, remote: str = "origin", retries: int = 5) -> int:
    """Fetch, merge, push every shared ref we have (one push); retry when someone pushed in
    between. Returns attempts used."""
    for attempt in range(1, retries + 1):
        pull(repo, remote)
        refs = [ref for ref in SHARED_REFS if _exists(repo, ref)]
        if not refs:
            return attempt  # nothing to push
        proc = run_git(["push", "--quiet", remote, *(f"{ref}:{ref}" for ref in refs)], repo.top, check=False)
        if proc.returncode == 0:
            return attempt
        if not any(s in proc.stderr for s in (b"rejected", b"non-fast-forward", b"fetch first", b"stale info")):
            raise PwdError(f"pushing notes to {remote} failed: {proc.stderr.decode().strip()}")
        time.sleep(0.1 * attempt)
    raise PwdError(f"pushing notes to {remote} was rejected {retries} times (others keep pushing)",
                   hint="run `git pwd notes push` again")
