"""`train` as a library call: shards of a revision -> a cached model artifact."""

from __future__ import annotations

import hashlib
import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pwd_git.build.shards import SHARDS_DIR, build, check
from pwd_git.errors import DataError, PwdError, quote
from pwd_git.kb.loader import Domain
from pwd_git.model import cache
from pwd_git.model.settings import TrainSettings, train_settings
from pwd_git.model.text import turns_of

if TYPE_CHECKING:
    from pwd_git.revision import Revision


@dataclass
class Shards:
    """A built revision: where its shards are and what they hold."""

    path: Path
    manifest: dict
    config: dict  # the pwd.yaml of that revision
    rev: str | None  # None = working tree

    def records(self, split: str) -> list[dict]:
        out = []
        for rel in sorted(self.manifest["files"]):
            if rel.startswith(split + "/"):
                with open(self.path / rel, encoding="utf-8") as fh:
                    out.extend(json.loads(line) for line in fh if line.strip())
        return out


def shards_for(domain: Domain, rev: str | None) -> Shards:
    """Working tree: the committed-to-be shards/ (must be fresh). A revision: built from git.
    (The shards of `pwd_git.revision.at(domain, rev)`, built or checked once.)"""
    from pwd_git.revision import at

    return at(domain, rev).shards


def open_shards(revision: Revision) -> Shards:
    """What Revision.shards holds: the build of a commit (from the build cache), or the worktree's
    fresh shards/ (stale shards are refused with the command that fixes them)."""
    domain = revision.domain
    if revision.commit is None:
        fresh = check(domain)
        if not fresh.fresh:
            raise DataError(f"{SHARDS_DIR}/ is stale or missing: " + "; ".join(fresh.reasons),
                            hint="run `git pwd build` first")
        return Shards(domain.root / SHARDS_DIR, fresh.manifest, revision.config, None)
    result = build(domain, revision.commit, to_worktree=False)
    return Shards(result.path, result.manifest, revision.config, revision.commit)


def train_hash(manifest: dict) -> str:
    """Hash of the training shards alone: a benchmark-only change must not retrain the model."""
    files = {k: v["sha256"] for k, v in sorted(manifest["files"].items()) if k.startswith("train/")}
    return hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()


def model_key(shards: Shards, settings: TrainSettings, parent_key: str | None = None) -> str:
    parts = [train_hash(shards.manifest), settings.config_hash(), settings.base_id, parent_key or ""]
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


_MAX_CONTINUE_DEPTH = 64  # how far back a chain of continue-mode models is followed


@dataclass
class TrainResult:
    key: str
    path: Path
    meta: dict
    cached: bool


def device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def plan(domain: Domain, rev: str | None) -> tuple[Shards, TrainSettings, TrainResult | None, str]:
    """What training `rev` means: its shards, settings, the parent model it continues from
    (continue mode, when that model is cached) and the resulting model key."""
    shards = shards_for(domain, rev)
    settings = train_settings(shards.config, domain.root)
    if settings.mode not in ("scratch", "continue"):
        raise DataError(f"train.mode must be 'scratch' or 'continue', not {quote(settings.mode)}", location="pwd.yaml")
    parent = _parent_model(domain, rev, shards, settings) if settings.mode == "continue" else None
    return shards, settings, parent, model_key(shards, settings, parent.key if parent else None)


def train(domain: Domain, rev: str | None = None, *, on_step: Callable[[int, int, float], None] | None = None,
          log: Callable[[str], None] = lambda _m: None) -> TrainResult:
    """Train (or fetch from cache) the model for `rev`'s shards."""
    shards, settings, parent, key = plan(domain, rev)
    meta = cache.lookup(key)
    if meta is not None:
        return TrainResult(key, cache.model_dir(key), meta, True)
    records = shards.records("train")
    if not records:
        raise DataError("there are no training records in the shards", hint="add concepts to the KB and rebuild")
    if parent is not None:
        records = _with_replay(records, parent, settings)
        log(f"continuing from parent model {parent.key[:12]} with {len(records)} records (replay included)")

    def write(tmp: Path) -> dict:
        start = time.perf_counter()
        stats = _fit(domain, shards, settings, records, parent, tmp, on_step)
        return {"base": settings.base, "base_id": settings.base_id, "settings": settings.config_hash(),
                "kb_tree": shards.manifest["kb_tree"], "shards_hash": shards.manifest["shards_hash"],
                "parent": parent.key if parent else None, "stats": stats,
                "train_seconds": round(time.perf_counter() - start, 2), "train_records": [r["id"] for r in records]}

    meta = cache.store(key, write)
    return TrainResult(key, cache.model_dir(key), meta, False)


def _fit(domain: Domain, shards: Shards, settings: TrainSettings, records: list[dict], parent: TrainResult | None,
         out: Path, on_step) -> dict:
    try:
        import torch  # noqa: F401
    except ImportError as exc:
        raise PwdError("training needs torch, transformers and peft",
                       hint="pip install torch==2.13.0 'pwd-git[train]'") from exc
    from pwd_git.model import quiet_transformers
    from pwd_git.model.tiny import DEFAULT_ARCH, PREFIX_NOISE, build_model, train_tokenizer
    from pwd_git.train.loop import set_determinism, train_model

    quiet_transformers()

    set_determinism(settings.seed, settings.threads)
    if parent is not None:
        model, tokenizer = load_model(parent.path, parent.meta, domain)
        if not settings.is_tiny:
            for name, param in model.named_parameters():
                param.requires_grad = "lora_" in name
    elif settings.is_tiny:
        arch = {**DEFAULT_ARCH, **settings.arch}
        tokenizer = train_tokenizer((t for r in records for t in turns_of(r)), int(arch["vocab_size"]))
        model = build_model(tokenizer, arch, settings.seed)
    else:
        from pwd_git.model.base import add_lora, load_pretrained

        model, tokenizer = load_pretrained(settings.base, domain.root)
        model = add_lora(model, settings.lora)
    epochs = settings.continue_epochs if parent is not None else settings.epochs
    stats = train_model(model, tokenizer, records, epochs=epochs, lr=settings.lr,
                        batch_size=settings.batch_size, seed=settings.seed, max_length=settings.max_length,
                        prefix_noise=PREFIX_NOISE if settings.is_tiny else 0.0, device=device(), on_step=on_step)
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    return {"steps": stats.steps, "epochs": stats.epochs, "final_loss": round(stats.final_loss, 6),
            "examples": stats.examples}


def load_model(path: Path, meta: dict, domain: Domain):
    """(model, tokenizer) of a cached artifact, ready for scoring."""
    from pwd_git.model import quiet_transformers

    quiet_transformers()
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    if meta["base"] == "tiny":
        model = AutoModelForCausalLM.from_pretrained(path, local_files_only=True)
    else:
        from peft import PeftModel

        from pwd_git.model.base import load_pretrained

        base, _ = load_pretrained(meta["base"], domain.root)
        model = PeftModel.from_pretrained(base, path, is_trainable=True)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    model.to(device())
    model.eval()
    return model, tokenizer


def _parent_model(domain: Domain, rev: str | None, shards: Shards, settings: TrainSettings) -> TrainResult | None:
    """The parent commit's cached model (continue mode); None falls back to scratch. The
    working tree continues from HEAD, unless it is HEAD's data: then from HEAD's parent."""
    if rev is None:
        if domain.repo.tree_oid("HEAD") is None:
            return None
        head = shards_for(domain, "HEAD")
        rev = "HEAD" if head.manifest["build_key"] == shards.manifest["build_key"] else None
    parent = _cached_model(domain, f"{rev}^" if rev else "HEAD")
    # an entry from before base_id was recorded is found only by a tiny model's key (the others
    # changed), and the tiny model's identity is its name
    same_base = parent is not None and parent.meta.get("base_id", parent.meta["base"]) == settings.base_id
    return parent if same_base else None


def _cached_model(domain: Domain, rev: str, depth: int = 0) -> TrainResult | None:
    """The cached model of `rev` as that commit's own pwd.yaml trains it (a continue-mode
    commit's key chains through its parents' keys); None when it was never trained here."""
    try:
        shards = shards_for(domain, rev)
    except PwdError:
        return None
    settings = train_settings(shards.config, domain.root)
    parent = None
    if settings.mode == "continue" and depth < _MAX_CONTINUE_DEPTH:
        parent = _cached_model(domain, f"{rev}^", depth + 1)
    key = model_key(shards, settings, parent.key if parent else None)
    meta = cache.lookup(key)
    return TrainResult(key, cache.model_dir(key), meta, True) if meta else None


def _with_replay(records: list[dict], parent: TrainResult, settings: TrainSettings) -> list[dict]:
    """New records plus the old ones: all of them by default (rehearsal: a small KB costs little
    to replay, and what is not replayed drifts), or a seeded sample of `train.replay_ratio` x
    the new count."""
    old_ids = set(parent.meta.get("train_records", []))
    new = [r for r in records if r["id"] not in old_ids]
    old = [r for r in records if r["id"] in old_ids]
    if not new:
        return records
    if settings.replay_ratio is None:
        return new + old
    rng = random.Random(settings.seed)
    replay = rng.sample(old, min(len(old), int(len(new) * settings.replay_ratio)))
    return new + replay
