"""Load a base model: the embedded tiny one is built, anything else is a Hugging Face causal
LM from a local path, a hub id already in the local cache, or a GGUF file. Never downloads."""

from __future__ import annotations

import os
from pathlib import Path

from pwd_git.errors import PwdError, quote


def _looks_like_path(base: str) -> bool:
    return base.startswith(("/", "./", "../", "~")) or base.endswith(".gguf") or os.path.exists(base)


def load_pretrained(base: str, root: Path):
    """(model, tokenizer) for a non-tiny base; paths are relative to the domain root."""
    try:
        from transformers import AutoModelForCausalLM, AutoTokenizer
    except ImportError as exc:
        raise PwdError("training needs torch and transformers",
                       hint="pip install 'pwd-git[train]' (CPU: pip install torch==2.13.0 first)") from exc
    if _looks_like_path(base):
        path = (root / Path(base).expanduser()).resolve()
        if not path.exists():
            raise PwdError(f"model path {quote(base)} does not exist (looked at {path})",
                           location="pwd.yaml", hint="set model.base to a folder saved with save_pretrained, "
                           "a .gguf file, a cached hub id, or 'tiny'")
        kwargs = {"gguf_file": path.name} if path.suffix == ".gguf" else {}
        source = path.parent if kwargs else path
        try:
            tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=True, **kwargs)
            model = AutoModelForCausalLM.from_pretrained(source, local_files_only=True, **kwargs)
        except (OSError, ValueError, ImportError) as exc:
            raise PwdError(f"cannot load model from {path}: {exc}", location="pwd.yaml") from None
    else:
        try:
            tokenizer = AutoTokenizer.from_pretrained(base, local_files_only=True)
            model = AutoModelForCausalLM.from_pretrained(base, local_files_only=True)
        except (OSError, ValueError) as exc:
            raise PwdError(
                f"model {quote(base)} is not in the local Hugging Face cache, and pwd-git never downloads at run time "
                f"({type(exc).__name__})", location="pwd.yaml",
                hint=f"on a machine with network run `huggingface-cli download {base}` (or copy its HF cache), "
                "or set model.base to a local path") from None
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer


def add_lora(model, lora: dict):
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(r=int(lora["r"]), lora_alpha=float(lora["alpha"]), lora_dropout=float(lora["dropout"]),
                        target_modules=lora["target_modules"], task_type="CAUSAL_LM")
    return get_peft_model(model, config)
