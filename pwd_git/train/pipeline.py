"""`train` as a library call: shards of a revision -> a cached model artifact."""

from __future__ import annotations

import hashlib
import json
import random
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from pwd_git.build.shards import SHARDS_DIR, build, check
from pwd_git.errors import DataError, PwdError, quote
from pwd_git.kb.loader import Domain
from pwd_git.model import cache
from pwd_git.model.settings import TINY, TrainSettings, train_settings
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
        stats = _fit(domain, shards, settings, records, parent, tmp, on_step, cache.run_dir(key), log)
        if parent is not None and settings.continue_mix < 1:
            from pwd_git.train.mix import mix_with_parent

            stats["mixed_tensors"] = mix_with_parent(tmp, parent.path, settings.continue_mix)
        return {"base": settings.base, "base_id": settings.base_id, "settings": settings.config_hash(),
                "adapter": bool(settings.lora), "quantization": settings.quantization,
                "kb_tree": shards.manifest["kb_tree"], "shards_hash": shards.manifest["shards_hash"],
                "parent": parent.key if parent else None, "stats": stats,
                "train_seconds": round(time.perf_counter() - start, 2), "train_records": [r["id"] for r in records]}

    from pwd_git.train.hf import barrier, world

    rank = world()
    if rank.size > 1 and settings.is_tiny:
        raise PwdError(f"the tiny model trains in one process, and this is a {rank.size}-process launch",
                       hint="run `git pwd train` without torchrun / accelerate launch (those are for Hugging Face bases)")
    if not rank.is_main:  # trains along, and uses what the main process publishes
        _fit(domain, shards, settings, records, parent, None, on_step, cache.run_dir(key), log)
        barrier()
        meta = cache.lookup(key)
        if meta is None:
            raise PwdError(f"process {rank.rank} of the launch trained, but finds no model {key[:12]} published by process 0",
                           hint="see process 0's output; every node of a launch needs one PWD_GIT_CACHE on a shared disk")
        return TrainResult(key, cache.model_dir(key), meta, False)
    if rank.size > 1:  # a launch: its processes wait for each other (barrier), never for a lock
        return _publish(key, write)
    with cache.training(key, log):
        meta = cache.lookup(key)  # trained by the process this one waited for
        if meta is not None:
            log(f"model {key[:12]} was trained meanwhile by another process: using it")
            return TrainResult(key, cache.model_dir(key), meta, True)
        return _publish(key, write)


def _publish(key: str, write: Callable[[Path], dict]) -> TrainResult:
    """Train through `write` into the cache under `key`; the checkpoints go once it is there."""
    from pwd_git.train.hf import barrier

    try:
        meta = cache.store(key, write)
    except DataError:  # diverged: its checkpoints would resume into the same divergence
        shutil.rmtree(cache.run_dir(key), ignore_errors=True)
        raise
    barrier()
    shutil.rmtree(cache.run_dir(key), ignore_errors=True)
    return TrainResult(key, cache.model_dir(key), meta, False)


def _fit(domain: Domain, shards: Shards, settings: TrainSettings, records: list[dict], parent: TrainResult | None,
         out: Path | None, on_step, run_dir: Path, log: Callable[[str], None]) -> dict:
    """Train and save the model to `out` (None: a helper process of a launch, which saves nothing)."""
    try:
        import torch  # noqa: F401
    except ImportError as exc:
        raise PwdError("training needs torch, transformers and peft",
                       hint="pip install torch==2.13.0 'pwd-git[train]'") from exc
    from pwd_git.model import quiet_transformers
    from pwd_git.train.loop import set_determinism

    quiet_transformers()

    set_determinism(settings.seed, settings.threads)
    settings = settings.for_records(len(records))
    if parent is not None:  # a fine-tune of the parent model over the new records and the replay
        settings = replace(settings, epochs=settings.continue_epochs, lr=settings.continue_lr)
    if not settings.is_tiny:
        stats = _fit_hf(domain, settings, records, parent, out, on_step, run_dir, log)
    else:
        from pwd_git.model.tiny import DEFAULT_ARCH, PREFIX_NOISE, build_model, train_tokenizer
        from pwd_git.train.loop import train_model

        if parent is not None:
            model, tokenizer = load_model(parent.path, parent.meta, domain)
        else:
            arch = {**DEFAULT_ARCH, **settings.arch}
            tokenizer = train_tokenizer((t for r in records for t in turns_of(r)), int(arch["vocab_size"]))
            model = build_model(tokenizer, arch, settings.seed)
        stats = train_model(model, tokenizer, records, epochs=settings.epochs, lr=settings.lr,
                            batch_size=settings.batch_size, seed=settings.seed, max_length=settings.max_length,
                            prefix_noise=PREFIX_NOISE, device=device(), on_step=on_step)
        model.save_pretrained(out, safe_serialization=True)
        tokenizer.save_pretrained(out)
    return {"steps": stats.steps, "epochs": stats.epochs, "final_loss": round(stats.final_loss, 6),
            "examples": stats.examples}


def _fit_hf(domain: Domain, settings: TrainSettings, records: list[dict], parent: TrainResult | None,
            out: Path | None, on_step, run_dir: Path, log: Callable[[str], None]):
    """A Hugging Face base (or the parent model it continues from) through train/hf.py's Trainer."""
    from pwd_git.model.base import add_lora, load_pretrained
    from pwd_git.model.text import rendering
    from pwd_git.train import hf

    cuda = device() == "cuda"
    hf.check(settings, cuda)
    if parent is not None:
        model, tokenizer = load_model(parent.path, parent.meta, domain)
        if settings.lora:
            for name, param in model.named_parameters():
                param.requires_grad = "lora_" in name
    else:
        model, tokenizer = load_pretrained(settings.base, domain.root, settings.quantization)
        if settings.quantization:
            from peft import prepare_model_for_kbit_training

            model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=settings.gradient_checkpointing)
        if settings.lora:
            model = add_lora(model, settings.lora)
    stats = hf.fit(model, tokenizer, rendering(tokenizer, tiny=False), records, settings, run_dir, out, cuda=cuda,
                   on_step=on_step, log=log)
    if out is not None:
        tokenizer.save_pretrained(out)
    return stats


def load_model(path: Path, meta: dict, domain: Domain):
    """(model, tokenizer) of a cached artifact, ready for scoring."""
    from pwd_git.model import quiet_transformers

    quiet_transformers()
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    if not is_adapter(meta):  # the tiny model, or a full fine-tune: the whole model is in the artifact
        model = AutoModelForCausalLM.from_pretrained(path, local_files_only=True)
    else:
        from peft import PeftModel

        from pwd_git.model.base import load_pretrained

        base, _ = load_pretrained(meta["base"], domain.root, meta.get("quantization"))
        model = PeftModel.from_pretrained(base, path, is_trainable=True)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    if not meta.get("quantization"):  # a quantized base is already on its GPU (and cannot be moved)
        model.to(device())
    model.eval()
    return model, tokenizer


def is_adapter(meta: dict) -> bool:
    """Whether an artifact is a LoRA adapter over its base (entries from before full fine-tuning
    existed: every Hugging Face base was)."""
    return bool(meta.get("adapter", meta["base"] != TINY))


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
    return parent if same_base and is_adapter(parent.meta) == bool(settings.lora) else None


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
