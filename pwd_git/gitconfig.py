"""Repo-local git configuration the tool relies on (idempotent)."""

from __future__ import annotations

from pwd_git.git import Repo

SHARDS_DRIVER = "pwd-shards"


def configure_diff_driver(repo: Repo) -> None:
    """`git diff` on shards/*.jsonl shows readable records (see .gitattributes)."""
    repo.git("config", f"diff.{SHARDS_DRIVER}.textconv", "git-pwd textconv")
    repo.git("config", f"diff.{SHARDS_DRIVER}.cachetextconv", "true")
