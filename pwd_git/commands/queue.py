"""`git pwd queue`: what the commit hook queued, what the worker is doing, what failed."""

from __future__ import annotations

import os

import click

from pwd_git.output import echo_json, format_option


@click.command()
@click.option("--retry-failed", is_flag=True, help="Put failed jobs back in the queue (and start a worker).")
@click.option("--clear-failed", is_flag=True, help="Forget failed jobs.")
@format_option("json")
def queue(retry_failed: bool, clear_failed: bool, fmt: str) -> None:
    """Queued, running (with progress) and failed jobs of the commit hook's worker.

    Jobs live in .git/pwd/queue/, the worker's log in .git/pwd/logs/worker.log.
    """
    from pwd_git import jobs
    from pwd_git.git import Repo

    repo = Repo.discover(".")
    if retry_failed:
        n = jobs.retry_failed(repo)
        if n and os.environ.get("PWD_GIT_WORKER", "1") != "0":
            jobs.start_detached(repo)
        click.echo(f"queued {n} failed job(s) again", err=True)
    if clear_failed:
        click.echo(f"forgot {jobs.clear_failed(repo)} failed job(s)", err=True)
    snap = jobs.snapshot(repo)
    if fmt == "json":
        echo_json(snap)
        return
    worker = snap["worker"]
    click.echo(f"worker: {'running, pid ' + str(worker['pid']) if worker['running'] else 'idle'}  "
               f"(log: {worker['log']})")
    for job in snap["running"]:
        click.echo(f"running  {job['commit'][:10]}  attempt {job.get('attempts')}  {_progress(job)}")
    for job in snap["queued"]:
        again = f"  (attempt {job['attempts'] + 1})" if job.get("attempts") else ""
        click.echo(f"queued   {job['commit'][:10]}  since {job.get('enqueued')}{again}")
    for job in snap["failed"]:
        first = str(job.get("error", "")).splitlines()[0] if job.get("error") else "?"
        click.echo(f"failed   {str(job.get('commit') or '?')[:10]:10}  {first}")
    if snap["failed"]:
        click.echo("  (`git pwd queue --retry-failed` runs them again)")
    if not (snap["running"] or snap["queued"] or snap["failed"]):
        click.echo("nothing queued")
    for rec in snap["recent"][-5:]:
        how = f"reused {rec['reused_from'][:10]}" if rec.get("reused_from") else (
            "trained" if rec.get("trained") else "cached model")
        click.echo(f"done     {rec['commit'][:10]}  {rec.get('verdict')}  acc {rec.get('acc')}  ({how}, {rec['finished']})")


def _progress(job: dict) -> str:
    p = job.get("progress") or {}
    if not job.get("alive"):
        return "interrupted (the worker died); the next worker retries it"
    if p.get("phase") == "training" and p.get("total"):
        return f"training step {p['step']}/{p['total']} ({100 * p['step'] // p['total']}%), loss {p.get('loss')}"
    return p.get("phase", "starting")
