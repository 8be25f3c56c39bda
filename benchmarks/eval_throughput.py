"""Scoring throughput: the tool's prefix-shared batched scoring vs lm-evaluation-harness's
loglikelihood scoring vs one choice at a time, on the same models and items in the same run.

    python benchmarks/eval_throughput.py [--items 408] [--batch 64] [--repeat 3] [--models gpt2,llama,tiny] [--threads 1]

Builds the seeded geography (benchmarks/domains.py; 408 benchmark items of 4 choices), fits
the tiny model's tokenizer to its training text, and scores the benchmark with random-weight
models built from config (GPT-2 and Llama shapes with their real vocabulary sizes, so the
language-model head costs what it costs) and the untrained tiny model:

  one at a time   `loglik_one_by_one`: one forward of question + choice per choice
  lm-eval         lm_eval's HFLM.loglikelihood (0.4.x), the (question, " " + choice) requests
  pwd-git         `loglik_batched` (what `git pwd test` runs): question once, choices batched

Every method must pick the same answer for every item (asserted). Targets (CPU): pwd-git
>= 5x one at a time and >= 1.5x lm-eval's items/s.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from domains import write_geography  # noqa: E402

from pwd_git.evaluate.score import encode_items, loglik_batched, loglik_one_by_one  # noqa: E402
from pwd_git.model import quiet_transformers  # noqa: E402
from pwd_git.model.text import rendering as text_rendering  # noqa: E402
from pwd_git.model.text import turns_of  # noqa: E402
from pwd_git.model.tiny import build_model, train_tokenizer  # noqa: E402


def models(names: list[str], tokenizer) -> dict:
    """Random-weight causal LMs from config (seeded), as a user's small HF base would be."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

    out = {}
    for name in names:
        torch.manual_seed(0)
        if name == "gpt2":  # GPT-2's vocabulary, a narrower and shallower body
            config = GPT2Config(vocab_size=50257, n_positions=512, n_embd=256, n_layer=4, n_head=4,
                                bos_token_id=tokenizer.eos_token_id, eos_token_id=tokenizer.eos_token_id)
            out[name] = GPT2LMHeadModel(config)
        elif name == "llama":  # Llama-2's vocabulary, grouped-query attention
            config = LlamaConfig(vocab_size=32000, hidden_size=256, intermediate_size=688, num_hidden_layers=4,
                                 num_attention_heads=8, num_key_value_heads=2, max_position_embeddings=512,
                                 bos_token_id=tokenizer.eos_token_id, eos_token_id=tokenizer.eos_token_id)
            out[name] = LlamaForCausalLM(config)
        elif name == "tiny":
            out[name] = build_model(tokenizer, {"n_positions": 512})
        else:
            raise SystemExit(f"unknown model {name!r} (gpt2, llama, tiny)")
        out[name].eval()
    return out


def lm_eval_loglik(model, tokenizer, items: list[dict], batch: int) -> list[float]:
    from lm_eval.api.instance import Instance
    from lm_eval.models.huggingface import HFLM

    lm = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=batch, device="cpu", max_length=512)
    requests = [Instance(request_type="loglikelihood", doc=item, arguments=(item["question"], " " + choice), idx=j)
                for item in items for j, choice in enumerate(item["choices"])]
    return [ll for ll, _greedy in lm.loglikelihood(requests, disable_tqdm=True)]


def answers(items: list[dict], lls: list[float]) -> list[int]:
    out, it = [], iter(lls)
    for item in items:
        ll = [next(it) for _ in item["choices"]]
        out.append(max(range(len(ll)), key=ll.__getitem__))
    return out


def timed(fn, repeat: int) -> tuple[float, list[float]]:
    best, result = float("inf"), []
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=408)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=3, help="best of N for lm-eval and pwd-git (one at a time: once)")
    parser.add_argument("--models", default="gpt2,llama,tiny")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: comparable on a shared machine)")
    args = parser.parse_args()
    quiet_transformers()
    import torch

    torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory(prefix="pwd-eval-") as tmp:
        root = Path(tmp) / "geography"
        subprocess.run(["git", "init", "-q", str(root)], check=True)
        write_geography(root, 0)
        subprocess.run([sys.executable, "-m", "pwd_git", "build", "-q"], cwd=root, check=True, capture_output=True,
                       env={**os.environ, "PWD_GIT_CACHE": str(Path(tmp) / "cache")})
        from pwd_git.kb.loader import Domain
        from pwd_git.train.pipeline import shards_for

        shards = shards_for(Domain.find(root), None)
        items = shards.records("bench")[: args.items]
        tokenizer = train_tokenizer((t for r in shards.records("train") for t in turns_of(r)), 1024)
    requests = [req for reqs in encode_items(text_rendering(tokenizer, tiny=True), items, 512) for req in reqs]
    print(f"{len(items)} items, {len(requests)} choices, batch {args.batch}, CPU, {torch.get_num_threads()} threads")
    print(f"{'model':6} {'scoring':14} {'seconds':>8} {'items/s':>8} {'x one-at-a-time':>16} {'x lm-eval':>10}")
    for name, model in models(args.models.split(","), tokenizer).items():
        one_s, one = timed(lambda m=model: loglik_one_by_one(m, requests), 1)
        lme_s, lme = timed(lambda m=model: lm_eval_loglik(m, tokenizer, items, args.batch), args.repeat)
        ours_s, ours = timed(lambda m=model: loglik_batched(m, requests, batch_size=args.batch,
                                                            pad_id=tokenizer.pad_token_id), args.repeat)
        same = answers(items, one) == answers(items, lme) == answers(items, ours)
        assert same, f"{name}: the scorers disagree on some answer"
        worst = max(abs(a - b) for a, b in zip(one, ours, strict=True))
        for label, secs in (("one at a time", one_s), ("lm-eval", lme_s), ("pwd-git", ours_s)):
            print(f"{name:6} {label:14} {secs:>8.2f} {len(items) / secs:>8.1f} {one_s / secs:>15.1f}x "
                  f"{lme_s / secs:>9.2f}x")
        print(f"{name:6} same answers for all {len(items)} items; max |LL(pwd-git) - LL(one at a time)| = {worst:.1e}")


if __name__ == "__main__":
    main()
