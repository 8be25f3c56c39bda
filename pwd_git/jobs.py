"""The commit queue and its worker: what the post-commit hook feeds (`git pwd queue`, `git pwd worker`).

Everything lives under .git/pwd/ (repo.pwd_dir()), one JSON file per job, moved between
folders with atomic renames so a crash never leaves a half-written job:

    queue/pending/<time>-<commit>.json   queued, oldest first
    queue/running/<name>.json            taken by the worker (+ <name>.progress.json)
    queue/failed/<name>.json             gave up: the error, and how many attempts (a corrupt
                                         job file lands here too, with what is wrong with it)
    queue/done.jsonl                     the last results, for `git pwd queue`
    worker.lock                          flock + pid: one worker at a time, never stale
    logs/worker.log                      the detached worker's output

A job is `git pwd run COMMIT`: build from the object store, train (or reuse), test, and
append the note. The note is written only after a complete test, and model-cache entries
are published by atomic rename, so a killed worker leaves neither; its job is still in
running/ and the next worker puts it back in the queue (up to MAX_ATTEMPTS times).
A commit whose KB state already has a result (same build and run key, e.g. a README-only
commit after a judged one) reuses it: no build work beyond a cache hit, no training.
"""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from pwd_git import tool
from pwd_git.errors import PwdError
from pwd_git.git import Repo
from pwd_git.lock import LockHeld, PidLock, holder

MAX_ATTEMPTS = 3
DONE_KEEP = 50
OID = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")  # enqueue writes full OIDs (SHA-1 or SHA-256)
log = logging.getLogger(__name__)
_STRIP_ENV = ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_PREFIX", "GIT_OBJECT_DIRECTORY",
              "GIT_ALTERNATE_OBJECT_DIRECTORIES", "GIT_QUARANTINE_PATH", "GIT_REFLOG_ACTION")


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class WorkerBusy(PwdError):
    """Another worker holds the lock."""


@dataclass(frozen=True)
class Queue:
    """The folders of one repository's queue."""

    repo: Repo

    @property
    def root(self) -> Path:
        return self.repo.pwd_dir() / "queue"

    def folder(self, name: str) -> Path:
        path = self.root / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    @property
    def lock_path(self) -> Path:
        return self.repo.pwd_dir() / "worker.lock"

    @property
    def log_path(self) -> Path:
        path = self.repo.pwd_dir() / "logs" / "worker.log"
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def jobs(self, state: str) -> list[tuple[Path, dict]]:
        """The jobs of a folder, oldest first; corrupt job files are left out (see scan)."""
        return self.scan(state)[0]

    def scan(self, state: str) -> tuple[list[tuple[Path, dict]], list[tuple[Path, str]]]:
        """(jobs, corrupt files with what is wrong with them) of a folder. In failed/ any JSON
        object is a record (a corrupt job's record has no commit)."""
        good, bad = [], []
        for path in sorted(self.folder(state).glob("*.json")):
            if path.name.endswith(".progress.json"):
                continue
            try:
                text = path.read_text()
            except OSError:
                continue  # vanished between listing and reading (taken by the worker)
            job, problem = _parse_job(text, record=state == "failed")
            if problem:
                bad.append((path, problem))
            else:
                good.append((path, job))
        return good, bad

    def done(self, limit: int = 10) -> list[dict]:
        """The last `limit` results; lines that are not a result are skipped, with a warning."""
        path = self.root / "done.jsonl"
        try:
            lines = [line for line in path.read_text(errors="replace").splitlines() if line.strip()]
        except OSError:
            return []
        out, skipped = [], 0
        for line in lines[-limit:]:
            try:
                record = json.loads(line)
            except ValueError:
                record = None
            if isinstance(record, dict) and isinstance(record.get("commit"), str) and \
                    isinstance(record.get("finished"), str):
                out.append(record)
            else:
                skipped += 1
        if skipped:
            log.warning("skipped %d unreadable line(s) of %s", skipped, path)
        return out

    def worker_pid(self) -> int | None:
        return holder(self.lock_path)


def _parse_job(text: str, *, record: bool = False) -> tuple[dict, str]:
    """(job, "") or ({}, what is wrong): a job names a full commit OID; domain and attempts,
    when present, are a string and a count. A failed/ `record` need only be a JSON object."""
    try:
        job = json.loads(text)
    except ValueError as exc:
        return {}, f"not JSON ({exc})"
    if not isinstance(job, dict):
        return {}, f"not a JSON object (a JSON {type(job).__name__})"
    if record:
        return job, ""
    commit = job.get("commit")
    if commit is None:
        return {}, "no commit"
    if not (isinstance(commit, str) and OID.fullmatch(commit)):
        return {}, f"commit is not a full commit id: {str(commit)[:80]!r}"
    if not isinstance(job.get("domain", ""), str):
        return {}, "domain is not a folder name"
    attempts = job.get("attempts", 0)
    if not (isinstance(attempts, int) and not isinstance(attempts, bool) and attempts >= 0):
        return {}, f"attempts is not a count: {str(attempts)[:80]!r}"
    return job, ""


def _write_json(path: Path, data: dict) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, sort_keys=True))
    os.replace(tmp, path)


def enqueue(repo: Repo, commit: str, domain_prefix: str) -> Path | None:
    """Queue `commit` (a full OID); None when it is already queued or running."""
    q = Queue(repo)
    for state in ("pending", "running"):
        if any(job.get("commit") == commit for _, job in q.jobs(state)):
            return None
    name = f"{time.time_ns():020d}-{commit[:12]}.json"
    path = q.folder("pending") / name
    _write_json(path, {"commit": commit, "domain": domain_prefix, "enqueued": _now(), "attempts": 0})
    return path


def start_detached(repo: Repo) -> subprocess.Popen:
    """A worker in its own session, output to .git/pwd/logs/worker.log; returns at once.
    It exits quietly if another worker already runs (that one picks up the queue). It is the
    installed tool (`pwd_git.tool`): nothing in the repo, its working directory, is imported."""
    q = Queue(repo)
    env = {k: v for k, v in os.environ.items() if k not in _STRIP_ENV}
    with open(q.log_path, "ab") as log:
        return subprocess.Popen([*tool.command(), "-C", str(repo.top), "worker", "--if-idle"],
                                stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
                                close_fds=True, env=env, cwd=repo.top)


@dataclass
class WorkerSummary:
    done: int = 0
    failed: int = 0
    requeued: int = 0


class Worker:
    """Runs queued jobs in order while holding the worker lock."""

    def __init__(self, repo: Repo, *, log: Callable[[str], None] = lambda _m: None):
        self.repo, self.queue, self.log = repo, Queue(repo), log
        self.summary = WorkerSummary()

    def run(self, *, once: bool = False, if_idle: bool = False) -> WorkerSummary:
        lock = PidLock(self.queue.lock_path)
        while True:
            try:
                lock.acquire()
            except LockHeld as held:
                if if_idle:
                    return self.summary
                raise WorkerBusy(f"a worker is already running the queue (pid {held.pid})",
                                 hint="`git pwd queue` shows its progress; it picks up new commits by itself") from None
            try:
                self._recover()
                while True:
                    jobs, corrupt = self.queue.scan("pending")
                    for path, problem in corrupt:
                        self._reject(path, problem)
                    if not jobs:
                        break
                    self._process(*jobs[0])
                    if once:
                        return self.summary
            finally:
                lock.release()
            # A commit queued while we were finishing may have seen our lock and left its
            # job to us: look again after releasing, and carry on if the lock is free.
            if once or not self.queue.jobs("pending"):
                return self.summary
            if_idle = True

    def _reject(self, path: Path, problem: str) -> None:
        """A corrupt job file goes to failed/ with the reason (and its first bytes), out of the way."""
        try:
            text = path.read_text(errors="replace")
        except OSError:
            return  # gone already
        record = {"file": path.name, "error": f"corrupt job file {path.name}: {problem}", "failed": _now(),
                  "content": text[:500], "attempts": 0}
        _write_json(self.queue.folder("failed") / path.name, record)
        path.unlink(missing_ok=True)
        path.with_name(path.stem + ".progress.json").unlink(missing_ok=True)
        self.summary.failed += 1
        self.log(f"{path.name}: {record['error']}")

    def _recover(self) -> None:
        """Jobs left in running/ belong to a worker that died (we hold the lock): retry them."""
        jobs, corrupt = self.queue.scan("running")
        for path, problem in corrupt:
            self._reject(path, problem)
        for path, job in jobs:
            progress = path.with_name(path.stem + ".progress.json")
            progress.unlink(missing_ok=True)
            if job.get("attempts", 0) >= MAX_ATTEMPTS:
                job.update(error=f"the worker was killed {job['attempts']} times while running it", failed=_now())
                _write_json(self.queue.folder("failed") / path.name, job)
                path.unlink(missing_ok=True)
                self.summary.failed += 1
                self.log(f"{job['commit'][:10]}: given up after {job['attempts']} interrupted attempts")
            else:
                os.replace(path, self.queue.folder("pending") / path.name)
                self.summary.requeued += 1
                self.log(f"{job['commit'][:10]}: interrupted earlier (pid {job.get('pid')}); queued again")

    def _process(self, path: Path, job: dict) -> None:
        running = self.queue.folder("running") / path.name
        job.update(attempts=job.get("attempts", 0) + 1, pid=os.getpid(), started=_now())
        _write_json(path, job)
        os.replace(path, running)
        progress = running.with_name(running.stem + ".progress.json")
        reporter = _Progress(progress)
        short = job["commit"][:10]
        self.log(f"{short}: build, train, test (attempt {job['attempts']})")
        try:
            entry = run_job(self.repo, job, reporter)
        except (KeyboardInterrupt, SystemExit):
            progress.unlink(missing_ok=True)
            job.pop("pid", None)
            os.replace(running, self.queue.folder("pending") / running.name)  # retried by the next worker
            raise
        except Exception as exc:
            message = exc.render() if isinstance(exc, PwdError) else f"internal error: {type(exc).__name__}: {exc}"
            job.update(error=message, failed=_now())
            _write_json(self.queue.folder("failed") / running.name, job)
            running.unlink(missing_ok=True)
            progress.unlink(missing_ok=True)
            self.summary.failed += 1
            self.log(f"{short}: failed: {message}")
            return
        record = {"commit": job["commit"], "finished": _now(), "verdict": entry.get("verdict"),
                  "acc": entry.get("metrics", {}).get("acc"), "reused_from": entry.get("reused_from"),
                  "trained": reporter.trained}
        _append_done(self.queue.root / "done.jsonl", record)
        running.unlink(missing_ok=True)
        progress.unlink(missing_ok=True)
        self.summary.done += 1
        how = f"reused {entry['reused_from'][:10]}" if entry.get("reused_from") else (
            "trained" if reporter.trained else "cached model")
        self.log(f"{short}: {entry.get('verdict')} (acc {entry.get('metrics', {}).get('acc')}, {how})")


class _Progress:
    """Writes what the running job is doing to <job>.progress.json (at most twice a second)."""

    def __init__(self, path: Path):
        self.path, self.last, self.trained = path, 0.0, False
        self.phase("starting")

    def phase(self, text: str) -> None:
        _write_json(self.path, {"phase": text, "updated": _now()})

    def __call__(self, step: int, total: int, loss: float) -> None:
        self.trained = True
        now = time.monotonic()
        if now - self.last >= 0.5 or step == total:
            self.last = now
            _write_json(self.path, {"phase": "training", "step": step, "total": total, "loss": round(loss, 4),
                                    "updated": _now()})


def _append_done(path: Path, record: dict) -> None:
    try:
        lines = path.read_text().splitlines()[-(DONE_KEEP - 1):]
    except OSError:
        lines = []
    lines.append(json.dumps(record, sort_keys=True))
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text("\n".join(lines) + "\n")
    os.replace(tmp, path)


def run_job(repo: Repo, job: dict, progress: _Progress) -> dict:
    """`git pwd run COMMIT` as a library call; returns the note entry."""
    from pwd_git.build.shards import build
    from pwd_git.evaluate.run import evaluate
    from pwd_git.kb.loader import Domain

    commit = repo.resolve(job["commit"])
    domain = Domain(repo, repo.top / job.get("domain", ""))
    progress.phase("building")
    build(domain, commit, to_worktree=False)

    def log(message: str) -> None:
        if message.startswith("scoring"):
            progress.phase("scoring")
        elif message.startswith("reusing"):
            progress.phase("reusing a recorded result")

    report = evaluate(domain, commit, log=log, on_step=progress)
    return report.entry


def retry_failed(repo: Repo) -> int:
    q = Queue(repo)
    jobs = q.jobs("failed")
    for path, job in jobs:
        for key in ("error", "failed", "pid", "started"):
            job.pop(key, None)
        job["attempts"] = 0
        _write_json(q.folder("pending") / path.name, job)
        path.unlink()
    return len(jobs)


def clear_failed(repo: Repo) -> int:
    jobs, unreadable = Queue(repo).scan("failed")
    for path in [path for path, _ in jobs] + [path for path, _ in unreadable]:
        path.unlink()
    return len(jobs) + len(unreadable)


def snapshot(repo: Repo) -> dict:
    """Everything `git pwd queue` shows: queued, running (with progress), failed, recent."""
    q = Queue(repo)
    pid = q.worker_pid()
    running = []
    for path, job in q.jobs("running"):
        try:
            progress = json.loads(path.with_name(path.stem + ".progress.json").read_text())
        except (OSError, ValueError):
            progress = None
        alive = pid is not None and job.get("pid") == pid
        running.append({**job, "progress": progress, "alive": alive})
    return {"worker": {"pid": pid, "running": pid is not None, "log": str(q.log_path)},
            "queued": [job for _, job in q.jobs("pending")], "running": running,
            "failed": [job for _, job in q.jobs("failed")], "recent": q.done()}
