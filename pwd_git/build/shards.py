"""Compile a KB revision into shards: generate, decontaminate, write atomically, cache.

Build key = sha256(KB tree OID, build-config hash, generator version). Builds are cached
under `.git/pwd/builds/<key>/`; the working tree's `shards/` is a copy of one of them, and
its MANIFEST.json names the key it was built from, which is how `--check` spots staleness.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pwd_git.build.decontam import find_leaks
from pwd_git.build.generate import GENERATOR_VERSION, generate
from pwd_git.errors import DataError
from pwd_git.git import tree_oid_of
from pwd_git.kb.loader import CONFIG_FILE, Domain, load_revision, load_worktree
from pwd_git.kb.model import KB

SHARDS_DIR = "shards"
MANIFEST = "MANIFEST.json"
MANIFEST_FORMAT = 1


_ENCODER = json.JSONEncoder(sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def dumps(obj: object) -> str:
    """The one JSON serialisation of shards: sorted keys, compact, UTF-8."""
    return _ENCODER.encode(obj)


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
    kb, diags = load_revision(domain, rev) if rev else load_worktree(domain)
    errors = [d for d in diags if d.severity == "error"]
    if errors:
        shown = "\n".join(d.render() for d in errors[:5])
        more = f"\n... and {len(errors) - 5} more" if len(errors) > 5 else ""
        raise DataError(f"the KB{' at ' + rev if rev else ''} does not validate ({len(errors)} error(s)):\n{shown}{more}",
                        hint="run `git pwd validate` and fix the errors, then build again")
    return kb


def build(domain: Domain, rev: str | None = None, *, to_worktree: bool | None = None,
          progress: Callable[[str], None] = lambda _msg: None) -> BuildResult:
    """Build `rev` (default: the working tree). Working-tree builds also refresh `shards/`."""
    to_worktree = rev is None if to_worktree is None else to_worktree
    progress("loading KB")
    kb = load_valid_kb(domain, rev)
    key = BuildKey.of(kb)
    cache_root = domain.repo.pwd_dir() / "builds"
    path = cache_root / key.key
    cached = (path / MANIFEST).is_file()
    if not cached:
        _compile(kb, key, cache_root, path, progress)
    manifest = json.loads((path / MANIFEST).read_text())
    if to_worktree and not _worktree_matches(domain.root / SHARDS_DIR, manifest):
        progress("writing shards/")
        _replace_dir(path, domain.root / SHARDS_DIR)
    return BuildResult(key, path, manifest, cached)


def _compile(kb: KB, key: BuildKey, cache_root: Path, dest: Path, progress: Callable[[str], None]) -> None:
    build_cfg = kb.config.get("build") or {}
    progress(f"generating from {len(kb.concepts)} concepts, {len(kb.statements)} statements, {len(kb.chains)} chains")
    out = generate(kb, seed=int(build_cfg.get("seed", 0)))
    train = [r for name in sorted(out.train) for r in out.train[name]]
    bench = [r for name in sorted(out.bench) for r in out.bench[name]]
    progress(f"decontaminating {len(bench)} benchmark items against {len(train)} training records")
    leaks = find_leaks(bench, train, ngram=int(build_cfg.get("ngram", 8)),
                       near_duplicate=float(build_cfg.get("near_duplicate", 0.8)))
    if leaks:
        raise DataError("benchmark leakage: " + f"{len(leaks)} benchmark item(s) overlap training data\n  "
                        + "\n  ".join(leak.render() for leak in leaks),
                        hint="reword the hand-written item or the training text it copies (or raise build.ngram)")
    cache_root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=cache_root))
    try:
        files = {}
        for split, groups in (("train", out.train), ("bench", out.bench)):
            for name in sorted(groups):
                rel = f"{split}/{name}.jsonl"
                (tmp / split).mkdir(exist_ok=True)
                digest = hashlib.sha256()
                with open(tmp / rel, "wb") as fh:  # streamed: never the whole shard in memory twice
                    for r in groups[name]:
                        line = (dumps(r) + "\n").encode()
                        digest.update(line)
                        fh.write(line)
                files[rel] = {"records": len(groups[name]), "sha256": digest.hexdigest()}
        manifest = _manifest(kb, key, files, train, bench)
        (tmp / "dataset_info.json").write_text(json.dumps(_dataset_info(out.train), indent=2, sort_keys=True) + "\n")
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
        try:
            os.rename(tmp, dest)
        except OSError:  # a concurrent build of the same key won the race: same bytes
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _manifest(kb: KB, key: BuildKey, files: dict, train: list[dict], bench: list[dict]) -> dict:
    per_concept: Counter[str] = Counter()
    for rec in train:
        per_concept.update(rec["traces"]["concepts"])
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
        "counts": {
            "train": dict(sorted(Counter(r["level"] for r in train).items())),
            "bench": dict(sorted(Counter(r["level"] for r in bench).items())),
            "templates": dict(sorted(Counter(r["template"] for r in [*train, *bench]).items())),
            "train_per_concept": dict(sorted(per_concept.items())),
        },
    }


def _dataset_info(train: dict[str, list[dict]]) -> dict:
    """LLaMA-Factory's dataset registry: point its `dataset_dir` at shards/."""
    return {f"pwd_{name}": {"file_name": f"train/{name}.jsonl", "formatting": "sharegpt",
                            "columns": {"messages": "messages"},
                            "tags": {"role_tag": "role", "content_tag": "content", "user_tag": "user",
                                     "assistant_tag": "assistant", "system_tag": "system"}}
            for name in sorted(train)}


def read_manifest(shards: Path) -> dict | None:
    try:
        return json.loads((shards / MANIFEST).read_text())
    except (OSError, ValueError):
        return None


def _worktree_matches(shards: Path, manifest: dict) -> bool:
    return not stale_files(shards, manifest) and read_manifest(shards) == manifest


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


def _replace_dir(source: Path, dest: Path) -> None:
    """Copy `source` over `dest` so that `dest` is never half-written: copy next to it, then swap."""
    tmp = Path(tempfile.mkdtemp(prefix=".shards-", dir=dest.parent))
    old = None
    try:
        shutil.copytree(source, tmp, dirs_exist_ok=True)
        if dest.exists():
            old = dest.with_name(f".{dest.name}-old-{os.getpid()}")
            os.rename(dest, old)
        os.rename(tmp, dest)
    except BaseException:
        if old is not None and not dest.exists():
            os.rename(old, dest)
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


@dataclass
class Freshness:
    fresh: bool
    reasons: list[str]
    key: BuildKey
    manifest: dict | None


def check(domain: Domain) -> Freshness:
    """Are the working tree's shards what `build` would produce for the working-tree KB?"""
    kb = load_valid_kb(domain, None)
    key = BuildKey.of(kb)
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

