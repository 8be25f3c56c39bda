"""`git-pwd merge-lock BASE OURS THEIRS [PATH]`: the merge driver of extract.lock.json.

Registered by `git pwd init` and `git pwd extract` as `merge.pwd-extract-lock.driver`;
.gitattributes maps `extract.lock.json` to it, so two extraction branches of different
documents merge without a conflict in the lock.
"""

from __future__ import annotations

from pathlib import Path

import click


@click.command(hidden=True)
@click.argument("base", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("ours", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("theirs", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("path", required=False, default="extract.lock.json")
def merge_lock(base: Path, ours: Path, theirs: Path, path: str) -> None:
    """Merge extract.lock.json entry by entry into OURS; exit 1 on entries both sides changed."""
    from pwd_git.extract.manifest import merge_manifests

    merged, conflicts = merge_manifests(base.read_bytes(), ours.read_bytes(), theirs.read_bytes())
    ours.write_bytes(merged)
    if conflicts:
        click.echo(f"{path}: both sides changed {', '.join(conflicts[:5])}" + (" ..." if len(conflicts) > 5 else "")
                   + "; kept ours: resolve the concept files, commit, then run `git pwd extract` to redo them", err=True)
        raise SystemExit(1)
