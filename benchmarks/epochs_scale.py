"""How many passes the tiny model needs as the KB grows: the default "auto" epochs against fixed ones.

Writes a generated geography (benchmarks/domains.py) of the given size, then for each epochs
setting and seed trains from scratch and tests through the CLI, as a user runs it:

    git pwd build && git pwd train && git pwd test --format json

in a clone of its own with a cache of its own (so `--jobs 2` runs two trainings side by side,
one thread each). The table: training records, epochs (as pwd.yaml sets them, and the passes
made), seed, training seconds (wall, shared cores), acc and acc per level. The named baseline is
the previous default, 40 epochs, in the same run.

    python benchmarks/epochs_scale.py [--countries 140] [--languages 100] [--epochs auto,40]
        [--seeds 0,1] [--jobs 2] [--work DIR]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from diagnosis_quality import ENV, commit_build, git, log, pwd  # noqa: E402
from domains import write_geography  # noqa: E402
from repair_efficiency import edit_config  # noqa: E402


def run_one(source: Path, work: Path, epochs: str, seed: int) -> dict:
    """Train and test one (epochs, seed) in its own clone and cache; its row of the table."""
    name = f"e{epochs}-s{seed}"
    root = work / name
    env = {**ENV, "PWD_GIT_CACHE": str(work / f"cache-{name}")}
    git(work, "clone", "-q", str(source), str(root))
    edit_config(root, train={"seed": seed, **({} if epochs == "auto" else {"epochs": int(epochs)})})
    commit_build(root, name)
    start = time.perf_counter()
    trained = _pwd(root, env, "train", "--format", "json")
    seconds = time.perf_counter() - start
    tested = _pwd(root, env, "test", "--format", "json")
    stats = trained.get("stats") or trained
    log(f"{name}: {stats.get('epochs')} passes in {seconds:.0f} s, acc {tested['metrics']['acc']:.3f}")
    return {"epochs": epochs, "seed": seed, "passes": stats.get("epochs"), "records": stats.get("examples"),
            "seconds": seconds, "metrics": tested["metrics"]}


def _pwd(root: Path, env: dict, *args: str) -> dict:
    """`git pwd ARGS --format json` in `root` with `env` (each run its own cache), parsed."""
    proc = subprocess.run([sys.executable, "-m", "pwd_git", "-C", str(root), *args], env=env, capture_output=True,
                          text=True)
    if proc.returncode not in (0, 1) or not proc.stdout.strip():
        raise SystemExit(f"git pwd {' '.join(args)} exited {proc.returncode}:\n{proc.stderr}")
    return json.loads(proc.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--countries", type=int, default=140)
    parser.add_argument("--languages", type=int, default=100)
    parser.add_argument("--epochs", default="auto,40", help="comma-separated: auto or a number (default auto,40)")
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--jobs", type=int, default=2, help="trainings side by side (default 2)")
    parser.add_argument("--work", type=Path, help="where to write the repos (default: a temp dir)")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="pwd-epochs-"))
    work.mkdir(parents=True, exist_ok=True)
    source = work / "geography"
    pwd(work, "init", str(source))
    sizes = write_geography(source, 0, countries=args.countries, languages=args.languages)
    commit_build(source, "geography")
    runs = [(e, int(s)) for e in args.epochs.split(",") for s in args.seeds.split(",")]
    with ThreadPoolExecutor(args.jobs) as pool:
        rows = list(pool.map(lambda run: run_one(source, work, *run), runs))
    print(f"geography: {', '.join(f'{v} {k}' for k, v in sizes.items())}; {rows[0]['records']} training records; "
          f"{args.jobs} trainings at a time, 1 thread each\n")
    print("| train.epochs | passes | seed | train s | acc | L1 | L2 | L3 |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        lv = r["metrics"]["levels"]
        print(f"| {r['epochs']} | {r['passes']} | {r['seed']} | {r['seconds']:.0f} | {r['metrics']['acc']:.2f} | "
              + " | ".join(f"{lv[k]['acc']:.2f}" if k in lv else "–" for k in ("L1", "L2", "L3")) + " |")
    for epochs in dict.fromkeys(r["epochs"] for r in rows):
        mine = [r for r in rows if r["epochs"] == epochs]
        print(f"| {epochs} (mean) | | | {sum(r['seconds'] for r in mine) / len(mine):.0f} | "
              f"{sum(r['metrics']['acc'] for r in mine) / len(mine):.2f} | | | |")


if __name__ == "__main__":
    main()
