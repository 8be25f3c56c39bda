"""Extraction of one large Markdown document: time and peak memory against its size.

A Markdown document of SIZE MB (paragraphs of prose that states nothing extract may take, and a
fixed number of definitions spread through it, so what is extracted does not grow with SIZE) is
committed in a temporary repository; `extract(..., dry_run=True)` with the offline `patterns`
backend then runs in a fresh process per size, which reports its wall time and peak RSS
(`resource.getrusage`: the Python process, and git's processes). Text and Markdown are streamed
(read from git piece by piece and chunked as they stream), so the peak should not grow with the
document: the 100 MB row against the 10 MB one shows whether it does.

Then, for the largest size, the extraction is committed and merged, one paragraph in the middle
is edited, and the re-run is timed, with the number of chunks actually extracted again (the
document cache maps each chunk's content hash to its candidates).

    nice -n 10 python benchmarks/large_document.py [--sizes 10,100] [--definitions 200]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

ENV = {**os.environ, "GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@b", "GIT_COMMITTER_NAME": "b",
       "GIT_COMMITTER_EMAIL": "b@b"}
FILLER = ("Paragraph {i} of the archive was written on a quiet afternoon, and it states nothing that a reader could "
          "take away. Would anyone remember it? Perhaps the committee will read it again tomorrow, if the weather "
          "allows, since it is longer than the others. It was not finished.")


def write_document(path: Path, megabytes: float, definitions: int) -> None:
    """SIZE MB of filler paragraphs, with `definitions` definitional paragraphs spread evenly."""
    target = int(megabytes * 1e6)
    para = len(FILLER) + 10
    every = max(1, target // para // max(1, definitions))
    written, i, d = 0, 0, 0
    with path.open("w") as fh:
        fh.write("# The archive\n\n")
        while written < target:
            if i % every == every // 2 and d < definitions:
                text = f"A zorb{d} is a structure that holds the archive's pages together."
                d += 1
            else:
                text = FILLER.format(i=i)
            fh.write(text + "\n\n")
            written += len(text) + 2
            i += 1


def git(root: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=root, check=True, capture_output=True, env=ENV).stdout.decode()


def measure(root: Path) -> dict:
    """Run one extraction (dry run) in a fresh process; its wall time, peak RSS and counts."""
    code = r"""
import json, resource, sys, time
from pwd_git.extract import patterns, run
from pwd_git.kb.loader import Domain
calls = 0
extract_chunk = patterns.extract_chunk
def counted(*a, **k):
    global calls
    calls += 1
    return extract_chunk(*a, **k)
patterns.extract_chunk = counted
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
result = run.extract(Domain.find(sys.argv[1]), dry_run=True)
wall = time.perf_counter() - start
doc = next(d for d in result.documents if d.path == "corpus/big.md")
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"wall": wall, "rss_start_mb": before / 1024, "rss_peak_mb": peak / 1024,
                  "git_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, "chunks": doc.chunks,
                  "status": doc.status, "extracted_chunks": calls, "concepts": len(result.plan.concepts)}))
"""
    out = subprocess.run([sys.executable, "-c", code, str(root)], check=True, capture_output=True, env=ENV,
                         cwd=Path(__file__).resolve().parents[1]).stdout.decode()
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10,100", help="document sizes in MB")
    parser.add_argument("--definitions", type=int, default=200)
    args = parser.parse_args()
    sizes = [float(s) for s in args.sizes.split(",")]
    print("| document | chunks | concepts | wall | peak RSS (python) | RSS before extract | peak RSS (git) |")
    print("|---|---|---|---|---|---|---|")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in sizes:
            root = Path(tmp) / f"d{size:g}"
            (root / "corpus").mkdir(parents=True)
            git(root, "init", "-q", "-b", "main")
            (root / "pwd.yaml").write_text("name: big\nextract:\n  backend: patterns\n  chains: 0\n")
            write_document(root / "corpus/big.md", size, args.definitions)
            git(root, "add", "-A")
            git(root, "commit", "-qm", "corpus")
            r = measure(root)
            rows.append(r)
            print(f"| {size:g} MB | {r['chunks']} | {r['concepts']} | {r['wall']:.1f} s | {r['rss_peak_mb']:.0f} MB | "
                  f"{r['rss_start_mb']:.0f} MB | {r['git_rss_mb']:.0f} MB |", flush=True)
        # incremental: commit and merge the extraction, edit one paragraph in the middle, re-run
        from pwd_git.extract.run import extract
        from pwd_git.kb.loader import Domain

        done = extract(Domain.find(root))
        git(root, "merge", "-q", "--ff-only", done.branch)
        doc = root / "corpus/big.md"
        with doc.open("r+b") as fh:
            fh.seek(doc.stat().st_size // 2)
            fh.write(b"EDITED ")
        git(root, "commit", "-qam", "edit one paragraph")
        r = measure(root)
        print(f"\nre-run after a one-paragraph edit of the {sizes[-1]:g} MB document: {r['wall']:.1f} s, "
              f"{r['extracted_chunks']} of {r['chunks']} chunks extracted again (status {r['status']})")
    growth = rows[-1]["rss_peak_mb"] - rows[-1]["rss_start_mb"], rows[0]["rss_peak_mb"] - rows[0]["rss_start_mb"]
    print(f"peak RSS above start-up: {growth[1]:.0f} MB at {sizes[0]:g} MB, {growth[0]:.0f} MB at {sizes[-1]:g} MB")


if __name__ == "__main__":
    main()
