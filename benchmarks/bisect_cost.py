"""Cost of finding a regression: `git pwd bisect` against plain `git bisect run git pwd run`.

Histories of N commits (default 16, 64, 256) on the small bikes domain of the tests
(tests/histories.py): one commit cuts the training budget (pwd.yaml train.epochs 30 -> 1),
the others edit README.md, cite a source in a concept (new KB tree, same training data) or
add/reword an accessory concept no test uses (new training data). Shards are committed at
every commit, so the naive baseline can run in a checkout.

Two tools, both told GOOD (the first commit) and BAD (the last):

  git pwd bisect GOOD BAD                 this tool: first-parent bisect in a temporary
                                          worktree, commits with an unchanged KB state are
                                          never tested, results answered from notes first
  git bisect start BAD GOOD               the naive baseline, in a clone: checks out every
  git bisect run git pwd run -q --baseline GOOD   step and runs the whole pipeline there

and two situations:

  notes absent   no recorded results, empty model cache: every new KB state visited trains
  notes present  a result note on every commit (what CI leaves behind); these are written
                 by tests.histories.record_results (hand-written items fail from the budget
                 cut on) so that no model is needed to prepare them

Trainings are counted as the models that appear in the model cache ($PWD_GIT_CACHE,
fresh per run). Wall time is the whole command, subprocesses included.

    python benchmarks/bisect_cost.py                       # 16, 64, 256 commits
    python benchmarks/bisect_cost.py --sizes 16 --out /tmp/bisect_perf.md
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.histories import PATTERN, git, make_history, record_results  # noqa: E402

GIT_ENV = {"GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@example.com",
           "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "bench@example.com"}


@dataclass
class Row:
    commits: int
    kb_states: int
    notes: str
    tool: str
    trainings: int
    steps: int
    seconds: float
    found: bool


def models(cache: Path) -> int:
    folder = cache / "models"
    return sum(1 for p in folder.iterdir() if not p.name.startswith(".")) if folder.is_dir() else 0


def env_for(cache: Path, home: Path) -> dict[str, str]:
    return {**os.environ, **GIT_ENV, "PWD_GIT_CACHE": str(cache), "GIT_CONFIG_GLOBAL": str(home / "gitconfig"),
            "GIT_CONFIG_NOSYSTEM": "1"}


def run_pwd_bisect(repo: Path, good: str, cache: Path, home: Path) -> tuple[int, int, float, str]:
    start = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "pwd_git", "bisect", good, "main", "--format", "json"], cwd=repo,
                          env=env_for(cache, home), capture_output=True, text=True)
    seconds = time.monotonic() - start
    if proc.returncode not in (0, 1):
        raise SystemExit(f"git pwd bisect failed:\n{proc.stderr}")
    report = json.loads(proc.stdout)
    found = (report["first_bad"] or {}).get("commit", "")
    steps = sum(1 for s in report["steps"] if s["commit"] != good)
    return models(cache), steps, seconds, found


def run_naive(repo: Path, good: str, cache: Path, home: Path, workdir: Path) -> tuple[int, int, float, str]:
    clone = workdir / "naive-clone"
    shutil.rmtree(clone, ignore_errors=True)
    git(workdir, "clone", "-q", str(repo), str(clone))
    # the clone has no notes; copy them when the situation has them
    if git(repo, "for-each-ref", "refs/notes/pwd/results"):
        git(clone, "fetch", "-q", str(repo), "refs/notes/pwd/results:refs/notes/pwd/results")
    env = env_for(cache, home)
    start = time.monotonic()
    subprocess.run(["git", "bisect", "start", "origin/main", good], cwd=clone, env=env, check=True, capture_output=True)
    proc = subprocess.run(["git", "bisect", "run", sys.executable, "-m", "pwd_git", "run", "-q", "--baseline", good],
                          cwd=clone, env=env, capture_output=True, text=True)
    seconds = time.monotonic() - start
    log = subprocess.run(["git", "bisect", "log"], cwd=clone, env=env, capture_output=True, text=True).stdout
    subprocess.run(["git", "bisect", "reset"], cwd=clone, env=env, capture_output=True)
    found = next((line.split("[", 1)[1].split("]", 1)[0] for line in log.splitlines()
                  if line.startswith("# first bad commit: [")), "")
    steps = sum(1 for line in log.splitlines() if line.startswith(("git bisect good", "git bisect bad")))
    if proc.returncode != 0 and not found:
        raise SystemExit(f"naive bisect failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return models(cache), steps, seconds, found


def distinct_states(repo: Path, commits: list[str]) -> int:
    from pwd_git.bisect import kb_states
    from pwd_git.kb.loader import Domain

    return len(set(kb_states(Domain.find(repo), commits)))


def bench(n: int, workdir: Path, situations: list[str]) -> list[Row]:
    home = workdir / "home"
    home.mkdir(parents=True, exist_ok=True)
    os.environ.update(GIT_ENV)
    os.environ["GIT_CONFIG_GLOBAL"] = str(home / "gitconfig")
    os.environ["PWD_GIT_CACHE"] = str(workdir / "build-cache")
    regression_at = int(n * 0.6) | 1  # odd: right after a README-only commit of the pattern
    repo = workdir / f"bikes-{n}"
    t0 = time.monotonic()
    history = make_history(repo, n, regression_at, build_shards=True, pattern=PATTERN)
    print(f"[{n}] history written in {time.monotonic() - t0:.0f}s", file=sys.stderr, flush=True)
    states = distinct_states(repo, history.commits)
    rows = []
    bad = set(history.commits[regression_at:])
    for situation in situations:
        for tool, runner in (("git pwd bisect", run_pwd_bisect), ("git bisect run git pwd run", run_naive)):
            # each run starts from the same notes: none, or one on every commit
            subprocess.run(["git", "update-ref", "-d", "refs/notes/pwd/results"], cwd=repo, check=False)
            if situation == "present":
                record_results(repo, history.commits, lambda c, item: c in bad and item["template"] == "hand")
            cache = workdir / f"cache-{n}-{situation}-{tool.split()[1]}"
            shutil.rmtree(cache, ignore_errors=True)
            if tool == "git pwd bisect":
                trainings, steps, seconds, found = runner(repo, history.good, cache, home)
            else:
                trainings, steps, seconds, found = runner(repo, history.good, cache, home, workdir)
            row = Row(n, states, situation, tool, trainings, steps, seconds, found == history.regression)
            print(f"[{n}] notes {situation:7} {tool:28} trainings {trainings:3}  steps {steps:3}  {seconds:7.1f}s  "
                  f"{'found' if row.found else 'WRONG: ' + found[:10]}", file=sys.stderr, flush=True)
            rows.append(row)
    return rows


def table(rows: list[Row]) -> str:
    out = ["| commits | KB states | notes | tool | trainings | bisect steps | wall time | found |",
           "|---:|---:|---|---|---:|---:|---:|---|"]
    for r in rows:
        bound = math.ceil(math.log2(r.kb_states)) + 2  # the midpoints, GOOD and BAD (judged before any midpoint)
        out.append(f"| {r.commits} | {r.kb_states} (bound {bound}) | {r.notes} | `{r.tool}` | {r.trainings} | "
                   f"{r.steps} | {r.seconds:.1f} s | {'yes' if r.found else 'NO'} |")
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="16,64,256")
    parser.add_argument("--notes", default="absent,present", help="situations: absent, present")
    parser.add_argument("--out", type=Path, default=None, help="also write the table (markdown) here")
    parser.add_argument("--keep", action="store_true", help="keep the repos")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="bisect-cost-"))
    rows: list[Row] = []
    try:
        for n in [int(s) for s in args.sizes.split(",")]:
            rows.extend(bench(n, workdir / str(n), args.notes.split(",")))
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print(f"repos kept in {workdir}", file=sys.stderr)
    text = table(rows)
    print(text)
    if args.out:
        command = ("python benchmarks/bisect_cost.py " + " ".join(sys.argv[1:])).strip()
        machine = f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
        args.out.write_text(
            f"## bisect cost\n\n`{command}` ({machine}; load average {os.getloadavg()[0]:.1f} at the end; "
            "the CPUs were shared, so wall times are pessimistic)\n\n"
            "- `git pwd bisect GOOD main`\n"
            "- naive: in a clone, `git bisect start origin/main GOOD && "
            "git bisect run python -m pwd_git run -q --baseline GOOD`\n"
            "- histories from `tests/histories.py`: one commit cuts `train.epochs` 40 -> 1; the others edit "
            "README.md, cite a source in a concept, or add/reword an unrelated concept; shards committed at every "
            "commit (the naive run needs them in its checkout)\n"
            "- trainings = models that appeared in a fresh model cache; notes present = a result note on every "
            "commit; bound = ceil(log2(KB states)) + 2 (GOOD and BAD are judged first)\n\n"
            f"{text}\n")


if __name__ == "__main__":
    main()
