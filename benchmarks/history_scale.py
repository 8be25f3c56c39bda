"""`git pwd log` and `git pwd report` over long histories: the batched KB tree against one
`ls-tree` per commit.

A commit without a result of its own shows one recorded on a commit with the same KB and
settings (results.history), so both verbs need the KB tree of every such commit. The history:
the bikes domain of the tests (tests/histories.py) and N commits on top, written by one
`git fast-import`, that edit README.md except every `--kb-every`-th, which adds a concept
(a new KB tree). CI tested the first commit of each KB state only: a result note there
(tests.histories.record_results, no model needed), so every other commit borrows one.

Two ways to name the KB tree of every commit, timed in this process on the same commits:

  one at a time   kb_tree_at per commit (an ls-tree of the commit, the reading before)
  batched         kb_trees: one cat-file for the folders of all commits, each distinct tree
                  object read once

and the two commands as a user runs them (wall time, subprocess). Their result counts must
agree (every commit has one) or the script exits 1.

    python benchmarks/history_scale.py                  # 1000 and 3000 commits
    python benchmarks/history_scale.py --sizes 300 --kb-every 25
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.conftest import concept
from tests.histories import git, make_history, record_results


def grow(root: Path, n: int, kb_every: int) -> list[str]:
    """`n` commits on HEAD; every `kb_every`-th adds a concept. Returns the KB-changing commits."""
    head = git(root, "rev-parse", "HEAD")
    lines = []
    for i in range(1, n + 1):
        message = f"edit {i}"
        lines += ["commit refs/heads/main", f"committer T <t@e.x> {1_700_000_000 + i * 60} +0000",
                  f"data {len(message)}", message, *([f"from {head}"] if i == 1 else [])]
        if i % kb_every == 0:
            body = concept(f"extra-{i}", relations="- predicate: is part of\n  object: bicycle")
            lines += [f"M 100644 inline concepts/extra-{i}.yaml", f"data {len(body.encode())}", body]
        else:
            lines += ["M 100644 inline README.md", f"data {len(str(i))}", str(i)]
        lines.append("")
    subprocess.run(["git", "fast-import", "--quiet"], cwd=root, input="\n".join(lines).encode(), check=True)
    git(root, "reset", "-q", "--hard", "main")
    commits = git(root, "rev-list", "--reverse", "--first-parent", "HEAD").split()
    return [commits[0]] + [c for i, c in enumerate(commits[1:], 1) if i % kb_every == 0]


def measure(n: int, kb_every: int, work: Path) -> dict:
    from pwd_git.kb.loader import Domain, kb_tree_at, kb_trees

    root = work / f"h{n}"
    make_history(root, 1, None)
    tested = grow(root, n, kb_every)
    record_results(root, tested, lambda c, i: i["level"] == "L3")
    domain = Domain.find(root)
    commits = git(root, "rev-list", "--first-parent", "HEAD").split()
    started = time.perf_counter()
    one = {c: kb_tree_at(domain, c) for c in commits}
    one_s = time.perf_counter() - started
    started = time.perf_counter()
    batched = kb_trees(domain, commits)
    batched_s = time.perf_counter() - started
    if batched != one:
        raise SystemExit(f"{n} commits: the batched KB trees differ from kb_tree_at's")
    row = {"commits": len(commits), "results": len(tested), "one": one_s, "batched": batched_s}
    for verb, args in (("log", ["log", "-n", str(len(commits)), "--format", "json"]),
                       ("report", ["report", "-n", str(len(commits)), "-o", str(work / f"site{n}"), "--format", "json"])):
        started = time.perf_counter()
        proc = subprocess.run(["git", "pwd", *args], cwd=root, capture_output=True, text=True)
        row[verb] = time.perf_counter() - started
        if proc.returncode != 0:
            raise SystemExit(f"git pwd {verb} exited {proc.returncode}: {proc.stderr[-2000:]}")
        out = json.loads(proc.stdout)
        row[f"{verb}_shown"] = sum(1 for r in out if r["result"]) if verb == "log" else out["results"]
    if not row["log_shown"] == row["report_shown"] == len(commits):
        raise SystemExit(f"{n} commits: log shows {row['log_shown']} results, report {row['report_shown']}")
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,3000", help="commits on top of the base (comma-separated)")
    parser.add_argument("--kb-every", type=int, default=50, help="every this-many-th commit changes the KB")
    args = parser.parse_args()
    os.environ.setdefault("PWD_GIT_CACHE", tempfile.mkdtemp(prefix="pwd-hist-cache-"))
    rows = []
    with tempfile.TemporaryDirectory(prefix="pwd-hist-") as tmp:
        for n in map(int, args.sizes.split(",")):
            rows.append(measure(n, args.kb_every, Path(tmp)))
    print("| commits | results recorded | KB tree, one at a time | batched | ratio | `log` | `report` | results shown |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['commits']} | {r['results']} | {r['one']:.2f} s | {r['batched']:.2f} s | {r['one'] / r['batched']:.0f}x "
              f"| {r['log']:.2f} s | {r['report']:.2f} s | {r['log_shown']} |")


if __name__ == "__main__":
    main()
