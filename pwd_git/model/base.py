"""Load a base model: the embedded tiny one is built, anything else is a Hugging Face causal
LM from a local path, a hub id already in the local cache, or a GGUF file. Never downloads."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from pwd_git.errors import PwdError, quote
from pwd_git.model import cache

#: The files of a saved model that loading reads: weights, configs, tokenizer.
MODEL_FILES = (".safetensors", ".bin", ".pt", ".pth", ".gguf", ".json", ".model", ".txt", ".tiktoken")


def local_path(base: str, root: Path) -> Path | None:
    """Where a local `base` is, relative to the domain root (never the current directory);
    None for a hub id."""
    path = root / Path(base).expanduser()
    if base.startswith(("/", "./", "../", "~")) or base.endswith(".gguf") or path.exists():
        return path.resolve()
    return None


def identity(base: str, root: Path) -> str:
    """What a non-tiny base model is, for cache and run keys: a local model by the content of
    its files (two spellings of one path agree; new weights at the same path do not), a hub id
    by the snapshot of the local Hugging Face cache it loads. Never touches the network."""
    path = local_path(base, root)
    if path is None:
        return _hub_identity(base)
    if path.is_file():
        files = [path]
    elif path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix in MODEL_FILES and not p.name.startswith("."))
    else:
        return f"missing:{path}"
    try:
        digests = cache.file_digests(files)
    except OSError as exc:
        raise PwdError(f"cannot read the base model at {path}: {exc.strerror}", location="pwd.yaml") from None
    listing = "".join(f"{p.name}\0{digests[p]}\n" for p in files)
    return "local:" + hashlib.sha256(listing.encode()).hexdigest()


def _hub_identity(base: str) -> str:
    """`hub:ID@COMMIT` for the snapshot `main` points at in the local HF cache, else `hub:ID`
    (not cached: loading it fails with the download hint)."""
    try:
        from huggingface_hub import try_to_load_from_cache

        found = try_to_load_from_cache(base, "config.json")
    except (ImportError, ValueError):  # no hub library, or not a valid repo id
        found = None
    return f"hub:{base}@{Path(found).parent.name}" if isinstance(found, str) else f"hub:{base}"


def load_pretrained(base: str, root: Path, quantization: str | None = None):
    """(model, tokenizer) for a non-tiny base; paths are relative to the domain root.
    `quantization` "4bit": the weights loaded in 4-bit NF4 by bitsandbytes (QLoRA; CUDA only)."""
    try:
        from transformers import AutoModelForCausalLM, AutoTokenizer
    except ImportError as exc:
        raise PwdError("training needs torch and transformers",
                       hint="pip install 'pwd-git[train]' (CPU: pip install torch==2.13.0 first)") from exc
    path = local_path(base, root)
    if path is not None:
        if not path.exists():
            raise PwdError(f"model path {quote(base)} does not exist (looked at {path})",
                           location="pwd.yaml", hint="set model.base to a folder saved with save_pretrained, "
                           "a .gguf file, a cached hub id, or 'tiny'")
        kwargs = {"gguf_file": path.name} if path.suffix == ".gguf" else {}
        source = path.parent if kwargs else path
        try:
            tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=True, **kwargs)
            model = AutoModelForCausalLM.from_pretrained(source, local_files_only=True, **kwargs,
                                                         **_quantized(quantization))
        except (OSError, ValueError, ImportError) as exc:
            raise PwdError(f"cannot load model from {path}: {exc}", location="pwd.yaml") from None
    else:
        try:
            tokenizer = AutoTokenizer.from_pretrained(base, local_files_only=True)
            model = AutoModelForCausalLM.from_pretrained(base, local_files_only=True, **_quantized(quantization))
        except (OSError, ValueError) as exc:
            raise PwdError(
                f"model {quote(base)} is not in the local Hugging Face cache, and pwd-git never downloads at run time "
                f"({type(exc).__name__})", location="pwd.yaml",
                hint=f"on a machine with network run `hf download {base}` (or copy its HF cache), "
                "or set model.base to a local path") from None
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer


def check_quantization(quantization: str | None) -> None:
    """QLoRA needs a CUDA GPU and bitsandbytes: say so before anything is loaded or trained."""
    if quantization is None:
        return
    import torch

    if not torch.cuda.is_available():
        raise PwdError(f"QLoRA (model.quantization: {quantization}) needs a CUDA GPU, and this machine has none",
                       location="pwd.yaml", hint="remove model.quantization to train LoRA on the full-precision base here")
    try:
        import bitsandbytes  # noqa: F401
    except ImportError:
        raise PwdError(f"model.quantization: {quantization} needs bitsandbytes", location="pwd.yaml",
                       hint="pip install 'pwd-git[qlora]'") from None


def _quantized(quantization: str | None) -> dict:
    """from_pretrained's arguments for `quantization` (none: full precision)."""
    if quantization is None:
        return {}
    check_quantization(quantization)
    import torch
    from transformers import BitsAndBytesConfig

    compute = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return {"quantization_config": BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                                                      bnb_4bit_use_double_quant=True, bnb_4bit_compute_dtype=compute),
            "device_map": {"": int(os.environ.get("LOCAL_RANK", "0"))}}  # this process's GPU under a launcher


def add_lora(model, lora: dict):
    from peft import LoraConfig, get_peft_model

    check_lora_targets(model, lora["target_modules"])
    config = LoraConfig(r=int(lora["r"]), lora_alpha=float(lora["alpha"]), lora_dropout=float(lora["dropout"]),
                        target_modules=lora["target_modules"], task_type="CAUSAL_LM")
    return get_peft_model(model, config)


def check_lora_targets(model, target_modules: str | list[str]) -> None:
    """Refuse `model.lora.target_modules` that names no module of the base model (peft's own
    error would surface as an internal error), listing the names that would match."""
    import re

    if target_modules == "all-linear":
        return
    names = [name for name, _ in model.named_modules() if name]
    if isinstance(target_modules, str):
        found = any(re.fullmatch(target_modules, name) for name in names)
    else:
        found = any(name == t or name.endswith("." + t) for name in names for t in target_modules)
    if found:
        return
    candidates = sorted({name.rpartition(".")[2] for name, module in model.named_modules()
                         if name and not any(module.children()) and getattr(getattr(module, "weight", None), "ndim", 0) == 2})
    raise PwdError(f"model.lora.target_modules {quote(target_modules)} matches no module of the base model",
                   location="pwd.yaml", hint="use some of " + ", ".join(candidates) + " (or 'all-linear')")
