"""Rendering planned units: in a process pool, reusing the lines of the previous build.

Unit cache. Every build folder `.git/pwd/builds/<key>/` is kept; next to it `<key>.units`
maps the content key of each unit (sha256 of its spec, see `generate.Unit`) to the byte
range of its lines in that build's shard files, plus the fingerprint of the benchmark
questions its training text was checked against. `builds/last-<domain>` names the latest
build of a domain. The next build of that domain copies the byte range of every unit whose
key is unchanged instead of rendering it, and skips its decontamination when the benchmark
questions are also unchanged: a one-concept edit renders and checks only the units whose
spec mentions that concept. Any change to the benchmark's questions (or to `build.ngram`,
`build.near_duplicate`) re-checks every training record, still reusing unchanged bytes.

Parallelism. Rendering and checking are pure functions of (spec, benchmark index); the
work is split into consecutive chunks, forked workers do them, and results come back in
chunk order, so the output is the same bytes as a serial run (`PWD_BUILD_JOBS=1`).
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import marshal
import mmap
import multiprocessing
import os
import tempfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from pwd_git.build.decontam import BenchIndex
from pwd_git.build.generate import GENERATOR_VERSION, Generator, render

UNITS_FORMAT = 1
CHUNK = 2000  # KB nodes (or benchmark units) per task
PARALLEL_MIN = 20_000  # fewer nodes than this: no pool (forking costs more than it saves)


def jobs() -> int:
    """Worker processes: $PWD_BUILD_JOBS, else the CPUs this process may run on."""
    env = os.environ.get("PWD_BUILD_JOBS", "").strip()
    if env:
        return max(1, int(env))
    try:
        return max(1, min(len(os.sched_getaffinity(0)), 8))
    except AttributeError:  # not Linux
        return max(1, min(os.cpu_count() or 1, 8))


# -- the unit cache ---------------------------------------------------------------------------

def _pointer(cache_root: Path, domain_prefix: str) -> Path:
    return cache_root / f"last-{hashlib.sha256(domain_prefix.encode()).hexdigest()[:12]}"


class PreviousBuild:
    """The unit index of the domain's last build, with its shard files mapped in."""

    def __init__(self, units: dict[bytes, tuple[int, int, int]], files: list[mmap.mmap | None], bench_fp: str):
        self.units, self.files, self.bench_fp = units, files, bench_fp

    @classmethod
    def open(cls, cache_root: Path, domain_prefix: str) -> PreviousBuild | None:
        """None when there is none, or it is from another generator version or unreadable."""
        try:
            key = _pointer(cache_root, domain_prefix).read_text().strip()
            with open(cache_root / f"{key}.units", "rb") as fh:
                data = marshal.load(fh)
            if data.get("format") != UNITS_FORMAT or data.get("generator_version") != GENERATOR_VERSION:
                return None
            files: list[mmap.mmap | None] = []
            for rel, size in data["files"]:
                if not size:
                    files.append(None)
                    continue
                with open(cache_root / key / rel, "rb") as fh:
                    if os.fstat(fh.fileno()).st_size != size:
                        return None
                    files.append(mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ))
            return cls(data["units"], files, data["bench_fp"])
        except (OSError, ValueError, EOFError, TypeError, KeyError):
            return None

    def close(self) -> None:
        for mm in self.files:
            if mm is not None:
                mm.close()


def save_index(cache_root: Path, key: str, domain_prefix: str, files: list[tuple[str, int]],
               units: dict[bytes, tuple[int, int, int]], bench_fp: str) -> None:
    """Write `<key>.units` and point the domain's `last-` file at it (both atomically)."""
    data = {"format": UNITS_FORMAT, "generator_version": GENERATOR_VERSION, "bench_fp": bench_fp,
            "files": files, "units": units}
    for path, payload in ((cache_root / f"{key}.units", marshal.dumps(data)),
                          (_pointer(cache_root, domain_prefix), key.encode() + b"\n")):
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=cache_root)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(payload)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise


# -- rendering ----------------------------------------------------------------------------------

@dataclass
class Chunk:
    """What a task did with its units, in order: each unit's key (None: not cacheable) and
    either its rendered bytes or its (file, offset, length) in the previous build."""

    shard: str
    keys: list[bytes | None] = field(default_factory=list)
    parts: list[bytes | tuple[int, int, int]] = field(default_factory=list)
    records: int = 0
    rendered: int = 0
    levels: Counter = field(default_factory=Counter)
    templates: Counter = field(default_factory=Counter)
    per_concept: Counter = field(default_factory=Counter)  # training records per traced concept
    leaky: list[tuple[str, str, list]] = field(default_factory=list)  # (record id, source, hits) in record order


@dataclass
class Job:
    """Everything a task needs; set before forking, so workers share it."""

    gen: Generator
    index: BenchIndex
    known: dict  # unit key -> (file, offset, length) in the previous build
    same_bench: bool  # the previous build's training text was checked against these same questions
    nodes: dict[str, list]  # shard -> its KB nodes (training) or planned units (benchmark)


_JOB: Job | None = None


def tasks(nodes: dict[str, list], size: int = CHUNK) -> list[tuple[str, int, int]]:
    """(shard, start, stop) slices in output order; every shard gets at least one (possibly empty)."""
    return [(shard, start, min(start + size, len(items))) for shard, items in nodes.items()
            for start in range(0, max(len(items), 1), size)]


def run_task(task: tuple[str, int, int]) -> Chunk:
    """Plan (training), key, look up, and render and check what is not reusable, for one slice."""
    shard, start, stop = task
    job = _JOB
    train = shard.startswith("train/")
    items = job.nodes[shard][start:stop]
    units = job.gen.train_units(shard, items) if train else items
    known, reuse_train, index = job.known, job.same_bench, job.index
    out = Chunk(shard)
    shapes: Counter = Counter()  # (level, templates) -> units
    per_concept = out.per_concept
    for unit in units:
        key = unit.key if unit.cacheable else None
        hit = known.get(key) if key is not None else None
        out.keys.append(key)
        if hit is not None and (reuse_train or not train):
            out.parts.append(hit)
        else:
            rendered = render(unit.spec)
            out.parts.append(rendered.lines.encode())
            out.rendered += 1
            if train:
                for number, hits in index.unit_hits(rendered.texts):
                    out.leaky.append((rendered.ids[number], unit.spec[-1], hits))
        n = len(unit.templates)
        shapes[(unit.level, unit.templates)] += 1
        if train:
            for c in unit.concepts:
                per_concept[c] += n
    for (level, templates), count in shapes.items():
        out.records += count * len(templates)
        out.levels[level] += count * len(templates)
        for t in templates:
            out.templates[t] += count
    return out


def run_all(job: Job, workers: int) -> Iterator[Chunk]:
    """Every task's Chunk, in output order; in `workers` forked processes when worth it."""
    global _JOB
    todo = tasks(job.nodes)
    _JOB = job
    try:
        size = sum(len(items) for items in job.nodes.values())
        if workers <= 1 or size < PARALLEL_MIN or "fork" not in multiprocessing.get_all_start_methods():
            for task in todo:
                yield run_task(task)
            return
        gc.freeze()  # the workers share the parent's objects: keep the collector off their pages
        with multiprocessing.get_context("fork").Pool(min(workers, len(todo))) as pool:
            yield from pool.imap(run_task, todo)
    finally:
        _JOB = None
        gc.unfreeze()
