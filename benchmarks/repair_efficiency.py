"""Targeted repair vs undirected data, the paper's "1K targeted beats 10K random" in miniature.

On the example domain with some nodes starved (build.holdout), a model is trained and
tested; then two repairs are compared, each retrained from scratch with the same config:

  targeted  the N examples `git pwd patch` writes from the diagnosis
  random    10 x N examples written the same way for KB nodes drawn uniformly at random

For several seeds we report items fixed (failed before, pass after) and items broken.

    python benchmarks/repair_efficiency.py [--seeds 0,1,2] [--epochs 12] [--starve 6]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pwd_git.kb.loader import Domain, load_worktree  # noqa: E402
from pwd_git.repair.diagnose import diagnose  # noqa: E402
from pwd_git.repair.examples import ExampleWriter  # noqa: E402
from pwd_git.repair.patch import _PlainDumper  # noqa: E402

ENV = {**os.environ, "GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "b@e.x", "GIT_COMMITTER_NAME": "bench",
       "GIT_COMMITTER_EMAIL": "b@e.x"}


def sh(*args: str, cwd: Path, check: bool = True) -> str:
    proc = subprocess.run(args, cwd=cwd, env=ENV, capture_output=True, text=True)
    if check and proc.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(args)} failed:\n{proc.stderr}")
    return proc.stdout


def passing(root: Path) -> dict[str, bool]:
    entry = json.loads(sh("git", "pwd", "test", "-q", "--format", "json", "--no-record", cwd=root))
    bench = [json.loads(line) for f in sorted((root / "shards" / "bench").glob("*.jsonl"))
             for line in f.read_text().splitlines()]
    failed = set(entry["failed"])
    return {i["id"]: i["id"] not in failed for i in bench}


def repaired(root: Path, examples: list[dict], name: str) -> dict[str, bool]:
    (root / "patches").mkdir(exist_ok=True)
    for old in (root / "patches").glob("*.yaml"):
        old.unlink()
    if examples:
        doc = {"description": name, "examples": examples}
        (root / "patches" / f"{name}.yaml").write_text(yaml.dump(doc, Dumper=_PlainDumper, sort_keys=False))
    sh("git", "pwd", "build", "-q", cwd=root)
    sh("git", "add", "-A", cwd=root)
    sh("git", "commit", "-qm", name, "--allow-empty", cwd=root)
    return passing(root)


def run_seed(seed: int, epochs: int, starve: int, work: Path) -> dict:
    root = work / f"seed{seed}"
    sh("git", "pwd", "init", "-t", "example", str(root), cwd=work)
    config = (root / "pwd.yaml").read_text()
    kb, _ = load_worktree(Domain.find(root))
    rng = random.Random(seed)
    tested = {s for c in kb.chains.values() if c.split == "test" for s in c.steps}
    holdout = rng.sample(sorted(tested), starve)
    config = config.replace("build:\n", f"build:\n  holdout: {json.dumps(holdout)}\n", 1)
    config = config.replace("train: {}", f"train: {{epochs: {epochs}, seed: {seed}}}")
    (root / "pwd.yaml").write_text(config)
    sh("git", "pwd", "build", "-q", cwd=root)
    sh("git", "add", "-A", cwd=root)
    sh("git", "commit", "-qm", "starved", cwd=root)
    start = time.perf_counter()
    before = passing(root)
    sh("git", "pwd", "test", "-q", cwd=root)  # record the note diagnose reads
    domain = Domain.find(root)
    findings = diagnose(domain, "HEAD").findings
    writer = ExampleWriter(kb)
    targeted = [ex for f in findings for ex in writer.for_finding(f)[0]]
    pool = [("concept", c) for c in kb.concepts] + [("statement", s) for s in kb.statements]
    undirected: list[dict] = []
    while len(undirected) < 10 * len(targeted):
        kind, node = rng.choice(pool)
        made = writer.concept_examples(node) if kind == "concept" else writer.statement_examples(node)
        undirected.extend(made)
    undirected = undirected[: 10 * len(targeted)]
    rows = {}
    for name, examples in (("targeted", targeted), ("random-10x", undirected)):
        after = repaired(root, examples, name)
        rows[name] = {"examples": len(examples),
                      "fixed": sum(1 for k, ok in after.items() if ok and not before.get(k, True)),
                      "broken": sum(1 for k, ok in after.items() if not ok and before.get(k, False)),
                      "failed_before": sum(1 for ok in before.values() if not ok)}
    rows["seconds"] = round(time.perf_counter() - start, 1)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--epochs", type=int, default=0, help="0 = the domain's default")
    parser.add_argument("--starve", type=int, default=6, help="statements of test chains to hold out")
    args = parser.parse_args()
    results = {}
    with tempfile.TemporaryDirectory(prefix="pwd-repair-") as tmp:
        os.environ.setdefault("PWD_GIT_CACHE", str(Path(tmp) / "cache"))
        ENV["PWD_GIT_CACHE"] = os.environ["PWD_GIT_CACHE"]
        for seed in (int(s) for s in args.seeds.split(",")):
            results[seed] = run_seed(seed, args.epochs, args.starve, Path(tmp))
            print(f"seed {seed}: {json.dumps(results[seed])}", file=sys.stderr)
    print(f"{'seed':>4}  {'repair':10} {'examples':>8} {'failed before':>13} {'fixed':>6} {'broken':>6}")
    totals: dict[str, list[int]] = {}
    for seed, rows in results.items():
        for name in ("targeted", "random-10x"):
            r = rows[name]
            print(f"{seed:>4}  {name:10} {r['examples']:>8} {r['failed_before']:>13} {r['fixed']:>6} {r['broken']:>6}")
            t = totals.setdefault(name, [0, 0, 0])
            t[0] += r["examples"]
            t[1] += r["fixed"]
            t[2] += r["broken"]
    for name, (n, fixed, broken) in totals.items():
        print(f"{'all':>4}  {name:10} {n:>8} {'':>13} {fixed:>6} {broken:>6}")
    t, r = totals["targeted"], totals["random-10x"]
    print(f"\nfixed per 100 examples: targeted {100 * t[1] / max(1, t[0]):.1f}, random {100 * r[1] / max(1, r[0]):.1f}")


if __name__ == "__main__":
    main()
