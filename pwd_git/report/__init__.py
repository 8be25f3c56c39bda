"""`git pwd report`: a static, self-contained HTML dashboard of a domain's results notes.

`collect` reads what is recorded (results notes through pwd_git.results, the KB at sampled
commits through pwd_git.revision, the latest diagnosis, repair branches) into plain data,
aggregated so that any history draws a bounded number of SVG elements; `svg` draws charts
as inline SVG (no script, no plotting library, no network); `page` writes the one HTML file.
"""

from __future__ import annotations

from pathlib import Path

from pwd_git.kb.loader import Domain

DEFAULT_LIMIT = 10_000  # commits of the range read (first-parent, newest first)


def build_site(domain: Domain, rev_range: str = "HEAD", out_dir: Path | None = None, *, limit: int = DEFAULT_LIMIT,
               run_key: str | None = None) -> dict:
    """Write the report of `rev_range` to OUT_DIR/index.html (default .git/pwd/report: the report
    never dirties the checkout); a summary of what it shows."""
    from pwd_git.report.collect import collect
    from pwd_git.report.page import render, write

    out = (out_dir if out_dir is not None else domain.repo.pwd_dir() / "report").absolute()
    data = collect(domain, rev_range, out, limit=limit, run_key=run_key)
    path = write(render(data), out)
    return {"path": str(path), "url": path.as_uri(), "range": rev_range, "commits": len(data.commits),
            "results": len(data.results), "points": len(data.points), "heatmap_columns": len(data.heatmap.columns),
            "heatmap_rows": len(data.heatmap.rows), "kb_samples": len(data.kb_sizes),
            "diagnosis": data.diagnosis_commit, "findings": len(data.findings),
            "repair_branches": sorted(data.repairs), "bisects": len(data.bisects)}
