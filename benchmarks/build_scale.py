"""Scale benchmark for `git pwd build`, driven through the real CLI.

Writes synthetic domain repos (real git repos in a temp dir) and times:

  cold      `git pwd build` with no .git/pwd at all (parse + generate + decontaminate + write)
  load      `git pwd build --check` with the parse cache cleared: the KB-loading share of cold
  cached    the same build again (build-key cache hit)
  1-concept `git pwd build` after editing one concept's definition in the working tree
  check     `git pwd build --check` on fresh shards (the pre-commit hook's cost)
  --rev     `git pwd build --rev HEAD~1` of the previous commit, build cache cleared
            (blobs read from the object store; parse cache warm), and checked byte-identical
            to the shards the cold build wrote for that commit

Peak memory is the max RSS of each build process (os.wait4), in MiB.

    python benchmarks/build_scale.py                      # 10k and 100k concepts
    python benchmarks/build_scale.py --sizes 10k,100k,paper
    python benchmarks/build_scale.py --sizes 2k --keep    # leave the repos for inspection

`paper` is the scale of the ProDa paper's KB: 227k concepts, 186k statements, 44k chains.
Other sizes N keep its ratios (0.82 N statements, 0.19 N chains). Half the chains are test
chains; concepts come in types of --type-size concepts, so every test chain has plenty of
same-type distractors.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

PAPER = (227_000, 186_000, 44_000)
SYLLABLES = ["ba", "de", "ki", "lo", "mu", "na", "pe", "ri", "to", "vu", "ga", "zo", "fi", "ho", "ju", "we"]
OBJECT_PREDICATES = {  # predicate -> functional
    "is part of": False, "regulates": False, "interacts with": False, "is located in": False,
    "produces": False, "depends on": False, "inhibits": False, "binds to": False,
    "derives from": True, "is a kind of": True, "activates": False, "transports": False,
}
VALUE_PREDICATES = {  # predicate -> pool of literal values (None: one distinct value per subject)
    "has phase": ["solid", "liquid", "gas", "plasma"],
    "has charge": ["positive", "negative", "neutral", "variable"],  # >= 4: a test chain may end on any value
    "has size class": ["tiny", "small", "medium", "large", "huge", "giant"],
    "has catalogue code": None,
}
GIT_ENV = {"GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@example.com",
           "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "bench@example.com"}


def word(i: int, width: int = 3) -> str:
    """A pronounceable, unique, s-free pseudo-word for i (so no two terms collide as plurals)."""
    out = []
    for _ in range(width):
        out.append(SYLLABLES[i % 16])
        i //= 16
    while i:
        out.append(SYLLABLES[i % 16])
        i //= 16
    return "".join(out)


def parse_size(text: str) -> tuple[int, int, int]:
    text = text.strip().lower()
    if text == "paper":
        return PAPER
    n = int(float(text[:-1]) * 1000) if text.endswith("k") else int(text)
    return n, round(n * PAPER[1] / PAPER[0]), round(n * PAPER[2] / PAPER[0])


def _q(text: str) -> str:
    return json.dumps(text)  # a JSON string is a valid YAML double-quoted scalar


def write_kb(root: Path, n_concepts: int, n_statements: int, n_chains: int, type_size: int, seed: int = 0) -> None:
    rng = random.Random(seed)
    n_types = max(4, n_concepts // type_size)
    types = [f"kind {word(t, 2)}" for t in range(n_types)]
    ctype = [i % n_types for i in range(n_concepts)]
    type_count = [n_concepts // n_types + (t < n_concepts % n_types) for t in range(n_types)]
    cid = [f"c{i:06d}" for i in range(n_concepts)]
    term = [f"{word(i)} {types[ctype[i]].split()[1]}" for i in range(n_concepts)]

    # L2 statements: (subject, predicate, object index | None, value | None)
    relations: list[list[tuple]] = [[] for _ in range(n_concepts)]
    out_obj: list[list[tuple[str, int, str]]] = [[] for _ in range(n_concepts)]
    out_val: list[list[tuple[str, str]]] = [[] for _ in range(n_concepts)]
    seen: set[tuple] = set()
    functional_used: set[tuple[int, str]] = set()
    preds, vpreds = list(OBJECT_PREDICATES), list(VALUE_PREDICATES)
    targets: dict[tuple[int, str], set] = {}  # (subject, predicate) -> every object index / value: what is true
    values_of: dict[str, set[str]] = {}
    made = 0
    while made < n_statements:
        s = rng.randrange(n_concepts)
        if rng.random() < 0.15:
            p = rng.choice(vpreds)
            pool = VALUE_PREDICATES[p]
            value = rng.choice(pool) if pool else f"code {word(s, 4)}-{s}"
            if (s, p) in functional_used:
                continue
            functional_used.add((s, p))
            key = (s, p, value)
            if key in seen:
                continue
            seen.add(key)
            relations[s].append((p, None, value))
            out_val[s].append((f"{cid[s]}.{slug(p)}.{slug(value)}", p))
            targets.setdefault((s, p), set()).add(value)
            values_of.setdefault(p, set()).add(value)
        else:
            p = rng.choice(preds)
            o = rng.randrange(n_concepts)
            if o == s or (s, p, o) in seen:
                continue
            if OBJECT_PREDICATES[p]:
                if (s, p) in functional_used:
                    continue
                functional_used.add((s, p))
            seen.add((s, p, o))
            relations[s].append((p, o, None))
            out_obj[s].append((f"{cid[s]}.{slug(p)}.{cid[o]}", o, p))
            targets.setdefault((s, p), set()).add(o)
        made += 1

    concepts_dir = root / "concepts"
    for i in range(n_concepts):
        t = types[ctype[i]]
        lines = [f"id: {cid[i]}", f"term: {term[i]}", f"type: {t}",
                 f"definition: A {t} known as {term[i]}, noted for trait {word(i * 7 + 3)} and found with "
                 f"{word(i * 13 + 5)} in the synthetic domain."]
        if i % 5 == 0:
            lines.append(f"aliases: [{word(i)} {word(i % 97, 2)} form]")
        if relations[i]:
            lines.append("relations:")
            for p, o, v in relations[i]:
                lines.append(f"  - predicate: {p}")
                lines.append(f"    object: {cid[o]}" if o is not None else f"    value: {_q(v)}")
                if (i + len(p)) % 4 == 0 and o is not None:
                    lines.append(f"    text: {_q(f'In this world, {term[i]} {p} {term[o]}.')}")
        folder = concepts_dir / t.replace(" ", "-")
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{cid[i]}.yaml").write_text("\n".join(lines) + "\n")

    # L3 chains: random walks of 2-3 hops (a literal value only as the last hop)
    starts = [i for i in range(n_concepts) if any(out_obj[o] or out_val[o] for _, o, _ in out_obj[i])]
    chains_dir = root / "chains"
    used: set[tuple[str, ...]] = set()
    made, tries = 0, 0
    while made < n_chains and tries < 50 * n_chains:
        tries += 1
        here = start = rng.choice(starts)
        steps: list[str] = []
        hops = rng.choice((2, 2, 3))
        frontier: set = {start}  # every node the path's predicates reach: all true answers
        for _ in range(hops):
            options = [(sid, o, p) for sid, o, p in out_obj[here]]
            if len(steps) == hops - 1:
                options += [(sid, None, p) for sid, p in out_val[here]]
            if not options:
                break
            sid, nxt, p = rng.choice(options)
            steps.append(sid)
            frontier = {t for x in frontier if isinstance(x, int) for t in targets.get((x, p), ())}
            if nxt is None:
                others = len(values_of[p] - frontier)
                break
            here = nxt
            others = type_count[ctype[here]] - len({t for t in frontier if ctype[t] == ctype[here]}) - 1
        if len(steps) < 2 or tuple(steps) in used or others < 3:  # 4-option L3 items need 3 false answers
            continue
        used.add(tuple(steps))
        chid = f"ch{made:06d}"
        split = "test" if made % 2 == 0 else "train"
        lines = [f"id: {chid}", f"title: synthetic chain {made}", f"split: {split}", "steps:"]
        lines += [f"  - {s}" for s in steps]
        if split == "test" and made % 40 == 0:
            start = term[int(steps[0].split(".")[0][1:])]
            lines += ["items:",
                      f"  - question: {_q(f'Hand check {made}: where does a walk that sets out from {start} finish?')}",
                      f"    choices: [{_q(word(made, 5))}, {_q(word(made + 1, 5))}, {_q(word(made + 2, 5))}, "
                      f"{_q(word(made + 3, 5))}]",
                      "    answer: 0"]
        folder = chains_dir / f"g{made // 1000:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{chid}.yaml").write_text("\n".join(lines) + "\n")
        made += 1
    if made < n_chains:
        raise SystemExit(f"could only make {made} of {n_chains} chains; raise the statement density")

    patches = root / "patches"
    patches.mkdir(exist_ok=True)
    examples = []
    for k in range(min(100, n_concepts)):
        i = (k * 7919) % n_concepts
        examples += [f"  - traces: {{concepts: [{cid[i]}]}}", "    messages:",
                     f"      - {{role: user, content: {_q(f'Patch drill {k}: name the kind of {term[i]}.')}}}",
                     f"      - {{role: assistant, content: {_q(f'{term[i]} belongs to {types[ctype[i]]}.')}}}"]
    (patches / "drills.yaml").write_text("examples:\n" + "\n".join(examples) + "\n")

    predicates = {**{p: {"functional": f} for p, f in OBJECT_PREDICATES.items()},
                  **{p: {"functional": True} for p in VALUE_PREDICATES}}
    config = {"name": "synthetic", "predicates": predicates, "model": {"base": "tiny"},
              "build": {"ngram": 8, "seed": 0}, "train": {}, "test": {}}
    (root / "pwd.yaml").write_text(json.dumps(config, indent=2) + "\n")


def slug(text: str) -> str:
    import re

    return re.sub(r"[^a-z0-9]+", "-", str(text).lower()).strip("-") or "x"


def git(root: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=root, check=True, capture_output=True, text=True,
                          env={**os.environ, **GIT_ENV}).stdout.strip()


CLI = [shutil.which("git-pwd") or "git-pwd"]


@dataclass
class Run:
    seconds: float  # wall clock
    cpu: float  # user + system CPU seconds of the build process and its children (git)
    max_rss_mib: float
    out: str


def timed(root: Path, *args: str, ok_codes=(0,)) -> Run:
    """Run the real CLI as a child process; wall time, CPU time and that child's peak RSS."""
    start = time.perf_counter()
    with tempfile.TemporaryFile() as out:
        proc = subprocess.Popen([*CLI, *args], cwd=root, stdout=out, stderr=subprocess.STDOUT,
                                env={**os.environ, **GIT_ENV})
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        seconds = time.perf_counter() - start
        out.seek(0)
        text = out.read().decode(errors="replace")
    if proc.returncode not in ok_codes:
        raise SystemExit(f"`git pwd {' '.join(args)}` exited {proc.returncode}:\n{text[-3000:]}")
    run = Run(seconds, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, text)  # ru_maxrss: KiB on Linux
    print(f"  git pwd {' '.join(args)}: {run.seconds:.1f}s wall, {run.cpu:.1f}s CPU, {run.max_rss_mib:.0f} MiB",
          file=sys.stderr, flush=True)
    return run


def tree_hashes(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def bench_size(workdir: Path, label: str, size: tuple[int, int, int], type_size: int, cold_only: bool = False) -> dict:
    n_c, n_s, n_ch = size
    root = workdir / f"kb-{label}"
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    t0 = time.perf_counter()
    git(root, "init", "-q", "-b", "main")
    write_kb(root, n_c, n_s, n_ch, type_size)
    git(root, "add", "-A")
    git(root, "commit", "-qm", "v1")
    setup = time.perf_counter() - t0
    print(f"[{label}] wrote and committed the KB in {setup:.1f}s", file=sys.stderr, flush=True)

    shutil.rmtree(root / ".git" / "pwd", ignore_errors=True)
    cold = timed(root, "build", "-q")
    v1_shards = tree_hashes(root / "shards")
    manifest = json.loads((root / "shards" / "MANIFEST.json").read_text())
    counts = manifest["counts"]
    # The KB-loading share of the cold build: --check loads the KB with the parse cache cleared
    # (and hashes shards/, about a second per 300 MiB).
    shutil.rmtree(root / ".git" / "pwd" / "cache", ignore_errors=True)
    load = timed(root, "build", "--check", "-q")
    row = {"label": label, "concepts": manifest["kb"]["concepts"], "statements": manifest["kb"]["statements"],
           "chains": manifest["kb"]["chains"], "train": sum(counts["train"].values()),
           "bench": sum(counts["bench"].values()), "setup_s": setup, "cold_s": cold.seconds, "cold_cpu": cold.cpu,
           "load_s": load.seconds, "load_cpu": load.cpu,
           "shards_mib": sum(p.stat().st_size for p in (root / "shards").rglob("*") if p.is_file()) / 2**20}
    if cold_only:
        return {**row, "peak_mib": max(cold.max_rss_mib, load.max_rss_mib)}
    cached = timed(root, "build", "-q")
    check = timed(root, "build", "--check", "-q")

    concept = next((root / "concepts").rglob("*.yaml"))
    text = concept.read_text()
    concept.write_text(text.replace("in the synthetic domain.", "in the synthetic domain, as edited.", 1))
    timed(root, "build", "--check", "-q", ok_codes=(1,))  # shards/ is stale now: the hook must say so
    one = timed(root, "build", "-q")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "v2: edit one concept")

    shutil.rmtree(root / ".git" / "pwd" / "builds", ignore_errors=True)
    rev = timed(root, "build", "--rev", "HEAD~1", "--format", "json")
    rev_path = Path(json.loads(rev.out[rev.out.index("{"):])["path"])
    identical = tree_hashes(rev_path) == v1_shards

    return {**row, "cached_s": cached.seconds, "check_s": check.seconds, "one_s": one.seconds, "one_cpu": one.cpu,
            "rev_s": rev.seconds, "rev_cpu": rev.cpu, "rev_identical": identical,
            "peak_mib": max(r.max_rss_mib for r in (cold, load, cached, check, one, rev))}


def table(rows: list[dict]) -> str:
    head = ("| size | concepts | statements | chains | train recs | bench items | shards MiB | cold build s (CPU) "
            "| of which KB load s (CPU) | cached s | --check s | 1-concept s (CPU) | --rev s (CPU) | --rev identical "
            "| peak RSS MiB |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        full = "one_s" in r
        cells = [r["label"], f"{r['concepts']:,}", f"{r['statements']:,}", f"{r['chains']:,}", f"{r['train']:,}",
                 f"{r['bench']:,}", f"{r['shards_mib']:.0f}", f"{r['cold_s']:.1f} ({r['cold_cpu']:.1f})",
                 f"{r['load_s']:.1f} ({r['load_cpu']:.1f})",
                 f"{r['cached_s']:.2f}" if full else "-", f"{r['check_s']:.2f}" if full else "-",
                 f"{r['one_s']:.1f} ({r['one_cpu']:.1f})" if full else "-",
                 f"{r['rev_s']:.1f} ({r['rev_cpu']:.1f})" if full else "-",
                 ("yes" if r["rev_identical"] else "NO") if full else "-", f"{r['peak_mib']:.0f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10k,100k", help="comma-separated: N, Nk or paper (default: 10k,100k)")
    parser.add_argument("--type-size", type=int, default=500, help="concepts per type (default 500)")
    parser.add_argument("--workdir", type=Path, help="where to write the repos (default: a temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the repos")
    parser.add_argument("--json", type=Path, help="also write the rows as JSON here")
    parser.add_argument("--cold-only", action="store_true", help="only the cold build (and its peak memory)")
    parser.add_argument("--pythonpath", help="run `python -m pwd_git` with this PYTHONPATH instead of git-pwd "
                                             "(to compare two versions of the tool)")
    parser.add_argument("--jobs", type=int, help="build processes (PWD_BUILD_JOBS; default: every CPU)")
    args = parser.parse_args(argv)
    if args.jobs:
        os.environ["PWD_BUILD_JOBS"] = str(args.jobs)
    if args.pythonpath:
        CLI[:] = [sys.executable, "-m", "pwd_git"]
        os.environ["PYTHONPATH"] = args.pythonpath
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="pwd-build-scale-"))
    workdir.mkdir(parents=True, exist_ok=True)
    rows = []
    try:
        for label in args.sizes.split(","):
            rows.append(bench_size(workdir, label.strip(), parse_size(label), args.type_size, args.cold_only))
            print(table(rows[-1:]), file=sys.stderr, flush=True)
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    print(f"pwd-git build scale, {os.cpu_count()} CPUs, Python {sys.version.split()[0]}, type size {args.type_size}, "
          f"build processes {os.environ.get('PWD_BUILD_JOBS', 'all CPUs')}")
    print(table(rows))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")
    return 0 if all(r.get("rev_identical", True) for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
