"""`git pwd worker`: run the commit queue (what the post-commit hook starts in the background)."""

from __future__ import annotations

import os
import signal
from datetime import datetime

import click

from pwd_git.output import echo_json, format_option


@click.command()
@click.option("--once", is_flag=True, help="Run at most one job.")
@click.option("--detach", is_flag=True, help="Start a background worker and return at once.")
@click.option("--if-idle", is_flag=True, hidden=True, help="Exit quietly when another worker is running.")
@click.option("-q", "--quiet", is_flag=True, help="No progress output.")
@format_option("json")
def worker(once: bool, detach: bool, if_idle: bool, quiet: bool, fmt: str) -> None:
    """Build, train and test queued commits, oldest first, then exit.

    One worker runs at a time per repository (a lock with its pid; a lock left by a
    dead worker is taken over). A job interrupted by Ctrl-C, SIGTERM or a kill is
    retried by the next worker; notes are written only after a complete test.
    """
    from pwd_git import jobs
    from pwd_git.git import Repo

    repo = Repo.discover(".")
    if detach:
        pid = jobs.Queue(repo).worker_pid()
        started = pid is None
        if started:
            pid = jobs.start_detached(repo).pid
        if fmt == "json":
            echo_json({"started": started, "pid": pid, "log": str(jobs.Queue(repo).log_path)})
        elif started:
            click.echo(f"started a worker (pid {pid}); log: {jobs.Queue(repo).log_path}")
        else:
            click.echo(f"a worker is already running (pid {pid}); it picks up queued commits by itself")
        return

    def log(message: str) -> None:
        if not quiet:
            click.echo(f"{datetime.now().isoformat(timespec='seconds')} [{os.getpid()}] {message}", err=True)

    def terminate(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, terminate)  # the running job goes back to the queue
    try:
        summary = jobs.Worker(repo, log=log).run(once=once, if_idle=if_idle)
    finally:
        signal.signal(signal.SIGTERM, previous)
    if fmt == "json":
        echo_json({"done": summary.done, "failed": summary.failed, "requeued": summary.requeued})
    elif not if_idle:
        click.echo(f"done {summary.done}, failed {summary.failed}"
                   + (f", {summary.requeued} interrupted job(s) requeued" if summary.requeued else ""))
