"""Repo-local git configuration the tool relies on (idempotent)."""

from __future__ import annotations

from pwd_git.git import Repo

SHARDS_DRIVER = "pwd-shards"


def configure_diff_driver(repo: Repo) -> None:
    """`git diff` on shards/*.jsonl shows readable records (see .gitattributes)."""
    repo.git("config", f"diff.{SHARDS_DRIVER}.textconv", "git-pwd textconv")
    repo.git("config", f"diff.{SHARDS_DRIVER}.cachetextconv", "true")


LOCK_DRIVER = "pwd-extract-lock"


def configure_lock_merge_driver(repo: Repo) -> None:
    """Two extraction branches merge extract.lock.json entry by entry (see .gitattributes)."""
    repo.git("config", f"merge.{LOCK_DRIVER}.name", "extract.lock.json, entry by entry (git pwd)")
    repo.git("config", f"merge.{LOCK_DRIVER}.driver", "git-pwd merge-lock %O %A %B %P")
