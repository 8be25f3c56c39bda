"""`git pwd export`: a revision's trained model as a standard Hugging Face folder, and its
benchmark as an lm-evaluation-harness task set, for tools that never heard of pwd-git."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pwd_git.errors import PwdError, quote


def check_destination(dest: Path) -> None:
    """`dest` is new or an empty folder: an export never overwrites anything (checked before
    any work, and again when the export is staged)."""
    if dest.is_symlink() or (dest.exists() and (not dest.is_dir() or any(dest.iterdir()))):
        raise PwdError(f"{quote(str(dest))} already exists and is not an empty folder",
                       hint="give a new or empty folder (nothing is overwritten)")


@contextmanager
def staged(dest: Path) -> Iterator[Path]:
    """A temporary folder next to `dest` that becomes `dest` when the block succeeds (an empty
    `dest` is replaced). On any error or Ctrl-C nothing is left behind."""
    check_destination(dest)
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.tmp-", dir=dest.parent))
    except OSError as exc:
        raise PwdError(f"cannot write to {quote(str(dest.parent))}: {exc.strerror}") from None
    try:
        yield tmp
        if dest.is_dir():
            dest.rmdir()
        os.rename(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise

