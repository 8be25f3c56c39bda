"""`git-pwd textconv FILE`: the git diff driver that makes shard diffs readable.

Registered by `git pwd init` as `diff.pwd-shards.textconv`; .gitattributes maps
`shards/**/*.jsonl` to it, so `git diff` shows one readable line per record.
"""

from __future__ import annotations

import json

import click


def summarize(line: str) -> str:
    try:
        rec = json.loads(line)
    except ValueError:
        return line.rstrip("\n")
    if "messages" in rec:
        turns = " => ".join(m.get("content", "") for m in rec["messages"])
        return f"[{rec.get('level')} {rec.get('template')}] {turns}  ({rec.get('source')}) #{rec.get('id')}"
    if "choices" in rec:
        choices = " | ".join(("*" if i == rec.get("answer") else "") + c for i, c in enumerate(rec["choices"]))
        head = f"[{rec.get('level')} {rec.get('template')}] {rec.get('question')}"
        return f"{head}  {{{choices}}}  ({rec.get('source')}) #{rec.get('id')}"
    return line.rstrip("\n")


@click.command(hidden=True)
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
def textconv(path: str) -> None:
    """Print a shard file as one readable line per record (git diff textconv)."""
    with open(path, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            if line.strip():
                click.echo(summarize(line))
