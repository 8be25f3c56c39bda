"""`git pwd train`: compile the model from the shards of a revision."""

from __future__ import annotations

import click

from pwd_git.kb.loader import Domain
from pwd_git.output import StepProgress, echo_json, format_option, log_to_stderr


@click.command()
@click.option("--rev", metavar="REV", help="Train on the shards of a commit (built from git; no checkout).")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
@format_option("json")
def train(rev: str | None, quiet: bool, fmt: str) -> None:
    """Train the model for the working tree's shards/ (or REV's).

    model.base in pwd.yaml picks the model: `tiny` (default) builds a small decoder-only transformer
    and a byte-level BPE tokenizer from the domain's own shards and trains it from
    scratch, offline, in a few minutes on a CPU; a Hugging Face id (already in the local
    cache), a local folder or a .gguf file is fine-tuned with LoRA (peft).
    Artifacts go to a content-addressed cache ($XDG_CACHE_HOME/pwd-git/models), never
    into git; an unchanged KB + config is a cache hit and trains nothing.
    """
    from pwd_git.train.pipeline import train as run_train

    progress = StepProgress(not quiet and fmt == "text")
    try:
        result = run_train(Domain.find("."), rev, on_step=progress, log=log_to_stderr(not quiet and fmt == "text"))
    finally:
        progress.close()
    meta = result.meta
    if fmt == "json":
        echo_json({"model_key": result.key, "path": str(result.path), "cached": result.cached, "base": meta["base"],
                   "stats": meta.get("stats"), "train_seconds": meta.get("train_seconds")})
        return
    stats = meta.get("stats", {})
    how = "cache hit" if result.cached else f"trained in {meta.get('train_seconds')}s"
    click.echo(f"model {result.key[:12]} ({meta['base']}, {how}): {stats.get('examples')} records, "
               f"{stats.get('epochs')} epochs, {stats.get('steps')} steps, final loss {stats.get('final_loss')}")
    click.echo(f"  {result.path}")
