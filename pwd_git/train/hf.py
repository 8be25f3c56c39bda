"""Fine-tuning a Hugging Face base with transformers' Trainer (and peft): what the ecosystem uses,
so mixed precision, gradient accumulation and checkpointing, QLoRA, full fine-tuning, resumable
checkpoints and multi-process launches (`accelerate launch`, torchrun: DDP, FSDP, DeepSpeed) come
from it. The tiny model keeps the lean loop in train/loop.py.

Records are rendered by model.text.rendering (the tokenizer's chat template when it has one) and
tokenized here, so the ids trained on are the ids scoring conditions on.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pwd_git.errors import PwdError
from pwd_git.model.settings import TrainSettings
from pwd_git.model.text import Rendering
from pwd_git.train.loop import TrainStats, _diverged, pad_batch

FINAL = "final"  # the trained model inside the run folder, before it is published to the cache


@dataclass(frozen=True)
class World:
    """This process's place in a multi-process launch (torchrun / accelerate launch set the
    variables); one process without a launcher."""

    rank: int
    size: int

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def world() -> World:
    return World(int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1")))


def barrier() -> None:
    """Wait for every process of the launch (a no-op in one process)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def require_accelerate() -> None:
    """transformers' Trainer runs on accelerate; a launch (WORLD_SIZE > 1) asks for it explicitly."""
    try:
        import accelerate  # noqa: F401
    except ImportError:
        size = world().size
        why = f"this is a {size}-process launch (WORLD_SIZE={size})" if size > 1 else "training a Hugging Face base"
        raise PwdError(f"{why}, which needs accelerate, and it is not installed",
                       hint="pip install 'pwd-git[train]' (it includes accelerate)") from None


def check(settings: TrainSettings, cuda: bool) -> None:
    """Settings this machine cannot train, refused before anything is loaded."""
    from pwd_git.model.base import check_quantization

    require_accelerate()
    if settings.quantization is not None and not settings.lora:
        raise PwdError("model.quantization (QLoRA) trains LoRA adapters on a frozen quantized base, so it needs LoRA",
                       location="pwd.yaml", hint="remove `model.lora: false` or model.quantization")
    check_quantization(settings.quantization)
    if settings.precision == "fp16" and not cuda:
        raise PwdError("train.precision: fp16 needs a CUDA GPU, and this machine has none", location="pwd.yaml",
                       hint="use bf16 or fp32 on a CPU")


class _Collator:
    """The Trainer's data collator: train/loop.py's `pad_batch` over its dict rows."""

    def __init__(self, pad_id: int) -> None:
        self.pad_id = pad_id

    def __call__(self, rows: list[dict]) -> dict:
        input_ids, labels, mask = pad_batch([(r["input_ids"], r["labels"]) for r in rows], self.pad_id)
        return {"input_ids": input_ids, "labels": labels, "attention_mask": mask}


def _callback(total_hint: int, lr: float, on_step: Callable[[int, int, float], None] | None):
    from transformers import TrainerCallback

    class Progress(TrainerCallback):
        """Progress for the CLI and the divergence check: a diverged model is never saved."""

        loss = float("nan")

        def on_log(self, args, state, control, logs=None, **kwargs):
            logs = logs or {}
            for name, what in (("loss", "the loss"), ("grad_norm", "the gradient norm")):
                value = logs.get(name)
                if value is not None and not math.isfinite(float(value)):
                    raise _diverged(f"{what} is {value}", state.global_step, state.max_steps or total_hint, lr)
            if "loss" in logs:
                self.loss = float(logs["loss"])

        def on_step_end(self, args, state, control, **kwargs):
            if on_step:
                on_step(state.global_step, state.max_steps or total_hint, self.loss)

    return Progress()


def last_checkpoint(run_dir: Path) -> str | None:
    """The newest complete checkpoint in `run_dir`: the Trainer writes trainer_state.json after the
    weights, optimizer and RNG states, so a checkpoint an interruption cut short has none (or a torn one)."""
    steps = []
    for path in run_dir.glob("checkpoint-*"):
        step = path.name.removeprefix("checkpoint-")
        if step.isdigit():
            steps.append((int(step), path))
    for _step, path in sorted(steps, reverse=True):
        try:
            json.loads((path / "trainer_state.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        return str(path)
    return None


def _checkpointing_args(enabled: bool) -> dict:
    """TrainingArguments' gradient checkpointing, under the name this transformers uses
    (`activation_checkpointing` since 5.x; `gradient_checkpointing` before)."""
    from transformers import TrainingArguments

    name = "activation_checkpointing" if "activation_checkpointing" in TrainingArguments.__dataclass_fields__ \
        else "gradient_checkpointing"
    return {name: enabled, f"{name}_kwargs": {"use_reentrant": False} if enabled else None}


def fit(model, tokenizer, rendering: Rendering, records: list[dict], settings: TrainSettings, run_dir: Path,
        out: Path | None, *, cuda: bool, on_step: Callable[[int, int, float], None] | None = None,
        log: Callable[[str], None] = lambda _m: None) -> TrainStats:
    """Train `model` on `records` with the Trainer; checkpoints go to `run_dir` (resumed from when
    an earlier run of the same model key was interrupted). The main process saves the model to
    `out`; every process of a launch calls this, the others with `out` None."""
    from transformers import PrinterCallback, Trainer, TrainingArguments

    rows = [dict(zip(("input_ids", "labels"), rendering.train_example(r, settings.max_length), strict=True))
            for r in records]
    if not rows:
        raise ValueError("no training records")
    size = world().size
    per_epoch = math.ceil(math.ceil(len(rows) / (settings.batch_size * size)) / settings.gradient_accumulation_steps)
    total = per_epoch * settings.epochs
    if settings.gradient_checkpointing and settings.lora:
        model.enable_input_require_grads()  # checkpointed blocks of a frozen base still pass gradients to LoRA
    args = TrainingArguments(
        output_dir=str(run_dir), per_device_train_batch_size=settings.batch_size,
        gradient_accumulation_steps=settings.gradient_accumulation_steps, num_train_epochs=settings.epochs,
        learning_rate=settings.lr, lr_scheduler_type="linear", warmup_steps=max(1, int(total * 0.05)),
        weight_decay=0.0, max_grad_norm=1.0, optim="adamw_torch", seed=settings.seed, data_seed=settings.seed,
        bf16=settings.precision == "bf16", fp16=settings.precision == "fp16", use_cpu=not cuda,
        **_checkpointing_args(settings.gradient_checkpointing),
        logging_strategy="steps", logging_steps=1, logging_nan_inf_filter=False, report_to="none", disable_tqdm=True,
        save_strategy="steps" if settings.checkpoint_steps else "no", save_steps=settings.checkpoint_steps or 500,
        save_total_limit=1, dataloader_num_workers=0, remove_unused_columns=False,
        ddp_find_unused_parameters=False if size > 1 else None)
    progress = _callback(total, settings.lr, on_step)
    trainer = Trainer(model=model, args=args, train_dataset=rows, data_collator=_Collator(tokenizer.pad_token_id),
                      callbacks=[progress])
    trainer.remove_callback(PrinterCallback)  # it prints every log line to stdout, which is ours (--format json)
    last = last_checkpoint(run_dir) if settings.resume else None
    if last:
        log(f"resuming the interrupted training from {last} (train.resume: false starts over)")
    elif world().is_main:  # starting over: no stale checkpoint or final/ of an earlier try may be mixed in
        shutil.rmtree(run_dir, ignore_errors=True)
    result = trainer.train(resume_from_checkpoint=last)
    final = run_dir / FINAL
    trainer.save_model(str(final))  # every process: FSDP and DeepSpeed gather the weights; the main one writes
    barrier()
    if out is not None:
        for path in final.iterdir():
            if path.name != "training_args.bin":  # a pickle of the arguments: not part of the model
                shutil.move(str(path), out / path.name)
    model.eval()
    return TrainStats(result.global_step, settings.epochs, progress.loss, len(rows))
