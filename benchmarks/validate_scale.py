"""How `git pwd validate` scales: synthetic KBs of 1k to 100k concepts.

For each size, a synthetic domain is generated in a temp dir as a git repo (one statement
per concept, one 4-step test chain per five concepts, concepts in folders of 1,000), then
timed with time.perf_counter around subprocess calls of the real CLI:

  cold      `git-pwd validate` with no parse cache (.git/pwd/cache removed)
  warm      the same again, nothing changed (best of --repeat runs)
  one-file  after changing one concept file (a new edit each run, best of --repeat)
  baseline  `check-jsonschema --schemafile concept.schema.json` on every concept file plus
            `check-jsonschema --schemafile chain.schema.json` on every chain file: schema
            checks only (no references, chains or lints), batched under the OS argv limit

    python benchmarks/validate_scale.py --sizes 1000,10000,100000

The OS page cache is warm in every run (the files were just written): "cold" means no
pwd-git cache, not a cold disk. `git-pwd` is the console script next to this Python (not a
version manager's shim, which adds its own start-up time); it imports pwd_git the way the
script would, so PYTHONPATH=<checkout> measures a source checkout.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SCHEMAS = Path(__file__).resolve().parents[1] / "pwd_git" / "schemas"
TYPES = ["organelle", "protein", "process", "molecule", "cell type", "pathway", "gene", "tissue"]
ARGV_BYTES = 1 << 20  # stay well under ARG_MAX (2 MiB on Linux, environment included)

CONFIG = """\
name: synthetic
description: Synthetic KB for benchmarks/validate_scale.py
predicates:
  precedes: {functional: false}
  has label: {functional: true}
model: {base: tiny}
build: {ngram: 8, seed: 0}
"""


def cid(i: int) -> str:
    return f"c{i:06d}"


def concept_text(i: int, n: int) -> str:
    head = (f"id: {cid(i)}\n"
            f"term: concept number {i}\n"
            f"type: {TYPES[i % len(TYPES)]}\n"
            f"aliases: [item {i}]\n"
            "definition: >-\n"
            f"  Synthetic concept {i} of {n}, generated to measure how validation scales\n"
            "  with the number of files in a knowledge base.\n"
            "source:\n"
            f"  doc: Synthetic corpus, section {i // 100}\n"
            "relations:\n")
    if i + 1 < n:
        return head + f"  - predicate: precedes\n    object: {cid(i + 1)}\n    text: Concept {i} precedes concept {i + 1}.\n"
    return head + "  - predicate: has label\n    value: last\n"


def chain_text(start: int) -> str:
    steps = "".join(f"  - {cid(j)}.precedes.{cid(j + 1)}\n" for j in range(start, start + 4))
    return f"id: chain-{start:06d}\ntitle: From concept {start} to concept {start + 4}\nsplit: test\nsteps:\n{steps}"


def generate(root: Path, n: int) -> tuple[list[str], list[str]]:
    """Write a domain of `n` concepts under `root`, commit it; return concept and chain paths."""
    root.mkdir(parents=True)
    (root / "pwd.yaml").write_text(CONFIG)
    concepts, chains = [], []
    for i in range(n):
        rel = f"concepts/g{i // 1000:03d}/{cid(i)}.yaml"
        if i % 1000 == 0:
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(concept_text(i, n))
        concepts.append(rel)
    for start in range(0, n - 4, 5):
        rel = f"chains/g{start // 5000:03d}/chain-{start:06d}.yaml"
        if start % 5000 == 0:
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(chain_text(start))
        chains.append(rel)
    env = {**os.environ, "GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@example.com",
           "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "bench@example.com"}
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-qm", "synthetic KB"]):
        subprocess.run(["git", *args], cwd=root, check=True, env=env)
    return concepts, chains


class Time(tuple):
    """(wall seconds, CPU seconds of the child: user + system). CPU time does not depend on
    what else the machine is doing; wall time does."""

    def __new__(cls, wall: float, cpu: float):
        return super().__new__(cls, (wall, cpu))

    wall = property(lambda self: self[0])
    cpu = property(lambda self: self[1])

    def __add__(self, other):
        return Time(self.wall + other.wall, self.cpu + other.cpu)

    def __str__(self) -> str:
        return f"{self.wall:.2f} s ({self.cpu:.2f})"


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(args: list[str], cwd: Path, *, expect: int | None = 0) -> Time:
    cpu = _children_cpu()
    started = time.perf_counter()
    proc = subprocess.run(args, cwd=cwd, capture_output=True, text=True)
    elapsed = Time(time.perf_counter() - started, _children_cpu() - cpu)
    if expect is not None and proc.returncode != expect:
        sys.exit(f"{' '.join(args[:3])} ... exited {proc.returncode}:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    return elapsed


def batches(paths: list[str]) -> list[list[str]]:
    out, batch, size = [], [], 0
    for path in paths:
        if batch and size + len(path) + 1 > ARGV_BYTES:
            out.append(batch)
            batch, size = [], 0
        batch.append(path)
        size += len(path) + 1
    return [*out, batch] if batch else out


def baseline(root: Path, concepts: list[str], chains: list[str]) -> Time:
    tool = shutil.which("check-jsonschema")
    if tool is None:
        return Time(float("nan"), float("nan"))
    total = Time(0.0, 0.0)
    for schema, files in (("concept", concepts), ("chain", chains)):
        for batch in batches(files):
            total += timed([tool, "--schemafile", str(SCHEMAS / f"{schema}.schema.json"), *batch], root)
    return total


def bench(n: int, workdir: Path, validate: list[str], repeat: int) -> dict:
    root = workdir / f"kb-{n}"
    started = time.perf_counter()
    concepts, chains = generate(root, n)
    generated = time.perf_counter() - started
    shutil.rmtree(root / ".git" / "pwd", ignore_errors=True)
    cold = timed(validate, root)
    warm = min((timed(validate, root) for _ in range(repeat)), key=lambda t: t.wall)
    one = root / concepts[len(concepts) // 2]
    text = one.read_text()
    one_file = []
    for i in range(repeat):  # a different edit each time: every run re-parses one file
        one.write_text(text.replace("to measure", f"to measure (edit {i})"))
        one_file.append(timed(validate, root))
    base = baseline(root, concepts, chains)
    return {"concepts": n, "files": len(concepts) + len(chains) + 1, "generate": generated, "cold": cold, "warm": warm,
            "one_file": min(one_file, key=lambda t: t.wall), "baseline": base}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,10000", help="comma-separated concept counts (default: 1000,10000)")
    parser.add_argument("--workdir", type=Path, help="generate here and keep the KBs (default: a temp dir, removed)")
    parser.add_argument("--repeat", type=int, default=3, help="warm and one-file runs: best of N (default: 3)")
    args = parser.parse_args()
    sizes = [int(s.replace("_", "")) for s in args.sizes.split(",") if s.strip()]
    tool = Path(sys.executable).parent / "git-pwd"
    tool = str(tool) if tool.is_file() else shutil.which("git-pwd")
    if tool is None:
        sys.exit("git-pwd is not installed: pip install -e . first")
    validate = [tool, "validate"]
    package = subprocess.run([sys.executable, "-c", "import pwd_git; print(pwd_git.__file__)"], capture_output=True,
                             text=True).stdout.strip()

    print(f"# {tool} with {package}", flush=True)
    print(f"# {os.cpu_count()} CPUs; load average before: {os.getloadavg()[0]:.2f}; times: wall (CPU)", flush=True)
    print("| concepts | files | cold validate | warm re-run | re-run after 1-file change | check-jsonschema (schema only) "
          "| baseline / cold: wall (CPU) |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory(prefix="pwd-bench-") as tmp:
        workdir = args.workdir or Path(tmp)
        for n in sizes:
            r = bench(n, workdir, validate, args.repeat)
            base, cold = r["baseline"], r["cold"]
            print(f"| {r['concepts']:,} | {r['files']:,} | {cold} | {r['warm']} | {r['one_file']} | {base} "
                  f"| {base.wall / cold.wall:.1f}x ({base.cpu / cold.cpu:.1f}x) |", flush=True)
    print(f"# load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
