"""`git pwd build`: compile the KB into training shards and a benchmark."""

from __future__ import annotations

import sys
import time

import click

from pwd_git.build.shards import SHARDS_DIR, check, warn_about
from pwd_git.build.shards import build as run_build
from pwd_git.errors import EXIT_FAILED
from pwd_git.kb.loader import Domain
from pwd_git.output import echo_json, format_option


def progress_printer(enabled: bool):
    start = time.perf_counter()

    def show(message: str) -> None:
        if enabled:
            click.echo(f"[{time.perf_counter() - start:6.1f}s] {message}", err=True)

    return show


@click.command()
@click.option("--rev", metavar="REV", help="Build a committed revision from the object store; shards/ is not touched.")
@click.option("--check", "check_only", is_flag=True,
              help="Do not build: exit 1 when shards/ is stale for the KB in the working tree (pre-commit hook).")
@click.option("-q", "--quiet", is_flag=True, help="No progress messages.")
@format_option("json")
def build(rev: str | None, check_only: bool, quiet: bool, fmt: str) -> None:
    """Compile the KB into shards/: training data and the benchmark.

    \b
    shards/train/*.jsonl   chat `messages` records from L1 concepts, L2 statements,
                           train-split chains and patches/ (TRL, axolotl, LLaMA-Factory)
    shards/bench/*.jsonl   multiple-choice items from test-split chains and probes
                           of every concept and statement on their paths
    shards/MANIFEST.json   counts, content hashes, generator version, KB tree OID
    shards/README.md       dataset card: configs and typed features for `datasets`
    shards/dataset_info.json  LLaMA-Factory's registry of the non-empty train files

    Deterministic (same KB + config + version = same bytes) and cached by build key,
    so an unchanged KB rebuilds instantly; after an edit, only the records whose text
    changed are generated again. Uses every CPU (PWD_BUILD_JOBS=N to limit; the bytes
    are the same). Fails when a benchmark item leaks into training data (shared long
    n-gram or near-duplicate), naming both records. Builds are cached in
    .git/pwd/builds; the 16 least recently used are kept (PWD_GIT_KEEP_BUILDS=N).
    """
    domain = Domain.find(".")
    if check_only:
        fresh = check(domain)
        if fmt == "json":
            echo_json({"fresh": fresh.fresh, "reasons": fresh.reasons, "build_key": fresh.key.key})
        elif fresh.fresh:
            click.echo(f"{SHARDS_DIR}/ is up to date (build {fresh.key.key[:12]})")
        else:
            for reason in fresh.reasons:
                click.echo(f"{SHARDS_DIR}/MANIFEST.json: error: {reason}", err=True)
            click.echo("hint: run `git pwd build` and commit shards/", err=True)
        raise SystemExit(0 if fresh.fresh else EXIT_FAILED)
    result = run_build(domain, rev, progress=progress_printer(not quiet and fmt == "text" and sys.stderr.isatty()))
    m = result.manifest
    warn_about(m)
    if fmt == "json":
        echo_json({"build_key": result.key.key, "kb_tree": result.key.kb_tree, "cached": result.cached,
                   "path": str(result.path), "counts": m["counts"]["train"] | {}, "manifest": m})
        return
    train, bench = m["counts"]["train"], m["counts"]["bench"]
    where = f"{SHARDS_DIR}/" if rev is None else str(result.path)
    click.echo(f"{'Cached' if result.cached else 'Built'} {m['kb']['concepts']} concepts, {m['kb']['statements']} statements, "
               f"{m['kb']['chains']} chains -> {where}")
    click.echo("  train: " + ", ".join(f"{lvl} {n}" for lvl, n in train.items()) + f"  ({sum(train.values())} records)")
    click.echo("  bench: " + ", ".join(f"{lvl} {n}" for lvl, n in bench.items()) + f"  ({sum(bench.values())} items)")
    click.echo(f"  build key {result.key.key[:12]}  KB tree {result.key.kb_tree[:12]}")
