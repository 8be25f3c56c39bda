"""A continue-mode fine-tune averaged with the model it started from, in weight space.

WiSE-FT (Wortsman et al., 2022): the weights `parent + w * (fine-tuned - parent)` keep most of
what the fine-tune fixed and less of what it broke, since the items a repair breaks sit near the
parent's decision boundary and move back with it. Done on the saved safetensors files, so it is
the same for the tiny model, a full fine-tune and a LoRA adapter (whose two factors are averaged
each, an approximation of averaging their product), whatever engine trained them.
"""

from __future__ import annotations

import contextlib
from pathlib import Path


def mix_with_parent(out: Path, parent: Path, weight: float) -> int:
    """Replace each floating tensor in `out`'s safetensors files by `parent + weight * (out -
    parent)` where the parent artifact has a tensor of that name and shape; returns how many were
    mixed (0: nothing in common, the fine-tune is kept as it is)."""
    import torch
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    mixed = 0
    with contextlib.ExitStack() as stack:  # each file opened once
        olds = {}
        for path in sorted(parent.glob("*.safetensors")):
            handle = stack.enter_context(safe_open(str(path), framework="pt"))
            olds.update(dict.fromkeys(handle.keys(), handle))
        for path in sorted(out.glob("*.safetensors")):
            with safe_open(str(path), framework="pt") as f:
                metadata = f.metadata()
            tensors = load_file(str(path))
            for name, new in tensors.items():
                old = olds[name].get_tensor(name) if name in olds and new.is_floating_point() else None
                if old is not None and old.shape == new.shape:
                    tensors[name] = torch.lerp(old.float(), new.float(), weight).to(new.dtype)
                    mixed += 1
            save_file(tensors, str(path), metadata=metadata)
    return mixed
