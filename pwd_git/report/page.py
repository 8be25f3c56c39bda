"""The report page: one HTML file with its CSS and SVG inline (opens from file://, no
script, nothing fetched), written atomically into the output folder."""

from __future__ import annotations

import os
import tempfile
from datetime import datetime, timezone
from html import escape
from pathlib import Path

from pwd_git import __version__
from pwd_git.errors import PwdError, quote
from pwd_git.report import svg
from pwd_git.report.collect import KB_SERIES, Commit, Point, ReportData

PAGE = "index.html"
FINDINGS_SHOWN = 12  # the rest fold into a <details> (still in the page, each with its link)
METRIC_CHARTS = (
    ("overall", "Accuracy, length-normalised accuracy and control set per commit",
     (svg.Series("acc", "acc", svg.OKABE_ITO["blue"]), svg.Series("acc_norm", "acc_norm", svg.OKABE_ITO["orange"], "6 3"),
      svg.Series("control", "control", svg.OKABE_ITO["purple"], "2 3"))),
    ("levels", "Accuracy per level per commit",
     (svg.Series("L1", "L1 concepts", svg.OKABE_ITO["green"]), svg.Series("L2", "L2 statements", svg.OKABE_ITO["sky"], "6 3"),
      svg.Series("L3", "L3 chains", svg.OKABE_ITO["black"], "2 3"))),
)
KB_CHART = (svg.Series("concepts", "concepts", svg.OKABE_ITO["blue"]),
            svg.Series("statements", "statements", svg.OKABE_ITO["orange"], "6 3"),
            svg.Series("chains", "chains", svg.OKABE_ITO["purple"], "2 3"))
CSS = """
:root{color-scheme:light;--fg:#1b1b1b;--muted:#5a5a5a;--line:#d0d0d0;--bg:#fff;--panel:#f6f7f8}
*{box-sizing:border-box}body{margin:0;font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;
color:var(--fg);background:var(--bg)}
header{padding:18px 28px;border-bottom:1px solid var(--line);background:var(--panel)}
header h1{margin:0;font-size:22px}header p{margin:4px 0 0;color:var(--muted)}
main{max-width:1180px;margin:0 auto;padding:8px 28px 40px}
section{margin:26px 0}h2{font-size:18px;margin:0 0 6px}p.note{color:var(--muted);margin:4px 0 10px}
.cards{display:flex;flex-wrap:wrap;gap:10px;margin:18px 0}
.card{border:1px solid var(--line);border-radius:6px;padding:8px 14px;min-width:92px;background:var(--bg)}
.card b{display:block;font-size:20px}.card span{color:var(--muted);font-size:13px}
.card.fail b{color:#b34700}.card.pass b{color:#00704f}
svg.chart{width:100%;height:auto;display:block}svg.heatmap{width:100%;height:auto;display:block}
svg text{font-family:inherit;fill:var(--fg)}svg .tick{font-size:11px;fill:var(--muted)}svg .label{font-size:12px}
svg .grid{stroke:#ececec}svg .axis{stroke:#8a8a8a}svg a text{fill:#0b5cad;text-decoration:underline}
table{border-collapse:collapse;width:100%;font-size:14px}
th,td{text-align:left;padding:4px 8px;border-bottom:1px solid var(--line);vertical-align:top}
th{background:var(--panel)}td.num{text-align:right;font-variant-numeric:tabular-nums}
code{font:13px ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}a{color:#0b5cad}
.kind{display:inline-block;padding:0 6px;border-radius:4px;font-size:12px;border:1px solid currentColor;white-space:nowrap}
.kind.data-gap{color:#b34700}.kind.chain-break{color:#0061a0}.kind.not-learned{color:#444}.kind.contradiction{color:#9c3b7a}
details{margin-top:8px}summary{cursor:pointer;color:#0b5cad}
.empty{border:1px dashed var(--line);border-radius:6px;padding:16px;background:var(--panel)}
"""


def _x_ticks(commits: list[Commit], count: int = 6) -> list[tuple[float, str]]:
    if not commits:
        return []
    if len(commits) == 1:
        return [(0, commits[0].oid[:7])]
    step = (len(commits) - 1) / (min(count, len(commits)) - 1)
    picks = sorted({round(i * step) for i in range(min(count, len(commits)))})
    return [(commits[i].index, f"{commits[i].oid[:7]}\n{commits[i].date}") for i in picks]


def _verdicts(point: Point) -> str:
    """What a point's results concluded: its one verdict, or how many of its verdicts fail."""
    return (f"verdict {'fail' if point.fails else 'pass'}" if point.count == 1
            else f"{point.fails} of {point.count} verdicts fail")


def _tip(point: Point, key: str) -> str:
    value = point.values[key]
    return f"{point.label}\n{key} = {value:.3f} ({'mean' if point.count > 1 else 'one result'}); {_verdicts(point)}"


def metric_charts(data: ReportData) -> str:
    x_max, ticks = max(0, len(data.commits) - 1), _x_ticks(data.commits)
    strip = [(p.x, p.count, p.fails, f"{p.label}\n{_verdicts(p)}") for p in data.points]
    out = []
    for chart_id, title, series in METRIC_CHARTS:
        marks = {s.key: [svg.Mark(p.x, p.values[s.key], _tip(p, s.key), p.last.oid) for p in data.points
                         if s.key in p.values] for s in series}
        out.append(f"<h3>{escape(title)}</h3>" + svg.line_chart(f"chart-{chart_id}", title, series, marks, x_max=x_max,
                                                                  x_ticks=ticks, strip=strip))
    return "".join(out)


def _heatmap(data: ReportData) -> str:
    hm = data.heatmap
    columns = [(p.first.oid[:7], p.label) for p in hm.columns]
    rows = [(hm.labels.get(cid, cid), hm.links.get(cid)) for cid in hm.rows]
    cells = {}
    for r, cid in enumerate(hm.rows):
        for c, point in enumerate(hm.columns):
            if (cid, c) in hm.cells:
                acc, n = hm.cells[(cid, c)]
                cells[(r, c)] = (acc, f"{hm.labels.get(cid, cid)} · {point.label}: accuracy {acc:.2f} over {n} item(s)")
    hidden = f" {hm.hidden} more concept(s) are not shown." if hm.hidden else ""
    bucketed = (f" Each column is {len(data.results) / len(hm.columns):.1f} results on average (the mean, weighted by items)."
                if len(hm.columns) < len(data.results) else "")
    return (f"<p class=note>Rows: the concepts with the lowest mean accuracy over the range (benchmark items that trace "
            f"to them, as <code>concept:ID</code> measures), worst first; columns: commits, oldest left.{bucketed}{hidden}"
            "</p>" + svg.heatmap("chart-heatmap", "Accuracy per concept per commit", rows, columns, cells))


def _kb_chart(data: ReportData) -> str:
    commits = [c for c, _ in data.kb_sizes]
    y_max = max([max(s[k] for k in KB_SERIES) for _, s in data.kb_sizes] or [1]) or 1
    top = _nice(y_max)
    marks = {k: [svg.Mark(c.index, s[k], f"{c.oid[:10]} {c.date} {c.subject}\n{s[k]} {k}", c.oid)
                 for c, s in data.kb_sizes] for k in KB_SERIES}
    sampled = (f" Sampled at {len(commits)} of {len(data.commits)} commits." if len(commits) < len(data.commits) else "")
    return (f"<p class=note>Concepts, statements and chains in the KB at each commit.{sampled}</p>"
            + svg.line_chart("chart-kb", "KB size per commit", KB_CHART, marks, x_max=max(0, len(data.commits) - 1),
                             x_ticks=_x_ticks(data.commits), y_max=top, y_ticks=[top * i / 4 for i in range(5)],
                             y_label=lambda y: f"{y:g}", height=240))


def _nice(value: float) -> float:
    """A round axis maximum at or above `value` (1, 2, 2.5, 5 times a power of ten)."""
    power = 10 ** (len(str(int(value))) - 1)
    return next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= value)


def _cell(entry: dict | None, key: str) -> str:
    from pwd_git.metrics import Metric

    value = Metric(key).value((entry or {}).get("metrics") or {}) if entry else None
    return "<td class=num>-</td>" if value is None else f"<td class=num>{value:.3f}</td>"


def _link(text: str, href: str | None) -> str:
    return f'<a href="{escape(href, quote=True)}">{text}</a>' if href else text


def _findings(data: ReportData) -> str:
    if data.diagnosis_commit is None:
        return f"<p class=note>{escape(data.diagnosis_note or '')}</p>"
    head = (f"<p class=note>Of <code>{data.diagnosis_commit[:10]}</code>, the newest commit with a "
            "result (<code>git pwd diagnose</code>); each location links to its line.</p>")
    if not data.findings:
        return head + f"<p class=empty>{escape(data.diagnosis_note or 'nothing to fix')}</p>"
    def rows(findings) -> str:
        return "".join(f"<tr><td>{_link(f'<code>{escape(f.location)}</code>', f.link)}</td>"
                       f"<td><span class='kind {escape(f.kind)}'>{escape(f.kind)}</span></td>"
                       f"<td class=num>{f.confidence:.2f}</td><td>{escape(f.message)}</td></tr>" for f in findings)

    heads = "<tr><th>location</th><th>kind</th><th>confidence</th><th>finding</th></tr>"
    note = f"<p class=note>{escape(data.diagnosis_note)}</p>" if data.diagnosis_note else ""
    shown, rest = data.findings[:FINDINGS_SHOWN], data.findings[FINDINGS_SHOWN:]
    more = (f"<details><summary>{len(rest)} more finding(s)</summary><table class=findings>{heads}{rows(rest)}</table>"
            "</details>" if rest else "")
    return head + note + f"<table class=findings id=findings>{heads}{rows(shown)}</table>" + more


def _rounds(data: ReportData) -> str:
    if not data.repairs:
        return ("<p class=note>No repair branches (<code>pwd/repair/*</code>) with commits beyond HEAD. "
                "<code>git pwd repair</code> commits one round per commit there; each round's result is its note.</p>")
    out = []
    for branch, rounds in data.repairs.items():
        rows = "".join(f"<tr><td class=num>{i}</td><td>{_link(f'<code>{r.commit.oid[:10]}</code>', r.link)}</td>"
                       + "".join(_cell(r.commit.entry, k) for k in ("acc", "L1", "L2", "L3", "control"))
                       + f"<td>{escape((r.commit.entry or {}).get('verdict', 'no result'))}</td>"
                       f"<td>{escape(r.commit.subject)}</td></tr>" for i, r in enumerate(rounds, 1))
        out.append(f"<h3><code>{escape(branch)}</code></h3><table class=rounds><tr><th>round</th><th>commit</th>"
                   "<th>acc</th><th>L1</th><th>L2</th><th>L3</th><th>control</th><th>verdict</th><th>subject</th></tr>"
                   + rows + "</table>")
    return "".join(out)


def _bisects(data: ReportData) -> str:
    if not data.bisects:
        return ("<p class=note>No stored bisect conclusions. <code>git pwd bisect GOOD BAD</code> keeps each one as a "
                "note (<code>refs/notes/pwd/bisect</code>) on the first bad commit it finds, and "
                "<code>git pwd notes pull</code> fetches the ones others pushed.</p>")

    def first_bad(b) -> str:
        return _link(f"<code>{escape(b.first_bad[:10])}</code>", b.link) if b.first_bad else "-"

    def subject(b) -> str:
        if b.first_bad:
            return escape(b.subject or "")
        shown = ", ".join(f"<code>{escape(c[:10])}</code>" for c in b.candidates[:5])
        return f"not pinned down: one of {len(b.candidates)} skipped commit(s) {shown}"

    rows = "".join(f"<tr><td>{first_bad(b)}</td><td>{escape(b.outcome)}</td><td><code>{escape(b.metric)}</code></td>"
                   f"<td><code>{escape(b.good[:10])}</code>..<code>{escape(b.bad[:10])}</code></td>"
                   f"<td>{subject(b)}</td><td class=num>{b.trained}</td><td>{escape(b.time)}</td></tr>"
                   for b in data.bisects)
    return ("<p class=note>Conclusions of <code>git pwd bisect</code> kept in <code>refs/notes/pwd/bisect</code>, "
            "newest first.</p><table id=bisects><tr><th>first bad</th><th>outcome</th><th>metric</th><th>range</th>"
            "<th>subject</th><th>trained</th><th>when</th></tr>" + rows + "</table>")


def _cards(data: ReportData) -> str:
    newest = data.results[-1].entry if data.results else None
    cards = [(str(len(data.commits)), "commits", ""), (str(len(data.results)), "with results", "")]
    if newest:
        from pwd_git.metrics import Metric

        for key in ("acc", "L1", "L2", "L3", "control"):
            value = Metric(key).value(newest.get("metrics") or {})
            if value is not None:
                cards.append((f"{value:.3f}", f"latest {key}", ""))
        verdict = newest.get("verdict", "?")
        cards.append((verdict, "latest verdict", verdict if verdict in ("pass", "fail") else ""))
    return "<div class=cards>" + "".join(f"<div class='card {cls}'><b>{escape(v)}</b><span>{escape(k)}</span></div>"
                                         for v, k, cls in cards) + "</div>"


def render(data: ReportData) -> str:
    """The whole page."""
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    forge = f" · {_link(escape(data.forge), data.forge)}" if data.forge else ""
    header = (f"<header><h1>{escape(data.name)}: results</h1><p><code>{escape(data.rev_range)}</code> · generated {when} "
              f"by pwd-git {escape(__version__)}{forge}</p></header>")
    if not data.results:
        body = (_cards(data) + "<section class=empty id=no-results><h2>No results yet</h2><p>There are no results notes "
                f"on the {len(data.commits)} commit(s) of <code>{escape(data.rev_range)}</code>. Record some with "
                "<code>git pwd run</code> (build, train and test the current commit; <code>git pwd run REV</code> for "
                "another), or fetch the ones CI recorded with <code>git pwd notes pull</code>, then run "
                "<code>git pwd report</code> again.</p></section>")
    else:
        bucketed = (f" {len(data.results)} results are drawn as {len(data.points)} points (each the mean of consecutive "
                    "commits; the verdict bar is tall when any of them failed)." if len(data.points) < len(data.results)
                    else "")
        body = (_cards(data)
                + "<section id=history><h2>Metric history</h2><p class=note>One point per commit with a result, oldest "
                "left; under each chart, the verdict: a short green bar passed, a tall vermillion bar failed "
                f"(thresholds or a significant regression). Hover a point for its commit.{bucketed}</p>"
                + metric_charts(data) + "</section>"
                + "<section id=concepts><h2>Concepts over time</h2>" + _heatmap(data) + "</section>"
                + "<section id=diagnosis><h2>Latest diagnosis</h2>" + _findings(data) + "</section>"
                + "<section id=kb><h2>KB size</h2>" + _kb_chart(data) + "</section>"
                + "<section id=repair><h2>Repair rounds</h2>" + _rounds(data) + "</section>"
                + "<section id=bisect><h2>Bisect</h2>" + _bisects(data) + "</section>")
    return (f"<!doctype html><html lang=en><head><meta charset=utf-8><meta name=viewport content='width=device-width,"
            f"initial-scale=1'><title>{escape(data.name)}: pwd-git report</title><style>{CSS}</style></head>"
            f"<body>{header}<main>{body}</main></body></html>\n")


def write(html: str, out_dir: Path) -> Path:
    """DIR/index.html, replaced atomically (a reader never sees half a page); other files in DIR stay."""
    if out_dir.exists() and not out_dir.is_dir():
        raise PwdError(f"{quote(str(out_dir))} exists and is not a folder", hint="pass -o with a folder path")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".index.", suffix=".tmp", dir=out_dir)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(html)
            os.chmod(tmp, 0o644)
            os.replace(tmp, out_dir / PAGE)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise PwdError(f"cannot write the report into {quote(str(out_dir))}: {exc.strerror or exc}",
                       hint="pass -o with a folder you can write") from None
    return out_dir / PAGE
