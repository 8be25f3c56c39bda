"""`git pwd diagnose`: trace failed benchmark items to KB nodes, like a compiler's errors."""

from __future__ import annotations

import click

from pwd_git.errors import EXIT_FAILED
from pwd_git.kb.loader import Domain
from pwd_git.output import StepProgress, echo_json, format_option, log_to_stderr


@click.command()
@click.argument("rev", default="HEAD")
@click.option("--run-key", metavar="KEY", help="Diagnose the results of another run (see `git pwd show`).")
@click.option("--no-run", is_flag=True, help="Fail instead of running the tests when REV has no results.")
@click.option("-q", "--quiet", is_flag=True, help="No progress output.")
@format_option("json", "sarif")
def diagnose(rev: str, run_key: str | None, no_run: bool, quiet: bool, fmt: str) -> None:
    """Explain REV's failed benchmark items in terms of the KB.

    Each concept and statement whose probes fail is classified by its training data:
    data-gap (missing or thin: `git pwd patch` repairs it), contradiction (a functional
    predicate with two objects: resolve it by hand), not-learned (the data is adequate:
    a training or capacity problem). A failed multi-hop (L3) item breaks at the first hop
    that fails or lacks data; when every hop is learned it is a chain-break (teach
    composition). Each finding has its path:line, training-record evidence and a
    confidence against the model's own noise; data gaps come first, ranked by the failed
    items they explain. A last line says whether the model composes at all: how many of
    the multi-hop items whose hops pass it answers, against guessing. Reads the results
    note on REV (runs the tests first when there is none). Exit 0 when there is nothing to fix, 1 otherwise.
    """
    from pwd_git.repair.diagnose import diagnose as run_diagnose

    domain = Domain.find(".")
    progress = StepProgress(not quiet and fmt == "text")  # when REV has no result yet, it trains like `test`
    try:
        result = run_diagnose(domain, rev, key=run_key, run_if_missing=not no_run,
                              log=log_to_stderr(not quiet and fmt == "text"), on_step=progress)
    finally:
        progress.close()
    if fmt == "json":
        echo_json({"commit": result.commit, "run_key": result.run_key, "failed_items": result.failed_items,
                   "base_failure": result.base_failure, "model_learned": result.model_learned,
                   "counts": result.counts(), "composition": result.composition.as_dict(),
                   "findings": [f.as_dict() for f in result.findings]})
    elif fmt == "sarif":
        from pwd_git.repair.sarif import to_sarif

        echo_json(to_sarif(result, domain.prefix))
    else:
        for f in result.findings:
            click.echo(f"{f.location}: {f.kind}: {f.message()}")
        counts = result.counts()
        click.echo(f"{len(result.failed_items)} failed item(s) on {result.commit[:10]}: {counts['data-gap']} data gap(s), "
                   f"{counts['chain-break']} chain break(s), {counts['not-learned']} not learned, "
                   f"{counts['contradiction']} contradiction(s); the model fails {result.base_failure:.0%} of the probes "
                   "of well-covered nodes")
        if result.composition.items and result.model_learned:
            click.echo(result.composition.message())
        if not result.model_learned:
            click.echo("the model did no better than guessing on nodes with adequate data: fix training first "
                       "(train.epochs, train.lr, the model size); no data patch will help")
        elif not result.findings:
            click.echo("nothing to fix" + (": no failed item traces to a KB node" if result.failed_items else ""))
    raise SystemExit(EXIT_FAILED if result.findings else 0)
