"""The KB working tree's file stamps (mtime_ns, size, inode), folder by folder, and their
stored form: what lets `validate` tell, without reading a file, which files changed since
its last run (see validate.py)."""

from __future__ import annotations

import os
from array import array
from pathlib import Path

from pwd_git.kb.loader import CONFIG_FILE, KB_DIRS, check_link

_YAML = (".yaml", ".yml")

Scan = dict  # folder ('' for the KB root) -> (file names, flat [mtime_ns, size, inode, ...])


def scan(root: Path, tracked: set[str] | None = None) -> Scan:
    """Every KB file's stamp, folder by folder. Plain strings and one flat int list per folder:
    this runs over every file on every run, so it avoids per-file objects."""
    out: Scan = {}
    if os.path.islink(os.path.join(root, CONFIG_FILE)):
        check_link(root, CONFIG_FILE)
    try:
        st = os.stat(os.path.join(root, CONFIG_FILE))
        config = ([CONFIG_FILE], [st.st_mtime_ns, st.st_size, st.st_ino]) if _is_file(st) else ([], [])
    except (FileNotFoundError, NotADirectoryError):
        config = ([], [])
    out[""] = config
    stack = [(os.path.join(root, d), d) for d in KB_DIRS]
    while stack:
        folder, rel = stack.pop()
        if os.path.islink(folder):
            check_link(root, rel)
        try:
            entries = os.scandir(folder)
        except (FileNotFoundError, NotADirectoryError):
            continue
        names, stamps = [], []
        with entries:
            for entry in entries:
                name = entry.name
                if entry.is_symlink():
                    check_link(root, f"{rel}/{name}")
                if entry.is_dir(follow_symlinks=False):
                    stack.append((entry.path, f"{rel}/{name}"))
                elif name.endswith(_YAML) and entry.is_file():
                    try:
                        st = entry.stat()
                    except FileNotFoundError:  # deleted while we looked
                        continue
                    names.append(name)
                    stamps += (st.st_mtime_ns, st.st_size, st.st_ino)
        out[rel] = (names, stamps)
    if tracked is not None:
        for rel, (names, stamps) in out.items():
            keep = [i for i, name in enumerate(names) if join_path(rel, name) in tracked]
            if len(keep) != len(names):
                out[rel] = ([names[i] for i in keep], [s for i in keep for s in stamps[3 * i:3 * i + 3]])
    return out


def _is_file(st: os.stat_result) -> bool:
    import stat

    return stat.S_ISREG(st.st_mode)


def join_path(folder: str, name: str) -> str:
    return f"{folder}/{name}" if folder else name


def file_stamps(scanned: Scan) -> list[tuple[str, tuple[int, int, int]]]:
    return [(join_path(rel, name), tuple(stamps[3 * i:3 * i + 3]))
            for rel, (names, stamps) in scanned.items() for i, name in enumerate(names)]


def to_row(names: list[str], stamps: list[int], racy_after: int) -> tuple[str, bytes]:
    """A folder's stored form. Stamps taken too close to their mtime are stored as never matching."""
    if any(stamps[i] >= racy_after for i in range(0, len(stamps), 3)):
        stamps = list(stamps)
        for i in range(0, len(stamps), 3):
            if stamps[i] >= racy_after:
                stamps[i] = -1
    return "/".join(names), array("q", stamps).tobytes()


def from_row(row: tuple[str, bytes] | None) -> dict[str, tuple[int, int, int]]:
    if row is None or not row[0]:
        return {}
    stamps = array("q")
    stamps.frombytes(row[1])
    return {name: tuple(stamps[3 * i:3 * i + 3]) for i, name in enumerate(row[0].split("/"))}
