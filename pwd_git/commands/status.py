"""`git pwd status`: the state of the domain at a glance."""

from __future__ import annotations

import click

from pwd_git.build.shards import SHARDS_DIR, check
from pwd_git.errors import DataError
from pwd_git.git import unmerged_branches
from pwd_git.kb.loader import Domain
from pwd_git.kb.validate import validate
from pwd_git.kb.walk import holdout
from pwd_git.output import echo_json, format_option
from pwd_git.repair import PATCH_BRANCH_PREFIX, REPAIR_BRANCH_PREFIX
from pwd_git.results import ResultsStore


@click.command()
@format_option("json")
def status(fmt: str) -> None:
    """KB size, what build.holdout keeps out of training, validation state, whether shards/
    is fresh, the last build key, and the patch and repair branches not merged yet (with the
    latest verdict on each tip, or that it is untested)."""
    domain = Domain.find(".")
    report = validate(domain)
    kb = report.kb
    info = {"domain": kb.config.get("name"), "root": str(domain.root), "kb": kb.summary(),
            "held_out": holdout(kb.config), "errors": len(report.errors), "warnings": len(report.warnings)}
    try:
        fresh = check(domain)
        info.update(shards="fresh" if fresh.fresh else "stale", stale_reasons=fresh.reasons,
                    build_key=(fresh.manifest or {}).get("build_key"), current_key=fresh.key.key)
    except DataError:
        info.update(shards="unknown (KB does not validate)", stale_reasons=[], build_key=None, current_key=None)
    info["proposals"] = _proposals(domain)
    if fmt == "json":
        echo_json(info)
        return
    size = info["kb"]
    click.echo(f"domain {info['domain'] or '(pwd.yaml names none)'} at {domain.root}")
    click.echo(f"  KB: {size['concepts']} concepts, {size['statements']} statements, {size['chains']} chains "
               f"({size['test_chains']} test), {size['patch_examples']} patch examples")
    if info["held_out"]:
        held = info["held_out"]
        concepts = sum(h in kb.concepts for h in held)
        click.echo(f"  held out of training (build.holdout): {concepts} concept(s), {len(held) - concepts} statement(s): "
                   + ", ".join(held[:8]) + (f", ... ({len(held) - 8} more)" if len(held) > 8 else ""))
    click.echo(f"  validate: {info['errors']} error(s), {info['warnings']} warning(s)")
    state = info["shards"]
    color = "green" if state == "fresh" else "yellow"
    click.echo(f"  {SHARDS_DIR}/: {click.style(state, fg=color)}"
               + (f" (last build {info['build_key'][:12]})" if info["build_key"] else ""))
    for reason in info["stale_reasons"]:
        click.echo(f"    - {reason}")
    if state == "stale":
        click.echo("    run `git pwd build` and commit shards/")
    if info["proposals"]:
        click.echo(f"  branches not merged yet: {len(info['proposals'])}")
    for branch in info["proposals"]:
        verdict = branch["verdict"] or "untested"
        click.echo(f"    {branch['branch']} ({branch['tip'][:10]}): {verdict}"
                   + ("" if branch["verdict"] else f"; run `git pwd run {branch['branch']}`"))


def _proposals(domain: Domain) -> list[dict]:
    """The pwd/patch/* and pwd/repair/* branches HEAD does not contain, with the latest verdict
    recorded on each tip (None: never tested)."""
    store = ResultsStore(domain.repo)
    out = []
    for name, tip in unmerged_branches(domain.repo, PATCH_BRANCH_PREFIX, REPAIR_BRANCH_PREFIX):
        lines = store.lines(tip)
        out.append({"branch": name, "tip": tip, "verdict": lines[-1].get("verdict") if lines else None})
    return out
