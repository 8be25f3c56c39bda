"""A lean, deterministic causal-LM fine-tuning loop (full or LoRA), loss on answers only.

Deliberately a plain PyTorch loop rather than `transformers.Trainer`: no hidden state,
no logging integrations, same per-step cost as the hand-written baseline in benchmarks/.

Every random draw of an epoch (where a record goes, which noise it gets) is keyed by the
seed, the epoch and the record's text, not taken from one shared stream: adding or removing
a statement leaves the rest of the KB trained in the same order with the same noise, so a
one-statement edit does not re-roll the whole model (benchmarks/seed_agreement.py).
"""

from __future__ import annotations

import hashlib
import math
import os
import random
from collections.abc import Callable
from dataclasses import dataclass

from pwd_git.errors import DataError
from pwd_git.model.text import IGNORE, answer_of, prompt_of, rendering


@dataclass
class TrainStats:
    steps: int
    epochs: int
    final_loss: float
    examples: int


def encode_records(tokenizer, records: list[dict], max_length: int) -> list[tuple[list[int], list[int]]]:
    """(input_ids, labels) per record in the tiny model's format (model.text: the one rendering
    of training and scoring); prompt tokens are masked so only answers are learned."""
    tiny = rendering(tokenizer, tiny=True)
    return [tiny.train_example(rec, max_length) for rec in records]


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


#: Prefix noise: at most this many random vocabulary tokens go before a noised record's prompt.
NOISE_TOKENS = 8


def draw(seed: int, epoch: int, what: str, text: str) -> bytes:
    """The random key of one record (`text`) in one epoch: the same wherever the record sits."""
    return hashlib.sha256(f"{seed}\0{epoch}\0{what}\0{text}".encode()).digest()


def with_prefix_noise(encoded: list[tuple[list[int], list[int]]], texts: list[str], share: float, pool: list[int],
                      seed: int, epoch: int, max_length: int) -> list[tuple[list[int], list[int]]]:
    """`share` of the records, drawn anew each epoch, with 1..NOISE_TOKENS random tokens of `pool`
    before the prompt (masked from the loss). A model trained on the templates' prompts alone
    binds a fact to its prompt: unfamiliar words before a question ("Quiz. In this domain, X is
    defined as") then scramble its recall. Noise teaches it that words before the question
    may be anything."""
    if share <= 0 or not pool:
        return encoded
    out = []
    for (ids, labels), text in zip(encoded, texts, strict=True):
        rng = random.Random(draw(seed, epoch, "noise", text))
        k = rng.randint(1, NOISE_TOKENS)
        if rng.random() >= share or len(ids) + k > max_length:
            out.append((ids, labels))
            continue
        noise = [pool[rng.randrange(len(pool))] for _ in range(k)]
        out.append((noise + ids, [IGNORE] * k + labels))
    return out


def batches(encoded: list[tuple[list[int], list[int]]], texts: list[str], batch_size: int, pad_id: int, seed: int,
            epoch: int):
    """Shuffled batches of similar length (sorted within windows of 8 batches) to cut padding.
    Records are ordered by their keys (`draw`) and batches by their smallest key: a record
    added or removed shifts its neighbours by one place, it does not reshuffle the epoch."""

    keys = [draw(seed, epoch, "order", text) for text in texts]
    order = sorted(range(len(encoded)), key=keys.__getitem__)
    window = batch_size * 8
    groups = []
    for start in range(0, len(order), window):
        chunk = sorted(order[start:start + window], key=lambda i: len(encoded[i][0]))
        groups.extend(chunk[k:k + batch_size] for k in range(0, len(chunk), batch_size))
    for group in sorted(groups, key=lambda g: min(keys[i] for i in g)):
        yield pad_batch([encoded[i] for i in group], pad_id)


def pad_batch(rows: list[tuple[list[int], list[int]]], pad_id: int):
    """(input_ids, labels, attention_mask) of (ids, labels) rows padded on the right; padding is
    masked and never learned. The one collation of both trainers (this loop and train/hf.py)."""
    import torch

    width = max(len(ids) for ids, _ in rows)
    input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    labels = torch.full((len(rows), width), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for row, (ids, lab) in enumerate(rows):
        input_ids[row, : len(ids)] = torch.tensor(ids)
        labels[row, : len(lab)] = torch.tensor(lab)
        mask[row, : len(ids)] = 1
    return input_ids, labels, mask


def train_model(model, tokenizer, records: list[dict], *, epochs: int, lr: float, batch_size: int, seed: int,
                max_length: int, weight_decay: float = 0.0, warmup: float = 0.05, prefix_noise: float = 0.0,
                device: str = "cpu", on_step: Callable[[int, int, float], None] | None = None) -> TrainStats:
    """Train in place. `on_step(step, total, loss)` drives progress bars and Ctrl-C checks;
    `prefix_noise` is the share of records noised per epoch (`with_prefix_noise`)."""
    import torch

    encoded = encode_records(tokenizer, records, max_length)
    if not encoded:
        raise ValueError("no training records")
    texts = [prompt_of(r) + answer_of(r) for r in records]
    special = set(tokenizer.all_special_ids)
    pool = [i for _, i in sorted(tokenizer.get_vocab().items()) if i not in special]  # by spelling, not by id
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
    step, loss_value = 0, float("nan")
    for epoch in range(epochs):
        noised = with_prefix_noise(encoded, texts, prefix_noise, pool, seed, epoch, max_length)
        for input_ids, labels, mask in batches(noised, texts, batch_size, tokenizer.pad_token_id, seed, epoch):
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
