"""Rendering planned units: in a process pool, reusing the lines of the previous build.

Unit cache. Build folders `.git/pwd/builds/<key>/` are kept (up to a bound, see `prune`);
next to each, `<key>.units` lists, per shard file, the content key of each unit (sha256 of
its spec, see `generate.Unit`) and the length of its lines, plus the fingerprint of the benchmark
questions the training text was checked against. `builds/last-<domain>` names the latest
build of a domain. The next build of that domain plans every unit again (cheap), and copies
the bytes of every unit whose key is unchanged instead of rendering it; it skips their
decontamination when the benchmark questions (and `build.ngram`, `build.near_duplicate`,
and the answers of the few probes that quote an n-gram of KB text, see `decontam`) are
unchanged too, and otherwise renders and checks every training unit again. What a key
covers is exactly what the unit's bytes are made of, so an edit invalidates the units whose
text shows the edited node: its own records, the records that name it (statements about
it, false statements and probes that picked it as a distractor, chains through it), and
the probes of a type whose distractor ring it joins or leaves near their draw. The cache
is only used by the same GENERATOR_VERSION: bump it when rendering or decontamination
rules change. A missing or damaged previous build means rendering everything.

Parallelism. Planning, keying, rendering and checking are pure functions of (KB, spec,
benchmark index); the work is split into consecutive slices of KB nodes, forked workers do
them, and results come back in slice order, so the output is the same bytes as a serial
run (`PWD_BUILD_JOBS=1`).
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import marshal
import multiprocessing
import os
import tempfile
from array import array
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import accumulate, repeat
from pathlib import Path

from pwd_git.build.decontam import BenchIndex
from pwd_git.build.generate import GENERATOR_VERSION, Generator
from pwd_git.build.render import render, train_keys
from pwd_git.errors import PwdError

UNITS_FORMAT = 2
CHUNK = 2000  # KB nodes (or benchmark units) per task
PARALLEL_MIN = 20_000  # fewer units to render than this: no pool (forking costs more than it saves)


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

NO_KEY = b""  # the key of a unit that is never reused (patch examples are always rendered)


def _pointer(cache_root: Path, domain_prefix: str) -> Path:
    return cache_root / f"last-{hashlib.sha256(domain_prefix.encode()).hexdigest()[:12]}"


class PreviousBuild:
    """The unit index of the domain's last build: unit key -> (shard file, offset, length),
    and that build's shard files open for reading."""

    def __init__(self, units: dict[bytes, tuple[int, int, int]], fds: list[int], bench_fp: str):
        self.units, self.fds, self.bench_fp = units, fds, bench_fp

    @classmethod
    def open(cls, cache_root: Path, domain_prefix: str) -> PreviousBuild | None:
        """None when there is none, or it is from another generator version or unreadable."""
        fds: list[int] = []
        try:
            key = _pointer(cache_root, domain_prefix).read_text().strip()
            with open(cache_root / f"{key}.units", "rb") as fh:
                data = marshal.load(fh)
            if data.get("format") != UNITS_FORMAT or data.get("generator_version") != GENERATOR_VERSION:
                return None
            units: dict[bytes, tuple[int, int, int]] = {}
            for number, (rel, size, keys, lengths) in enumerate(data["shards"]):
                fds.append(os.open(cache_root / key / rel, os.O_RDONLY))
                if os.fstat(fds[-1]).st_size != size or sum(lengths) != size or len(keys) != len(lengths):
                    raise ValueError(f"{rel} does not match its unit index")
                offsets = accumulate(lengths, initial=0)  # one more than lengths: the end
                units.update(zip(keys, zip(repeat(number), offsets, lengths, strict=False), strict=True))
            units.pop(NO_KEY, None)
            return cls(units, fds, data["bench_fp"])
        except (OSError, ValueError, EOFError, TypeError, KeyError):
            for fd in fds:
                os.close(fd)
            return None

    def read(self, file_no: int, offset: int, length: int) -> bytes:
        data = os.pread(self.fds[file_no], length, offset)
        if len(data) != length:
            raise PwdError("a cached build changed while it was being read; build again")
        return data

    def close(self) -> None:
        for fd in self.fds:
            os.close(fd)
        self.fds = []


def save_index(cache_root: Path, key: str, domain_prefix: str, shards: list[tuple[str, int, list, array]],
               bench_fp: str) -> None:
    """Write `<key>.units` ((file, size, unit keys, unit lengths) per shard, in order) and point
    the domain's `last-` file at it, both atomically."""
    data = {"format": UNITS_FORMAT, "generator_version": GENERATOR_VERSION, "bench_fp": bench_fp,
            "shards": [(rel, size, keys, lengths.tolist()) for rel, size, keys, lengths in shards]}
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
    """What a task made of its units, in order: each unit's key (NO_KEY: not cacheable) and
    length, and how to write them: `plan` is a list of byte counts to take from `blob` (the
    rendered units, concatenated) and [file, start, end] ranges of the previous build."""

    shard: str
    keys: list[bytes] = field(default_factory=list)
    lengths: array = field(default_factory=lambda: array("Q"))
    plan: list = field(default_factory=list)
    blob: bytes = b""
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
    per_concept, keys, lengths, plan = out.per_concept, out.keys, out.lengths, out.plan
    blob: list[bytes] = []
    for unit in units:
        key = unit.key if unit.cacheable else NO_KEY
        hit = known.get(key) if unit.cacheable else None
        keys.append(key)
        if hit is not None and (reuse_train or not train):
            file_no, offset, length = hit
            last = plan[-1] if plan else None
            if last.__class__ is list and last[0] == file_no and last[2] == offset:
                last[2] += length
            else:
                plan.append([file_no, offset, offset + length])
        else:
            rendered = render(unit.spec)
            data = rendered.lines.encode()
            blob.append(data)
            length = len(data)
            if plan and plan[-1].__class__ is int:
                plan[-1] += length
            else:
                plan.append(length)
            out.rendered += 1
            if train:
                for number, hits in index.unit_hits(rendered.texts):
                    hits = index.settle(hits, train_keys(unit.spec), rendered.texts[number])
                    if hits:
                        out.leaky.append((rendered.ids[number], unit.spec[-1], hits))
        lengths.append(length)
        n = len(unit.templates)
        shapes[(unit.level, unit.templates)] += 1
        if train:
            for c in unit.concepts:
                per_concept[c] += n
    out.blob = b"".join(blob)
    for (level, templates), count in shapes.items():
        out.records += count * len(templates)
        out.levels[level] += count * len(templates)
        for t in templates:
            out.templates[t] += count
    return out


def to_render(job: Job, sample: int = 2000) -> int:
    """About how many units this build will render: all of them without a usable previous
    build, else an estimate from planning and keying every k-th node (a few ms)."""
    total = sum(len(items) for items in job.nodes.values())
    if not job.known:
        return total
    step = max(1, total // sample)
    misses = 0
    for shard, items in job.nodes.items():
        train = shard.startswith("train/")
        if train and not job.same_bench:
            misses += len(items)
            continue
        units = job.gen.train_units(shard, items[::step]) if train else items[::step]
        misses += step * sum(not u.cacheable or u.key not in job.known for u in units)
    return misses


def processes(job: Job, workers: int) -> int:
    """How many processes to use: `workers` when there is enough to render (planning and
    copying alone do not pay for forking a large process), else 1."""
    if workers <= 1 or "fork" not in multiprocessing.get_all_start_methods() or to_render(job) < PARALLEL_MIN:
        return 1
    return workers


def run_all(job: Job, workers: int) -> Iterator[Chunk]:
    """Every task's Chunk, in output order; in `workers` forked processes if more than one."""
    global _JOB
    todo = tasks(job.nodes)
    _JOB = job
    try:
        if workers <= 1:
            for task in todo:
                yield run_task(task)
            return
        gc.freeze()  # the workers share the parent's objects: keep the collector off their pages
        with multiprocessing.get_context("fork").Pool(min(workers, len(todo))) as pool:
            yield from pool.imap(run_task, todo)
    finally:
        _JOB = None
        gc.unfreeze()
