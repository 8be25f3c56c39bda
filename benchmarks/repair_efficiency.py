"""Targeted repair vs undirected data, the paper's "1K targeted beats 10K random" in miniature.

On the example domain (or the generated geography, `--domain geography`: 306 concepts, 837
statements, where 10 x N random examples reach a tenth of the nodes instead of most of them)
with some nodes starved (`build.holdout`: statements of test chains and concepts they touch),
a model is trained from scratch and tested. Then two repairs
start from that same starved commit, each on its own branch:

  targeted    `git pwd patch`: the N examples written from the diagnosis
  random-10x  10 x N examples written the same way for KB nodes drawn uniformly at random

Both are trained the same way (`--mode continue`, the default: fine-tune the starved model on
the new examples plus replay of old records; `--mode scratch`: retrain from scratch) and
tested. For several seeds the table counts items fixed (failed on the starved commit, pass
after the repair) and items broken (passed, now fail), over all benchmark items and over
the probes of the starved nodes.

    python benchmarks/repair_efficiency.py [--seeds 0,1,2] [--starve 6] [--mode continue] [--repair-train JSON]
        [--include not-learned] [--domain example|geography]
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
sys.path.insert(0, str(ROOT / "benchmarks"))

from domains import write_geography  # noqa: E402

from pwd_git.kb.loader import Domain, load_worktree  # noqa: E402
from pwd_git.repair.examples import ExampleWriter  # noqa: E402
from pwd_git.repair.patch import PlainDumper, decontaminate, with_train_settings  # noqa: E402

ENV = {**os.environ, "GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "b@e.x", "GIT_COMMITTER_NAME": "bench",
       "GIT_COMMITTER_EMAIL": "b@e.x"}


def sh(*args: str, cwd: Path) -> str:
    proc = subprocess.run(args, cwd=cwd, env=ENV, capture_output=True, text=True)
    if proc.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(args)} failed:\n{proc.stderr}")
    return proc.stdout


def bench_items(root: Path) -> dict[str, dict]:
    return {i["id"]: i for f in sorted((root / "shards" / "bench").glob("*.jsonl"))
            for i in map(json.loads, f.read_text().splitlines())}


def edit_config(root: Path, **sections: dict) -> None:
    """Merge `sections` into pwd.yaml's sections (build, train, ...)."""
    config = yaml.safe_load((root / "pwd.yaml").read_text())
    for name, values in sections.items():
        config[name] = {**(config.get(name) or {}), **values}
    (root / "pwd.yaml").write_text(yaml.safe_dump(config, sort_keys=False, width=110))


def init_domain(root: Path, domain: str) -> None:
    """A new domain repo at `root`: the example KB, or the generated geography."""
    if domain == "example":
        sh("git", "pwd", "init", "-t", "example", str(root), cwd=root.parent)
    else:
        sh("git", "pwd", "init", str(root), cwd=root.parent)
        write_geography(root, 0)


def passing(root: Path) -> dict[str, bool]:
    """Train if needed, test, record the note (diagnose reads it); per-item pass/fail."""
    proc = subprocess.run(["git", "pwd", "test", "-q", "--format", "json"], cwd=root, env=ENV, capture_output=True,
                          text=True)
    if not proc.stdout.strip():
        raise SystemExit(f"git pwd test gave no result in {root} (exit {proc.returncode}):\n{proc.stderr}")
    failed = set(json.loads(proc.stdout)["failed"])
    return {k: k not in failed for k in bench_items(root)}


def commit_repair(root: Path, starved: str, name: str, examples: list[dict], train: dict) -> None:
    """A branch off the starved commit holding `examples` as a patch file, with `train` settings."""
    sh("git", "checkout", "-q", "-B", f"bench/{name}", starved, cwd=root)
    (root / "patches").mkdir(exist_ok=True)
    for part in range(0, len(examples), 500):  # a KB file may hold at most 1 MiB
        doc = {"description": name, "examples": examples[part:part + 500]}
        (root / "patches" / f"{name}-{part // 500}.yaml").write_text(yaml.dump(doc, Dumper=PlainDumper, sort_keys=False))
    (root / "pwd.yaml").write_bytes(with_train_settings(Domain.find(root), starved, train))
    sh("git", "pwd", "build", "-q", cwd=root)
    sh("git", "add", "-A", cwd=root)
    sh("git", "commit", "-qm", name, cwd=root)


def run_seed(seed: int, starve: int, train: dict, work: Path, include: list[str], domain: str) -> dict:
    root = work / f"seed{seed}"
    init_domain(root, domain)
    kb, _ = load_worktree(Domain.find(root))
    rng = random.Random(seed)
    tested = sorted({s for c in kb.chains.values() if c.split == "test" for s in c.steps})
    statements = rng.sample(tested, starve - starve // 3)
    concepts = rng.sample(sorted({kb.statements[s].subject for s in tested}), starve // 3)
    holdout = statements + concepts
    edit_config(root, build={"holdout": holdout}, train={"seed": seed})
    sh("git", "pwd", "build", "-q", cwd=root)
    sh("git", "add", "-A", cwd=root)
    sh("git", "commit", "-qm", "starved", cwd=root)
    starved = sh("git", "rev-parse", "HEAD", cwd=root).strip()
    items = bench_items(root)
    probes_of_starved = {k for k, i in items.items() if i["template"].startswith("probe.")
                         and set(holdout) & {*i["traces"]["statements"], *i["traces"]["concepts"][:1]}}
    before = passing(root)

    start = time.perf_counter()
    patch = json.loads(sh("git", "pwd", "patch", "--format", "json", *(a for k in include for a in ("--include", k)),
                          cwd=root))
    targeted = yaml.safe_load(sh("git", "show", f"{patch['branch']}:{patch['patch_file']}", cwd=root))["examples"]
    commit_repair(root, starved, "targeted", targeted, train)
    after = {"targeted": passing(root)}
    seconds = {"targeted": time.perf_counter() - start}

    start = time.perf_counter()
    writer = ExampleWriter(kb)
    pool = [("concept", c) for c in sorted(kb.concepts)] + [("statement", s) for s in sorted(kb.statements)]
    undirected: list[dict] = []
    while len(undirected) < 10 * len(targeted):
        kind, node = rng.choice(pool)
        undirected.extend(writer.concept_examples(node) if kind == "concept" else writer.statement_examples(node))
    # decontaminated as `patch` decontaminates its own examples (build would refuse a leak)
    undirected, _ = decontaminate(Domain.find(root), starved, undirected[: 10 * len(targeted)])
    commit_repair(root, starved, "random-10x", undirected, train)
    after["random-10x"] = passing(root)
    seconds["random-10x"] = time.perf_counter() - start

    rows = {}
    for name, now in after.items():
        fixed = {k for k, ok in now.items() if ok and not before.get(k, True)}
        broken = {k for k, ok in now.items() if not ok and before.get(k, False)}
        rows[name] = {"examples": len(targeted) if name == "targeted" else len(undirected),
                      "failed_before": sum(1 for ok in before.values() if not ok),
                      "fixed": len(fixed), "broken": len(broken),
                      "starved_failing": sum(1 for k in probes_of_starved if not before[k]),
                      "starved_fixed": len(fixed & probes_of_starved), "seconds": round(seconds[name], 1)}
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--include", action="append", default=[], choices=["not-learned"],
                        help="passed to `git pwd patch --include` (the targeted repair also covers not-learned nodes)")
    parser.add_argument("--domain", choices=("example", "geography"), default="example")
    parser.add_argument("--starve", type=int, default=6, help="nodes to hold out: 2/3 statements of test chains, "
                                                               "1/3 concepts they start from")
    parser.add_argument("--mode", choices=("continue", "scratch"), default="continue",
                        help="how a repair is trained (train.mode of the repair commit)")
    parser.add_argument("--repair-train", default="{}", metavar="JSON",
                        help='more train settings of both repair commits, e.g. \'{"lr": 0.001}\'')
    parser.add_argument("--work", type=Path, metavar="DIR", help="keep the domain repos here (default: a temp dir)")
    args = parser.parse_args()
    train = {"mode": args.mode, **json.loads(args.repair_train)}
    results = {}
    with tempfile.TemporaryDirectory(prefix="pwd-repair-") as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        os.environ.setdefault("PWD_GIT_CACHE", str(Path(tmp) / "cache"))
        ENV["PWD_GIT_CACHE"] = os.environ["PWD_GIT_CACHE"]
        for seed in (int(s) for s in args.seeds.split(",")):
            results[seed] = run_seed(seed, args.starve, train, work, args.include, args.domain)
            print(f"seed {seed}: {json.dumps(results[seed])}", file=sys.stderr)
    print(f"{args.domain} domain; repairs trained with train: {json.dumps(train)}; {args.starve} nodes starved per "
          "seed\n")
    print("| seed | repair | examples | failed before | fixed | broken | starved probes fixed | seconds |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|")
    totals: dict[str, dict[str, float]] = {}
    for seed, rows in results.items():
        for name, r in rows.items():
            print(f"| {seed} | {name} | {r['examples']} | {r['failed_before']} | {r['fixed']} | {r['broken']} "
                  f"| {r['starved_fixed']} of {r['starved_failing']} | {r['seconds']} |")
            t = totals.setdefault(name, {})
            for key in ("examples", "fixed", "broken", "starved_fixed", "starved_failing", "seconds"):
                t[key] = t.get(key, 0) + r[key]
    for name, t in totals.items():
        print(f"| all | {name} | {t['examples']:.0f} | | {t['fixed']:.0f} | {t['broken']:.0f} "
              f"| {t['starved_fixed']:.0f} of {t['starved_failing']:.0f} | {t['seconds']:.1f} |")
    t, r = totals["targeted"], totals["random-10x"]
    print(f"\nnet items fixed (fixed - broken) per 100 examples: targeted "
          f"{100 * (t['fixed'] - t['broken']) / max(1, t['examples']):.1f}, random-10x "
          f"{100 * (r['fixed'] - r['broken']) / max(1, r['examples']):.1f}")


if __name__ == "__main__":
    main()
