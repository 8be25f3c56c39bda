"""Compile a KB revision into shards: generate, decontaminate, write atomically, cache.

Build key = sha256(KB tree OID, build-config hash, generator version). Builds are cached
under `.git/pwd/builds/<key>/`; the working tree's `shards/` is a copy of one of them, and
its MANIFEST.json names the key it was built from, which is how `--check` spots staleness.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import secrets
import shutil
import stat
import tempfile
from array import array
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pwd_git.build.blind import guesses
from pwd_git.build.card import card, dataset_info
from pwd_git.build.decontam import BenchIndex, Leak, advice, merge, render_leaks
from pwd_git.build.generate import GENERATOR_VERSION, SHARD_FILES, Generator, Unit
from pwd_git.build.prune import prune, touch
from pwd_git.build.render import ENCODER, bench_probes, bench_questions, bench_sources, render
from pwd_git.build.units import Job, PreviousBuild, jobs, processes, run_all, save_index
from pwd_git.errors import DataError
from pwd_git.git import tree_oid_of
from pwd_git.kb.loader import CONFIG_FILE, Domain
from pwd_git.kb.model import KB
from pwd_git.memory import gc_paused

SHARDS_DIR = "shards"
WORKTREE_SCRATCH = ".shards-"  # scratch folders next to shards/ (only when .git/pwd is on another filesystem)
MANIFEST = "MANIFEST.json"
CARD = "README.md"  # the dataset card (pwd_git.build.card)
DATASET_INFO = "dataset_info.json"  # LLaMA-Factory's registry (pwd_git.build.card)
MANIFEST_FORMAT = 1
LEAK_LIMIT = 20  # leaks (benchmark item, training record) one failed build reports
log = logging.getLogger(__name__)


def dumps(obj: object) -> str:
    """The one JSON serialisation of shards: sorted keys, compact, UTF-8."""
    return ENCODER.encode(obj)


@dataclass(frozen=True)
class BuildKey:
    kb_tree: str  # git tree OID of concepts/, chains/, patches/
    config_hash: str  # the parts of pwd.yaml that change generated data
    key: str

    @classmethod
    def of(cls, kb: KB) -> BuildKey:
        kb_tree = tree_oid_of({p: o for p, o in kb.files.items() if p != CONFIG_FILE})
        relevant = {k: kb.config.get(k) for k in ("name", "predicates", "build")}
        config_hash = hashlib.sha256(dumps(relevant).encode()).hexdigest()
        key = hashlib.sha256(f"{kb_tree}\0{config_hash}\0{GENERATOR_VERSION}".encode()).hexdigest()
        return cls(kb_tree, config_hash, key)


@dataclass
class BuildResult:
    key: BuildKey
    path: Path  # the cached build folder
    manifest: dict
    cached: bool


def load_valid_kb(domain: Domain, rev: str | None) -> KB:
    """The KB at `rev` (or the working tree); refuse, pointing at `validate`, when it is invalid."""
    from pwd_git.revision import at

    return at(domain, rev).valid_kb()


def build(domain: Domain, rev: str | None = None, *, to_worktree: bool | None = None,
          progress: Callable[[str], None] = lambda _msg: None) -> BuildResult:
    """Build `rev` (default: the working tree). Working-tree builds also refresh `shards/`."""
    to_worktree = rev is None if to_worktree is None else to_worktree
    from pwd_git.revision import at, forget

    progress("loading KB")
    revision = at(domain, rev)
    kb, key = revision.valid_kb(), revision.build_key
    cache_root = domain.repo.pwd_dir() / "builds"
    path = cache_root / key.key
    cached = (path / MANIFEST).is_file()
    if cached:
        touch(path)
    else:
        _compile(kb, key, cache_root, path, progress, domain.prefix)
        prune(cache_root)
    manifest = json.loads((path / MANIFEST).read_text())
    if to_worktree:
        _sweep(domain.root)
    if to_worktree and not _worktree_matches(domain.root / SHARDS_DIR, path, manifest):
        progress("writing shards/")
        _replace_dir(path, domain.root / SHARDS_DIR, cache_root)
        forget(domain)  # the worktree's shards/ changed
    return BuildResult(key, path, manifest, cached)


def warn_about(manifest: dict) -> None:
    """The build's warnings (pwd_git.build.blind) on stderr: said by the verbs that report on
    the benchmark (`build`, `test`), not by every verb that reads the shards."""
    for warning in manifest.get("warnings", ()):
        log.warning("%s", warning["message"])


def _compile(kb: KB, key: BuildKey, cache_root: Path, dest: Path, progress: Callable[[str], None],
             domain_prefix: str = "") -> None:
    with gc_paused():
        _compile_units(kb, key, cache_root, dest, progress, domain_prefix)


def _compile_units(kb: KB, key: BuildKey, cache_root: Path, dest: Path, progress: Callable[[str], None],
                   domain_prefix: str) -> None:
    """Plan the benchmark and index its questions, then plan, render and decontaminate every
    unit (reusing what the last build rendered), and write the shards: see `pwd_git.build.units`."""
    build_cfg = kb.config.get("build") or {}
    gen = Generator(kb, seed=int(build_cfg.get("seed", 0)))
    progress(f"planning the benchmark of {sum(c.split == 'test' for c in kb.chains.values())} test chains")
    gen.prepare()
    bench = {f"bench/{name}": units for name, units in gen.bench_units().items()}
    bench_refs: list[tuple[Unit, int]] = []  # (unit, item number) of each benchmark question
    questions: list[str] = []
    probes: list = []
    for units in bench.values():
        for unit in units:
            qs = bench_questions(unit)
            questions += qs
            probes += bench_probes(unit)
            bench_refs += [(unit, j) for j in range(len(qs))]
    index = BenchIndex(questions, probes, ngram=int(build_cfg.get("ngram", 8)),
                       near_duplicate=float(build_cfg.get("near_duplicate", 0.8)))
    cache_root.mkdir(parents=True, exist_ok=True)
    previous = PreviousBuild.open(cache_root, domain_prefix)
    job = Job(gen, index, previous.units if previous else {},
              previous is not None and previous.bench_fp == index.fingerprint, gen.train_nodes() | bench)
    workers = processes(job, jobs())
    progress(f"generating from {len(kb.concepts)} concepts, {len(kb.statements)} statements, {len(kb.chains)} chains"
             f" and decontaminating against {len(questions)} benchmark questions"
             f"{f' ({workers} processes)' if workers > 1 else ''}"
             f"{'; reusing the last build' if previous else ''}")
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=cache_root))
    writer = None
    try:
        files: dict[str, dict] = {}
        index_entries: list[tuple] = []
        leaky: list[tuple] = []
        levels = {"train": Counter(), "bench": Counter()}
        templates: Counter[str] = Counter()
        per_concept: Counter[str] = Counter()
        n_units = n_rendered = 0
        with contextlib.closing(run_all(job, workers)) as chunks:
            for chunk in chunks:
                if writer is None or writer.shard != SHARD_FILES[chunk.shard]:
                    if writer is not None:
                        files[writer.rel], entry = writer.close()
                        index_entries.append(entry)
                    writer = _ShardWriter(tmp, SHARD_FILES[chunk.shard], previous)
                writer.add(chunk)
                n_units += len(chunk.keys)
                n_rendered += chunk.rendered
                levels[chunk.shard.split("/")[0]].update(chunk.levels)
                templates.update(chunk.templates)
                per_concept.update(chunk.per_concept)
                leaky += chunk.leaky
            files[writer.rel], entry = writer.close()
            index_entries.append(entry)
        progress(f"wrote {n_units} units: {n_rendered} rendered, {n_units - n_rendered} reused from the last build")
        leaks = merge(index, ((rid, hits) for rid, _source, hits in leaky), LEAK_LIMIT)  # in record order
        if leaks:
            sources = {rid: source for rid, source, _hits in reversed(leaky)}
            found = [_leak(index, bench_refs, sources, *leak) for leak in leaks]
            items = len({leak.bench_id for leak in found})
            raise DataError(f"benchmark leakage: {'at least ' if len(leaks) >= LEAK_LIMIT else ''}{items} benchmark "
                            f"item{'s' if items != 1 else ''} can be answered by copying training data\n  "
                            + "\n  ".join(render_leaks(found)), hint=advice(found, index.ngram))
        counts = {"train": dict(sorted(levels["train"].items())), "bench": dict(sorted(levels["bench"].items())),
                  "templates": dict(sorted(templates.items())), "train_per_concept": dict(sorted(per_concept.items()))}
        manifest = _manifest(kb, key, files, counts, guesses(u for units in bench.values() for u in units))
        (tmp / DATASET_INFO).write_text(json.dumps(dataset_info(files), indent=2, sort_keys=True) + "\n")
        (tmp / CARD).write_text(card(str(kb.config["name"]), files), encoding="utf-8")
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
        try:
            os.rename(tmp, dest)
        except OSError:  # a concurrent build of the same key won the race: same bytes
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        if writer is not None:
            writer.fh.close()
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        if previous is not None:
            previous.close()
    save_index(cache_root, key.key, domain_prefix, index_entries, index.fingerprint)


class _ShardWriter:
    """One shard file, written chunk by chunk: rendered bytes as they come, byte ranges of the
    previous build copied (ranges adjacent across chunks together); collects the unit index."""

    def __init__(self, tmp: Path, shard: str, previous: PreviousBuild | None):
        self.shard, self.rel, self.previous = shard, f"{shard}.jsonl", previous
        (tmp / shard.split("/")[0]).mkdir(exist_ok=True)
        self.fh = open(tmp / self.rel, "wb")  # noqa: SIM115 -- closed in close(), or with the temp folder
        self.digest = hashlib.sha256()
        self.records = 0
        self.keys: list[bytes] = []
        self.lengths = array("Q")
        self.run: list | None = None  # [file, start, end] of previous-build bytes not copied yet

    def add(self, chunk) -> None:
        self.records += chunk.records
        self.keys += chunk.keys
        self.lengths += chunk.lengths
        blob, at = chunk.blob, 0
        for part in chunk.plan:
            if part.__class__ is int:  # the next `part` bytes of the blob
                self._flush()
                _append(self.fh, self.digest, blob if part == len(blob) else blob[at:at + part])
                at += part
            elif self.run and self.run[0] == part[0] and self.run[2] == part[1]:
                self.run[2] = part[2]
            else:
                self._flush()
                self.run = part

    def _flush(self, piece: int = 1 << 24) -> None:
        if self.run:
            file_no, start, end = self.run
            self.run = None
            for at in range(start, end, piece):
                _append(self.fh, self.digest, self.previous.read(file_no, at, min(piece, end - at)))

    def close(self) -> tuple[dict, tuple[str, int, list, array]]:
        """The manifest entry and the unit index entry of the shard."""
        try:
            self._flush()
        finally:
            self.fh.close()
        size = sum(self.lengths)
        return {"records": self.records, "sha256": self.digest.hexdigest()}, (self.rel, size, self.keys, self.lengths)


def _append(fh, digest, data: bytes) -> None:
    digest.update(data)
    fh.write(data)


def _leak(index: BenchIndex, bench_refs: list, sources: dict, i: int, rid: str, code: int) -> Leak:
    """Leak report for benchmark question i against the training record with id `rid`."""
    unit, j = bench_refs[i]
    probe = index.probes[i]
    return Leak(render(unit.spec).ids[j], bench_sources(unit)[j], rid, sources[rid], index.reason(code),
                probe.node if probe else None)


def _manifest(kb: KB, key: BuildKey, files: dict, counts: dict, warnings: list[dict]) -> dict:
    shards_hash = hashlib.sha256(dumps(files).encode()).hexdigest()
    return {
        "format": MANIFEST_FORMAT,
        "generator_version": GENERATOR_VERSION,
        "build_key": key.key,
        "kb_tree": key.kb_tree,
        "config_hash": key.config_hash,
        "shards_hash": shards_hash,
        "kb": kb.summary(),
        "files": files,
        "counts": counts,
        "warnings": warnings,  # what the build says of the data without failing on it (pwd_git.build.blind)
    }


def read_manifest(shards: Path) -> dict | None:
    try:
        return json.loads((shards / MANIFEST).read_text())
    except (OSError, ValueError):
        return None


def _worktree_matches(shards: Path, build_dir: Path, manifest: dict) -> bool:
    """shards/ holds the build: its manifest, shard files, card and LLaMA-Factory registry."""
    return (read_manifest(shards) == manifest and not stale_files(shards, manifest)
            and all(_read(shards / name) == _read(build_dir / name) for name in (CARD, DATASET_INFO)))


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None


def stale_files(shards: Path, manifest: dict) -> list[str]:
    """Files listed in `manifest` whose bytes on disk differ (or are missing)."""
    bad = []
    for rel, meta in manifest.get("files", {}).items():
        try:
            digest = hashlib.sha256((shards / rel).read_bytes()).hexdigest()
        except OSError:
            digest = None
        if digest != meta.get("sha256"):
            bad.append(rel)
    return bad


def _replace_dir(source: Path, dest: Path, scratch: Path) -> None:
    """Copy `source` over `dest` so that `dest` is never half-written: copy into a scratch
    folder, then swap with two renames. The scratch folders are `.tmp-*` in `scratch`
    (.git/pwd/builds, where prune removes what a killed build left), so a killed build never
    leaves a folder in the worktree for `git add -A` to commit. Only when .git/pwd is on
    another filesystem than `dest` (a linked worktree on another disk; a rename cannot cross)
    are they `.shards-<pid>-*` next to `dest`; each build removes those of dead processes (_sweep).
    `dest` gets the mode of a new folder (the umask), not the private one of the cache."""
    if os.stat(scratch).st_dev == os.stat(dest.parent).st_dev:
        where, prefix = scratch, ".tmp-"
    else:
        where, prefix = dest.parent, f"{WORKTREE_SCRATCH}{os.getpid()}-"
    tmp = where / f"{prefix}{secrets.token_hex(6)}"
    tmp.mkdir()
    old = None
    try:
        mode = stat.S_IMODE(tmp.stat().st_mode)
        shutil.copytree(source, tmp, dirs_exist_ok=True)
        os.chmod(tmp, mode)  # copytree gave it the mode of `source`
        if dest.exists():
            old = where / f"{prefix}{secrets.token_hex(6)}"
            os.rename(dest, old)
        os.rename(tmp, dest)
    except BaseException:
        if old is not None and not dest.exists():
            os.rename(old, dest)
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _sweep(folder: Path) -> None:
    """Remove the `.shards-*` folders next to shards/ that a killed build left (an earlier
    pwd-git's, or one whose .git/pwd is on another filesystem), unless their process still runs."""
    for entry in folder.glob(WORKTREE_SCRATCH + "*"):
        pid = re.match(rf"{re.escape(WORKTREE_SCRATCH)}(\d+)-", entry.name)
        if entry.is_symlink() or not entry.is_dir() or (pid and _alive(int(pid.group(1)))):
            continue
        shutil.rmtree(entry, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):
        return False
    except PermissionError:
        return True
    return True


@dataclass
class Freshness:
    fresh: bool
    reasons: list[str]
    key: BuildKey
    manifest: dict | None


def check(domain: Domain) -> Freshness:
    """Are the working tree's shards what `build` would produce for the working-tree KB?"""
    from pwd_git.revision import at

    revision = at(domain, None)
    revision.valid_kb()
    key = revision.build_key
    shards = domain.root / SHARDS_DIR
    manifest = read_manifest(shards)
    reasons = []
    if manifest is None:
        reasons.append(f"{SHARDS_DIR}/{MANIFEST} is missing or unreadable")
    else:
        if manifest.get("build_key") != key.key:
            if manifest.get("kb_tree") != key.kb_tree:
                built_from = str(manifest.get("kb_tree", "?"))[:10]
                reasons.append(f"the KB changed since the shards were built (built from tree {built_from}, "
                               f"KB is now {key.kb_tree[:10]})")
            elif manifest.get("config_hash") != key.config_hash:
                reasons.append("pwd.yaml's build settings changed since the shards were built")
            else:
                reasons.append(f"the shards were built by generator version {manifest.get('generator_version')}, "
                               f"this pwd-git generates version {GENERATOR_VERSION}")
        reasons.extend(f"{SHARDS_DIR}/{rel} does not match the manifest (edited by hand?)"
                       for rel in stale_files(shards, manifest))
    return Freshness(not reasons, reasons, key, manifest)

