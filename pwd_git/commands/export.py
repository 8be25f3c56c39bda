"""`git pwd export`: hand a revision's model or benchmark to other tools."""

from __future__ import annotations

from pathlib import Path

import click

from pwd_git.kb.loader import Domain
from pwd_git.output import echo_json, format_option


@click.group()
def export() -> None:
    """Write a revision's trained model or benchmark in the ecosystem's formats.

    \b
      git pwd export model DIR [REV]    merged Hugging Face folder (transformers, vLLM)
      git pwd export lm-eval DIR [REV]  lm-evaluation-harness tasks, one per level, and a group

    REV defaults to the working tree. DIR must be new or empty; it appears only when complete.
    """


@export.command("model")
@click.argument("directory", metavar="DIR", type=click.Path(path_type=Path, file_okay=False))
@click.argument("rev", metavar="[REV]", required=False)
@format_option("json")
def model(directory: Path, rev: str | None, fmt: str) -> None:
    """Write REV's trained model to DIR as a plain Hugging Face causal LM.

    A LoRA adapter is merged into its base (also for a .gguf base); the tiny model is copied
    as it is. DIR holds config.json, model.safetensors and the tokenizer, no custom code:
    AutoModelForCausalLM.from_pretrained(DIR) and `vllm serve DIR` load it. Nothing is
    trained here: run `git pwd train` (or `git pwd run`) first.
    """
    from pwd_git.export.model import export_model

    result = export_model(Domain.find("."), rev, directory)
    if fmt == "json":
        echo_json({"path": str(result.path), "model_key": result.model_key, "base": result.base,
                   "merged": result.merged, "commit": result.commit})
        return
    how = ("the tiny model" if result.base == "tiny" else
           f"{result.base}, LoRA merged into it" if result.merged else f"{result.base}, every weight fine-tuned")
    click.echo(f"exported model {result.model_key[:12]} ({how}) to {result.path}")


@export.command("lm-eval")
@click.argument("directory", metavar="DIR", type=click.Path(path_type=Path, file_okay=False))
@click.argument("rev", metavar="[REV]", required=False)
@format_option("json")
def lm_eval(directory: Path, rev: str | None, fmt: str) -> None:
    """Write REV's benchmark to DIR as lm-evaluation-harness tasks.

    One multiple_choice task per level (PREFIX_l1, _l2, _l3) and a group PREFIX (pwd_ and the
    domain name), scored as `git pwd test` scores: same prompt, " " + choice, acc and acc_norm.

    \b
      lm_eval --model hf --model_args pretrained=MODEL_DIR,add_bos_token=False \\
              --include_path DIR --tasks PREFIX
    """
    from pwd_git.export.lmeval import export_lm_eval

    result = export_lm_eval(Domain.find("."), rev, directory)
    if fmt == "json":
        echo_json({"path": str(result.path), "group": result.group, "tasks": result.tasks})
        return
    tasks = ", ".join(f"{name} ({n})" for name, n in result.tasks.items())
    click.echo(f"exported lm-eval group {result.group} to {result.path}: {tasks}")
    click.echo(f"  lm_eval --model hf --model_args pretrained=MODEL_DIR,add_bos_token=False "
               f"--include_path {result.path} --tasks {result.group}")
