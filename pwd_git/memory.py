"""Process-wide memory behaviour shared by the loaders and the build."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Loading and generation allocate hundreds of thousands of small acyclic objects; the
    cyclic GC would rescan them over and over (about half of a warm KB load)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
