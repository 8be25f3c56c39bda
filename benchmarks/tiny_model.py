"""How well and how fast the embedded tiny model learns the example domain, against the
GPT-2 block of the same size (the previous default) trained in the same run.

    python benchmarks/tiny_model.py [--seeds 0,1,2]

For each seed and architecture: train from scratch on the example domain's shards with the
default settings (20 epochs, batch 16, 1 thread), then score the benchmark. Also scores the
same facts in the training wording, to separate "not learned" from "not recalled when
asked differently". Prints wall seconds and accuracy per level, and the means.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pwd_git.evaluate.score import score_items  # noqa: E402
from pwd_git.kb.loader import Domain  # noqa: E402
from pwd_git.model import quiet_transformers  # noqa: E402
from pwd_git.model.settings import train_settings  # noqa: E402
from pwd_git.model.text import turns_of  # noqa: E402
from pwd_git.model.tiny import DEFAULT_ARCH, build_model, train_tokenizer  # noqa: E402
from pwd_git.train.loop import set_determinism, train_model  # noqa: E402
from pwd_git.train.pipeline import shards_for  # noqa: E402

# The probes reworded into the training templates' wording (same facts, same choices).
TRAINING_WORDING = {
    "probe.l1.describe": (r"In this domain, (.+) is defined as$", "What is {0}?\n{0} is defined as"),
    "probe.l1.kind": (r"In this domain, (.+) is$", "What type of entity is {0}?\n{0} is"),
    "probe.l2.complete": (r"Complete the statement: (.+)$", "{0} what?\n{0}"),
}


def gpt2_baseline(tokenizer, arch: dict, seed: int):
    """The previous default: GPT-2 blocks (absolute positions) of the same size."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    config = GPT2Config(vocab_size=len(tokenizer), n_positions=arch["n_positions"], n_embd=arch["n_embd"],
                        n_layer=arch["n_layer"], n_head=arch["n_head"], bos_token_id=tokenizer.eos_token_id,
                        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
                        resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
    torch.manual_seed(seed)
    return GPT2LMHeadModel(config)


def reworded(items: list[dict]) -> list[dict]:
    out = []
    for item in items:
        rule = TRAINING_WORDING.get(item["template"])
        if rule and (m := re.search(rule[0], item["question"])):
            out.append({**item, "question": rule[1].format(m.group(1))})
    return out


def accuracy(items: list[dict], scores) -> dict[str, float]:
    by: dict[str, list[bool]] = {}
    for item, score in zip(items, scores, strict=True):
        by.setdefault(item["level"], []).append(score.correct)
    return {k: sum(v) / len(v) for k, v in sorted(by.items())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", default="0,1,2")
    args = parser.parse_args()
    quiet_transformers()
    with tempfile.TemporaryDirectory(prefix="pwd-tiny-") as tmp:
        root = Path(tmp) / "cell-biology"
        subprocess.run(["git-pwd", "init", "-t", "example", str(root)], check=True, capture_output=True)
        subprocess.run(["git-pwd", "build", "-q"], cwd=root, check=True, capture_output=True)
        shards = shards_for(Domain.find(root), None)
        records, items = shards.records("train"), shards.records("bench")
        settings = train_settings(shards.config, root).for_records(len(records))
        arch = {**DEFAULT_ARCH, **settings.arch}
        rows = []
        for seed in (int(s) for s in args.seeds.split(",")):
            for name in ("gpt2 (baseline)", "tiny (default)"):
                set_determinism(seed, settings.threads)
                tokenizer = train_tokenizer((t for r in records for t in turns_of(r)), arch["vocab_size"])
                model = gpt2_baseline(tokenizer, arch, seed) if name.startswith("gpt2") else \
                    build_model(tokenizer, arch, seed)
                start = time.perf_counter()
                train_model(model, tokenizer, records, epochs=settings.epochs, lr=settings.lr,
                            batch_size=settings.batch_size, seed=seed, max_length=settings.max_length)
                seconds = time.perf_counter() - start
                probe = accuracy(items, score_items(model, tokenizer, items))
                train_words = reworded(items)
                recall = accuracy(train_words, score_items(model, tokenizer, train_words))
                rows.append((seed, name, seconds, probe, recall))
                print(f"seed {seed} {name}: {seconds:.1f} s {probe} (training wording {recall})", file=sys.stderr)
    print(f"example domain: {len(records)} training records, {len(items)} benchmark items, "
          f"{os.cpu_count()} CPUs, {settings.threads} thread(s)")
    print(f"{'seed':>4}  {'model':16} {'train s':>8} {'L1':>5} {'L2':>5} {'L3':>5}   {'L1*':>5} {'L2*':>5}")
    for seed, name, seconds, probe, recall in rows:
        print(f"{seed:>4}  {name:16} {seconds:>8.1f} {probe['L1']:>5.2f} {probe['L2']:>5.2f} {probe['L3']:>5.2f}"
              f"   {recall['L1']:>5.2f} {recall['L2']:>5.2f}")
    for name in ("gpt2 (baseline)", "tiny (default)"):
        mine = [r for r in rows if r[1] == name]
        mean = {k: sum(r[3][k] for r in mine) / len(mine) for k in ("L1", "L2", "L3")}
        rec = {k: sum(r[4][k] for r in mine) / len(mine) for k in ("L1", "L2")}
        print(f"{'mean':>4}  {name:16} {sum(r[2] for r in mine) / len(mine):>8.1f} {mean['L1']:>5.2f} "
              f"{mean['L2']:>5.2f} {mean['L3']:>5.2f}   {rec['L1']:>5.2f} {rec['L2']:>5.2f}")
    print("L1*, L2*: the same probes asked in the training wording (recall vs memorisation). Chance: 0.25.")


if __name__ == "__main__":
    main()
