"""A lean, deterministic causal-LM fine-tuning loop (full or LoRA), loss on answers only.

Deliberately a plain PyTorch loop rather than `transformers.Trainer`: no hidden state,
no logging integrations, same per-step cost as the hand-written baseline in benchmarks/.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass

from pwd_git.errors import DataError
from pwd_git.model.text import answer_of, prompt_of

IGNORE = -100


@dataclass
class TrainStats:
    steps: int
    epochs: int
    final_loss: float
    examples: int


def encode_records(tokenizer, records: list[dict], max_length: int) -> list[tuple[list[int], list[int]]]:
    """(input_ids, labels) per record; prompt tokens are masked so only answers are learned
    (a true/false prompt states a wrong fact: the model must not learn it as text)."""
    out = []
    eos = tokenizer.eos_token_id
    for rec in records:
        prompt = tokenizer(prompt_of(rec), add_special_tokens=False)["input_ids"]
        answer = tokenizer(answer_of(rec), add_special_tokens=False)["input_ids"] + [eos]
        ids = (prompt + answer)[:max_length]
        labels = ([IGNORE] * len(prompt) + answer)[:max_length]
        out.append((ids, labels))
    return out


def set_determinism(seed: int, threads: int | None) -> None:
    import random

    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if threads:
        torch.set_num_threads(threads)
    if torch.cuda.is_available():  # CPU kernels are deterministic at a fixed thread count already
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)


def batches(encoded: list[tuple[list[int], list[int]]], batch_size: int, pad_id: int, generator):
    """Shuffled batches of similar length (sorted within windows of 8 batches) to cut padding."""
    import torch

    order = torch.randperm(len(encoded), generator=generator).tolist()
    window = batch_size * 8
    groups = []
    for start in range(0, len(order), window):
        chunk = sorted(order[start:start + window], key=lambda i: len(encoded[i][0]))
        groups.extend(chunk[k:k + batch_size] for k in range(0, len(chunk), batch_size))
    for g in torch.randperm(len(groups), generator=generator).tolist():
        chunk = [encoded[i] for i in groups[g]]
        width = max(len(ids) for ids, _ in chunk)
        input_ids = torch.full((len(chunk), width), pad_id, dtype=torch.long)
        labels = torch.full((len(chunk), width), IGNORE, dtype=torch.long)
        mask = torch.zeros((len(chunk), width), dtype=torch.long)
        for row, (ids, lab) in enumerate(chunk):
            input_ids[row, : len(ids)] = torch.tensor(ids)
            labels[row, : len(lab)] = torch.tensor(lab)
            mask[row, : len(ids)] = 1
        yield input_ids, labels, mask


def train_model(model, tokenizer, records: list[dict], *, epochs: int, lr: float, batch_size: int, seed: int,
                max_length: int, weight_decay: float = 0.0, warmup: float = 0.05, device: str = "cpu",
                on_step: Callable[[int, int, float], None] | None = None) -> TrainStats:
    """Train in place. `on_step(step, total, loss)` drives progress bars and Ctrl-C checks."""
    import torch

    encoded = encode_records(tokenizer, records, max_length)
    if not encoded:
        raise ValueError("no training records")
    model.to(device)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    per_epoch = math.ceil(len(encoded) / batch_size)
    total = per_epoch * epochs
    warm = max(1, int(total * warmup))
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min(1.0, (s + 1) / warm) * max(0.0, (total - s) / max(1, total - warm)) if s >= warm
        else (s + 1) / warm)
    generator = torch.Generator().manual_seed(seed)
    step, loss_value = 0, float("nan")
    for _epoch in range(epochs):
        for input_ids, labels, mask in batches(encoded, batch_size, tokenizer.pad_token_id, generator):
            out = model(input_ids=input_ids.to(device), attention_mask=mask.to(device), labels=labels.to(device))
            out.loss.backward()
            norm = torch.nn.utils.clip_grad_norm_(params, 1.0)
            loss_value, norm_value = torch.stack([out.loss.detach().float(), norm.float()]).tolist()  # one sync
            step += 1
            if not math.isfinite(loss_value):
                raise _diverged(f"the loss is {loss_value}", step, total, lr)
            if not math.isfinite(norm_value):  # this step would turn the weights into NaN
                raise _diverged(f"the gradient norm is {norm_value}", step, total, lr)
            optimizer.step()
            schedule.step()
            optimizer.zero_grad(set_to_none=True)
            if on_step:
                on_step(step, total, loss_value)
    model.eval()
    return TrainStats(step, epochs, loss_value, len(encoded))


def _diverged(what: str, step: int, total: int, lr: float) -> DataError:
    """A model that diverged must not be saved, cached or tested: its verdict would be noise."""
    return DataError(f"training diverged: {what} at step {step} of {total} (train.lr: {lr:g})", location="pwd.yaml",
                     hint="lower train.lr in pwd.yaml (or use the default by removing it); nothing was cached")
