"""Can the benchmark be answered without the question? A choice-prior baseline per template.

    python benchmarks/benchmark_bias.py [--domains example,geography] [--build-seeds 0,1,...]

A multiple-choice item is a fair test when no choice wins on its own. For each domain (the
example KB, and the generated geography of benchmarks/domains.py) this builds the shards and
scores every benchmark item with two question-blind baselines fitted to the training text:

  unigram   the choice with the highest summed log unigram probability (add-one smoothing) of its
            words: what a model that learned only word frequencies picks (long choices lose)
  frequent  the choice whose words are the most frequent on average: a length-free frequency prior

Chance is 0.25 (four choices). A level well above chance under either baseline rewards a model
for frequency, not knowledge, and flips with whatever shifts a model's word priors (a patch, a
seed). Prints one table row per (level, template). `--build-seeds` builds the benchmark once per
`build.seed` (which draws the distractors and the choice order) and pools the items: the example
domain has 13 two-hop items, so one build says little about its L3 prior.
"""

from __future__ import annotations

import argparse
import math
import re
import subprocess
import sys
import tempfile
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import yaml  # noqa: E402
from domains import write_geography  # noqa: E402

from pwd_git.kb.loader import Domain  # noqa: E402
from pwd_git.model.text import turns_of  # noqa: E402
from pwd_git.train.pipeline import shards_for  # noqa: E402

WORD = re.compile(r"\w+")


def words(text: str) -> list[str]:
    return WORD.findall(text.lower())


def pwd(root: Path, *args: str) -> None:
    subprocess.run([sys.executable, "-m", "pwd_git", "-C", str(root), *args], check=True, capture_output=True)


def domain_root(name: str, work: Path) -> Path:
    root = work / name
    if name == "example":
        pwd(work, "init", "-t", "example", str(root))
    else:
        pwd(work, "init", str(root))
        write_geography(root, 0)
    return root


def build(root: Path, seed: int) -> list[dict]:
    """The benchmark items of a build with `build.seed: seed` (pwd.yaml edited in place)."""
    config = yaml.safe_load((root / "pwd.yaml").read_text())
    config["build"] = {**(config.get("build") or {}), "seed": seed}
    (root / "pwd.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    pwd(root, "build", "-q")
    return shards_for(Domain.find(root), None).records("bench")


def rows(root: Path, seeds: list[int]) -> list[tuple[str, str, int, float, float]]:
    items = [item for seed in seeds for item in build(root, seed)]
    shards = shards_for(Domain.find(root), None)  # the last build's: build.seed changes only l2.false's wrong object
    counts = Counter(w for record in shards.records("train") for turn in turns_of(record) for w in words(turn))
    total, vocab = sum(counts.values()), len(counts) + 1

    def unigram(choice: str) -> float:
        return sum(math.log((counts[w] + 1) / (total + vocab)) for w in words(choice))

    def frequent(choice: str) -> float:
        found = words(choice)
        return sum(math.log(counts[w] + 1) for w in found) / max(1, len(found))

    hits: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0, 0])
    for item in items:
        tally = hits[(item["level"], item["template"])]
        tally[0] += 1
        for k, score in ((1, unigram), (2, frequent)):
            scores = [score(c) for c in item["choices"]]
            tally[k] += scores.index(max(scores)) == item["answer"]
    return [(level, template, n, u / n, f / n) for (level, template), (n, u, f) in sorted(hits.items())]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--domains", default="example,geography")
    parser.add_argument("--build-seeds", default="0", help="comma-separated build.seed values whose items are pooled")
    args = parser.parse_args()
    seeds = [int(s) for s in args.build_seeds.split(",")]
    print("| domain | level | template | items | unigram prior acc | frequent-words prior acc | chance |")
    print("|---|---|---|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory(prefix="pwd-bias-") as tmp:
        for name in args.domains.split(","):
            for level, template, n, uni, freq in rows(domain_root(name, Path(tmp)), seeds):
                print(f"| {name} | {level} | {template} | {n} | {uni:.2f} | {freq:.2f} | 0.25 |")


if __name__ == "__main__":
    main()
