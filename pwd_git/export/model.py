"""`export model`: the trained model of a revision as one standard Hugging Face folder.

A LoRA adapter is merged into its base (peft `merge_and_unload`), so the folder is a plain
causal LM: config.json, model.safetensors, the tokenizer, no custom code. That is what
`AutoModelForCausalLM.from_pretrained(DIR)` and vLLM (`vllm serve DIR`) load. The base is
loaded the way training loaded it (pwd_git.model.base), which is what makes an adapter trained
on a .gguf file usable at all: peft alone would look for the base in the GGUF file's folder.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from pwd_git import __version__
from pwd_git.errors import PwdError
from pwd_git.export import check_destination, staged
from pwd_git.kb.loader import Domain
from pwd_git.model import cache

#: Where the folder says which commit, KB and model it came from (tools ignore unknown files).
PROVENANCE = "pwd-export.json"


@dataclass
class ModelExport:
    path: Path
    model_key: str
    base: str
    merged: bool  # a LoRA adapter was merged into its base (False: the tiny model, already whole)
    commit: str | None  # None: the working tree's model


def export_model(domain: Domain, rev: str | None, dest: Path) -> ModelExport:
    """Write the cached model of `rev` (None: the working tree) to `dest`, merged. Training is
    never started here: a revision without a trained model is an error naming the command."""
    from pwd_git.train.pipeline import is_adapter, load_model, plan

    check_destination(dest)
    shards, settings, _parent, key = plan(domain, rev)
    meta = cache.lookup(key)
    if meta is None:
        which = f"revision {rev}" if rev else "the working tree"
        raise PwdError(f"{which} has no trained model (model {key[:12]} is not in the model cache)",
                       hint=f"train it first: `git pwd train{f' --rev {rev}' if rev else ''}`, then export again")
    with staged(dest) as tmp:
        model, tokenizer = load_model(cache.model_dir(key), meta, domain)
        merged = is_adapter(meta)  # a LoRA adapter is merged; the tiny model or a full fine-tune is whole
        if merged:
            model = model.merge_and_unload()
        model.to("cpu")
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        commit = domain.repo.resolve(rev) if rev else None
        (tmp / PROVENANCE).write_text(json.dumps(
            {"tool": __version__, "model_key": key, "base": settings.base, "base_id": settings.base_id, "commit": commit,
             "kb_tree": shards.manifest["kb_tree"], "build_key": shards.manifest["build_key"], "merged_lora": merged},
            indent=2, sort_keys=True) + "\n")
    return ModelExport(dest, key, settings.base, merged, commit)
