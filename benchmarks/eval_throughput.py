"""Batched log-likelihood scoring vs scoring one item at a time, same model, same run.

    python benchmarks/eval_throughput.py [--repeat 3] [--batch 64]

Builds the example domain, trains (or reuses) its tiny model, then scores the benchmark
with `score_items(batch_size=B)` and with `batch_size=1`; prints items/s and the ratio.
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

from pwd_git.evaluate.score import score_items  # noqa: E402
from pwd_git.kb.loader import Domain  # noqa: E402
from pwd_git.train.pipeline import load_model, shards_for, train  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--batch", type=int, default=64)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="pwd-eval-") as tmp:
        os.environ.setdefault("PWD_GIT_CACHE", str(Path(tmp) / "cache"))
        root = Path(tmp) / "cell-biology"
        subprocess.run(["git-pwd", "init", "-t", "example", str(root)], check=True, capture_output=True)
        subprocess.run(["git-pwd", "build", "-q"], cwd=root, check=True, capture_output=True)
        domain = Domain.find(root)
        trained = train(domain)
        model, tokenizer = load_model(trained.path, trained.meta, domain)
        items = shards_for(domain, None).records("bench")
        rows = []
        for name, batch in (("one at a time", 1), (f"batched ({args.batch})", args.batch)):
            best = float("inf")
            for _ in range(args.repeat):
                start = time.perf_counter()
                scores = score_items(model, tokenizer, items, batch_size=batch)
                best = min(best, time.perf_counter() - start)
            rows.append((name, len(items) / best, sum(s.correct for s in scores)))
        print(f"{len(items)} items, {sum(len(i['choices']) for i in items)} choices, tiny model, CPU")
        print(f"{'scoring':20} {'items/s':>9} {'correct':>8}")
        for name, rate, correct in rows:
            print(f"{name:20} {rate:>9.1f} {correct:>8}")
        print(f"batched / one-at-a-time: {rows[1][1] / rows[0][1]:.1f}x (same answers: {rows[0][2] == rows[1][2]})")


if __name__ == "__main__":
    main()
