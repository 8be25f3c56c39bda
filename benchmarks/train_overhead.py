"""Time per training step: `git pwd train`'s loop vs a plain transformers + peft loop.

    python benchmarks/train_overhead.py [--steps 60] [--lora]

Both loops train the same freshly built tiny model (or a LoRA-wrapped copy with --lora) on
the same example-domain records, same batch size, same optimizer and schedule. The
baseline is the textbook loop: tokenize each batch with the tokenizer's padding, forward
with labels, backward, AdamW step. Target: ours within 5% of the baseline.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from pwd_git.model.base import add_lora  # noqa: E402
from pwd_git.model.settings import LORA_DEFAULTS  # noqa: E402
from pwd_git.model.text import answer_of, prompt_of, turns_of  # noqa: E402
from pwd_git.model.tiny import build_model, train_tokenizer  # noqa: E402
from pwd_git.train.loop import train_model  # noqa: E402


def records() -> list[dict]:
    with tempfile.TemporaryDirectory(prefix="pwd-overhead-") as tmp:
        root = Path(tmp) / "d"
        subprocess.run(["git-pwd", "init", "-t", "example", str(root)], check=True, capture_output=True)
        subprocess.run(["git-pwd", "build", "-q"], cwd=root, check=True, capture_output=True)
        return [json.loads(line) for f in sorted((root / "shards/train").glob("*.jsonl"))
                for line in f.read_text().splitlines()]


def baseline_loop(model, tokenizer, recs: list[dict], steps: int, batch: int) -> float:
    """Plain loop; returns seconds per step (after 3 warm-up steps)."""
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=5e-3)
    model.train()
    texts = [prompt_of(r) + answer_of(r) + tokenizer.eos_token for r in recs]
    start = None
    for step in range(steps + 3):
        if step == 3:
            start = time.perf_counter()
        chunk = [texts[(step * batch + i) % len(texts)] for i in range(batch)]
        enc = tokenizer(chunk, return_tensors="pt", padding=True, truncation=True, max_length=160)
        labels = enc["input_ids"].masked_fill(enc["attention_mask"] == 0, -100)
        loss = model(**enc, labels=labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    return (time.perf_counter() - start) / steps


def ours(model, tokenizer, recs: list[dict], steps: int, batch: int) -> float:
    times = []
    subset = recs[: steps * batch + 3 * batch]
    train_model(model, tokenizer, subset, epochs=1, lr=5e-3, batch_size=batch, seed=0, max_length=160,
                on_step=lambda s, t, loss: times.append(time.perf_counter()))
    return (times[-1] - times[2]) / (len(times) - 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--lora", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    recs = records()
    tokenizer = train_tokenizer([t for r in recs for t in turns_of(r)], 1024)
    rows = []
    for name, fn in (("plain transformers loop", baseline_loop), ("git pwd train loop", ours)):
        model = build_model(tokenizer, {}, seed=0)
        if args.lora:
            model = add_lora(model, LORA_DEFAULTS)
        rows.append((name, fn(model, tokenizer, recs, args.steps, args.batch)))
    print(f"{'loop':26} {'s/step':>8}   ({args.steps} steps, batch {args.batch}, {'LoRA' if args.lora else 'full'})")
    for name, sec in rows:
        print(f"{name:26} {sec:>8.4f}")
    print(f"ours / baseline: {rows[1][1] / rows[0][1]:.3f}")


if __name__ == "__main__":
    main()
