"""`git pwd report`: the static HTML dashboard of the results notes."""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import time
from html.parser import HTMLParser
from pathlib import Path

import pytest

from pwd_git import notes
from pwd_git.kb.loader import Domain
from pwd_git.report import collect as report_collect
from pwd_git.revision import at
from tests.conftest import concept, git, run_cli, small_domain, snapshot
from tests.histories import record_results


class Elements(HTMLParser):
    """Counts start tags (SVG ones included) and checks that every opened element closes."""

    VOID = frozenset({"meta", "br", "img", "input", "link", "hr", "wbr"})

    def __init__(self, html: str):
        super().__init__()
        self.counts: dict[str, int] = {}
        self.stack: list[str] = []
        self.unbalanced: list[str] = []
        self.attrs: list[tuple[str, dict]] = []
        self.feed(html)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.counts[tag] = self.counts.get(tag, 0) + 1
        self.attrs.append((tag, dict(attrs)))
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        self.counts[tag] = self.counts.get(tag, 0) + 1
        self.attrs.append((tag, dict(attrs)))

    def handle_endtag(self, tag):
        if self.stack and self.stack[-1] == tag:
            self.stack.pop()
        else:
            self.unbalanced.append(tag)

    def points(self, series: str) -> int:
        return sum(1 for tag, a in self.attrs if tag == "circle" and a.get("class") == "pt"
                   and a.get("data-series") == series)

    def hrefs(self) -> list[str]:
        return [a["href"] for tag, a in self.attrs if tag == "a" and "href" in a]


def parse_page(path: Path) -> Elements:
    page = Elements(path.read_text(encoding="utf-8"))
    assert not page.stack and not page.unbalanced, (page.stack[-5:], page.unbalanced[:5])
    return page


def report_json(root: Path, *args: str) -> dict:
    result = run_cli("report", *args, "--format", "json", cwd=root)
    assert result.code == 0, result.output
    return json.loads(result.out)


def result_line(commit: str, rng: random.Random, concepts: list[str], *, kb_tree: str = "t", failed=(),
                verdict: str | None = None) -> str:
    """One note line in the shape `test` writes, with made-up numbers."""
    acc = round(rng.uniform(0.4, 1.0), 4)
    levels = {lv: {"acc": round(min(1.0, max(0.0, acc + rng.uniform(-0.2, 0.2))), 4), "n": 10} for lv in ("L1", "L2", "L3")}
    metrics = {"acc": acc, "acc_norm": round(acc * 0.95, 4), "n": 30, "levels": levels,
               "concepts": {c: {"acc": round(rng.random(), 4), "n": 3} for c in concepts}, "chains": {},
               "control": {"acc": round(rng.uniform(0.5, 0.7), 4), "n": 20}}
    return notes.dumps_line({"schema": notes.SCHEMA_VERSION, "time": "2024-01-01T00:00:00+00:00", "run_key": "rk",
                             "model_key": "mk", "base": "tiny", "commit": commit, "kb_tree": kb_tree, "shards_hash": "s",
                             "build_key": "bk", "metrics": metrics, "failed": sorted(failed),
                             "verdict": verdict or ("pass" if acc > 0.55 else "fail")})


def synthetic_history(root: Path, n: int, concepts: int = 120, every: int = 1, grow_every: int = 700) -> list[str]:
    """`n` commits on top of HEAD (a concept file added every `grow_every`), a result note on every
    `every`-th, all written by one `git fast-import` (cheap for thousands). Returns the commits, oldest first."""
    rng = random.Random(7)
    names = [f"concept-{i:03d}" for i in range(concepts)]
    head = git(root, "rev-parse", "HEAD")
    lines = []
    for i in range(1, n + 1):
        message = f"edit {i}"
        lines += ["commit refs/heads/main", f"committer T <t@e.x> {1_700_000_000 + i * 60} +0000",
                  f"data {len(message)}", message, *([f"from {head}"] if i == 1 else []),
                  "M 100644 inline history.txt", f"data {len(str(i))}", str(i)]
        if i % grow_every == 0:
            body = concept(f"grown-{i}")
            lines += [f"M 100644 inline concepts/grown-{i}.yaml", f"data {len(body.encode())}", body]
        lines.append("")
    subprocess.run(["git", "fast-import", "--quiet"], cwd=root, input="\n".join(lines).encode(), check=True)
    commits = git(root, "rev-list", "--reverse", "--first-parent", f"{head}..main").split()
    notes_stream = [f"commit {notes.NOTES_REF}", "committer T <t@e.x> 1700000000 +0000", "data 5", "notes"]
    for i, commit in enumerate(commits):
        if i % every == 0:
            body = result_line(commit, rng, names) + "\n"
            notes_stream += [f"N inline {commit}", f"data {len(body.encode())}", body]
    subprocess.run(["git", "fast-import", "--quiet"], cwd=root, input="\n".join(notes_stream).encode() + b"\n", check=True)
    git(root, "reset", "-q", "--hard", "main")
    return commits


def test_report_without_notes_is_an_empty_valid_page(domain, tmp_path):
    before = snapshot(domain)
    out = tmp_path / "site"
    summary = report_json(domain, "-o", str(out))
    assert summary["results"] == 0 and summary["commits"] == 1 and summary["points"] == 0
    page = parse_page(out / "index.html")
    text = (out / "index.html").read_text()
    assert "No results yet" in text and "git pwd run" in text
    assert page.counts.get("circle", 0) == 0 and "<script" not in text
    assert snapshot(domain) == before  # nothing in the checkout changed


def test_report_default_folder_is_inside_the_git_dir(domain):
    before = snapshot(domain)
    result = run_cli("report", cwd=domain)
    assert result.code == 0, result.output
    assert (domain / ".git/pwd/report/index.html").is_file()
    assert "git pwd run" in result.out
    assert snapshot(domain) == before


def test_report_on_a_repo_without_commits_says_how_to_get_results(tmp_path):
    root = tmp_path / "fresh"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    (root / "pwd.yaml").write_text("name: fresh\n")
    summary = report_json(root, "-o", str(tmp_path / "out"))
    assert summary["commits"] == 0
    assert "git pwd run" in (tmp_path / "out/index.html").read_text()


@pytest.mark.parametrize("args, wanted", [
    (("no-such-branch",), "unknown revision or range"),
    (("-n", "0"), None),  # an option click rejects: usage error
    (("--", "--output=x"), "starts with '-'"),
])
def test_report_bad_ranges_are_one_usage_error(domain, tmp_path, args, wanted):
    before = snapshot(domain)
    result = run_cli("report", *args, cwd=domain)
    assert result.code == 2, result.output
    assert "Traceback" not in result.output
    if wanted:
        assert wanted in result.output
    assert snapshot(domain) == before


def test_report_into_a_file_is_refused(domain, tmp_path):
    target = tmp_path / "a-file"
    target.write_text("keep me")
    result = run_cli("report", "-o", str(target), cwd=domain)
    assert result.code == 2 and "is not a folder" in result.output
    assert target.read_text() == "keep me"


def test_a_long_history_draws_a_bounded_page(domain, tmp_path):
    """3000 commits with results: the page draws at most MAX_POINTS points per series and a
    capped heatmap, and is written in seconds."""
    commits = synthetic_history(domain, 3000)
    out = tmp_path / "site"
    started = time.monotonic()
    summary = report_json(domain, "-o", str(out))
    elapsed = time.monotonic() - started
    assert summary["commits"] == 3001 and summary["results"] == 3000
    assert summary["points"] == report_collect.MAX_POINTS
    assert summary["heatmap_columns"] == report_collect.MAX_COLUMNS and summary["heatmap_rows"] == report_collect.MAX_ROWS
    page = parse_page(out / "index.html")
    for series in ("acc", "acc_norm", "control", "L1", "L2", "L3"):
        assert page.points(series) == report_collect.MAX_POINTS
    assert page.counts["circle"] <= 6 * report_collect.MAX_POINTS + 3 * report_collect.MAX_KB_POINTS + 20
    assert page.counts["rect"] <= report_collect.MAX_COLUMNS * report_collect.MAX_ROWS + 2 * report_collect.MAX_POINTS + 10
    assert sum(page.counts.values()) < 20_000, page.counts
    assert (out / "index.html").stat().st_size < 3_000_000
    # the KB grew (a concept every 700 commits) and the size chart shows it
    sizes = re.findall(r"(\d+) concepts</title>", (out / "index.html").read_text())
    assert sizes[0] == "3" and sizes[-1] == "7", (sizes[:3], sizes[-3:])
    assert "3000 results are drawn as 200 points" in (out / "index.html").read_text()
    assert commits[-1] in (out / "index.html").read_text()  # the newest commit is a point of its own bucket
    assert elapsed < 60, elapsed


def test_buckets_cover_every_element_once_in_order():
    for n in (0, 1, 5, 199, 200, 201, 1000, 3001):
        groups = report_collect.buckets(list(range(n)), 200)
        assert [x for g in groups for x in g] == list(range(n))
        assert len(groups) == min(n, 200)
        assert not groups or max(map(len, groups)) - min(map(len, groups)) <= 1


def _failing_probe_note(root: Path, concept_id: str) -> str:
    """A result on HEAD whose failed items are the probes of `concept_id` (so diagnose finds it)."""
    domain = Domain.find(root)
    head = git(root, "rev-parse", "HEAD")
    items = at(domain, head).shards.records("bench")
    failed = [i["id"] for i in items if concept_id in i["traces"]["concepts"]]
    assert failed
    notes.append(domain.repo, head, json.loads(result_line(head, random.Random(1), ["a", "b", "c"], failed=failed,
                                                          verdict="fail")))
    return head


@pytest.mark.parametrize("remote, link", [
    ("git@github.com:acme/bio.git", "https://github.com/acme/bio/blob/{head}/concepts/parts/spoke.yaml#L"),
    ("https://oauth2:SECRET@gitlab.example.com/grp/bio.git",
     "https://gitlab.example.com/grp/bio/-/blob/{head}/concepts/parts/spoke.yaml#L"),
    (None, "../bikes/concepts/parts/spoke.yaml"),
])
def test_findings_link_to_their_line(tmp_path, remote, link):
    domain = small_domain(tmp_path / "bikes")
    if remote:
        git(domain, "remote", "add", "origin", remote)
    head = _failing_probe_note(domain, "spoke")
    out = tmp_path / "site"
    summary = report_json(domain, "-o", str(out))
    assert summary["diagnosis"] == head and summary["findings"] >= 1
    page = parse_page(out / "index.html")
    finding_links = [h for h in page.hrefs() if "concepts/parts/spoke.yaml" in h]
    assert any(h.startswith(link.format(head=head)) for h in finding_links), finding_links
    assert "SECRET" not in (out / "index.html").read_text()
    if remote is None:
        assert all((out / h.split("#")[0]).resolve().is_file() for h in finding_links)


def test_heatmap_rows_are_the_concepts_terms(tmp_path):
    domain = small_domain(tmp_path / "bikes")
    spoke = domain / "concepts/parts/spoke.yaml"
    spoke.write_text(spoke.read_text().replace("term: spoke", "term: wire spoke"))
    assert run_cli("build", "-q", cwd=domain).code == 0
    git(domain, "commit", "-qam", "the spoke's full name")
    record_results(domain, [git(domain, "rev-parse", "HEAD")], lambda c, item: "spoke" in item["traces"]["concepts"])
    out = tmp_path / "site"
    report_json(domain, "-o", str(out))
    html = (out / "index.html").read_text()
    heatmap = html[html.index('id="chart-heatmap"'):]
    heatmap = heatmap[:heatmap.index("</svg>")]
    assert ">wire spoke</text>" in heatmap and ">spoke</text>" not in heatmap


def test_repair_rounds_are_listed_with_their_results(domain, tmp_path):
    base = git(domain, "rev-parse", "HEAD")
    notes.append(Domain.find(domain).repo, base, json.loads(result_line(base, random.Random(2), ["a"])))
    git(domain, "checkout", "-q", "-b", "pwd/repair/" + base[:10])
    (domain / "concepts/d.yaml").write_text(concept("d"))
    git(domain, "add", "-A")
    git(domain, "commit", "-qm", "repair round 1: 1 data gap patched")
    round1 = git(domain, "rev-parse", "HEAD")
    notes.append(Domain.find(domain).repo, round1, json.loads(result_line(round1, random.Random(3), ["a"], verdict="pass")))
    git(domain, "checkout", "-q", "main")
    out = tmp_path / "site"
    summary = report_json(domain, "-o", str(out))
    assert summary["repair_branches"] == ["pwd/repair/" + base[:10]]
    text = (out / "index.html").read_text()
    assert "repair round 1: 1 data gap patched" in text and round1[:10] in text


def test_stored_bisects_render_as_a_table():
    from pwd_git.report.page import _bisects

    found = report_collect.Bisect("2026-01-02T00:00:00+00:00", "first-bad", "L3", "a" * 40, "b" * 40, "c" * 40,
                                  "drop a <fact>", [], 2, "https://github.com/acme/bio/commit/" + "c" * 40)
    open_ = report_collect.Bisect("2026-01-01T00:00:00+00:00", "only-skipped", "acc", "a" * 40, "b" * 40, None, None,
                                  ["d" * 40, "e" * 40], 0, None)
    data = report_collect.ReportData("x", "HEAD", [], [], report_collect.Heatmap([], [], {}, 0), [],
                                     bisects=[found, open_])
    page = Elements(_bisects(data))
    assert page.hrefs() == ["https://github.com/acme/bio/commit/" + "c" * 40] and page.counts["tr"] == 3
    html = _bisects(data)
    assert "cccccccccc" in html and "drop a &lt;fact&gt;" in html and "aaaaaaaaaa</code>..<code>bbbbbbbbbb" in html
    assert "one of 2 skipped commit(s)" in html and "dddddddddd" in html
    empty = _bisects(report_collect.ReportData("x", "HEAD", [], [], report_collect.Heatmap([], [], {}, 0), []))
    assert "No stored bisect conclusions" in empty and "refs/notes/pwd/bisect" in empty


def test_stored_bisects_are_read_newest_first_bounded_and_bad_lines_skipped(domain, tmp_path, caplog):
    """Conclusions merge in from every clone: a line that does not fit is skipped with a warning
    (an OID that is not one never becomes a link), the rest come newest first, at most `limit`."""
    repo = Domain.find(domain).repo
    head = git(domain, "rev-parse", "HEAD")
    line = {"schema": 1, "good": head, "bad": head, "metric": "acc", "outcome": "first-bad", "first_bad": head,
            "subject": "s", "candidates": [], "trained": 1}
    for day in (3, 1, 2):
        notes.append(repo, head, {**line, "time": f"2026-01-0{day}T00:00:00+00:00"}, ref=notes.BISECT_REF)
    bad = [{**line, "first_bad": "javascript:alert(1)"}, {**line, "trained": "many"}, {**line, "good": None}]
    for entry in bad:
        notes.append(repo, head, entry, ref=notes.BISECT_REF)
    git(domain, "notes", "--ref", notes.BISECT_REF, "append", "-m", "not json", head)
    links = report_collect.Links(Domain.find(domain), tmp_path)
    with caplog.at_level("WARNING", logger="pwd_git"):
        shown = report_collect.stored_bisects(Domain.find(domain), links, limit=2)
    assert [b.time[:10] for b in shown] == ["2026-01-03", "2026-01-02"]
    assert sum("of the bisect note on" in r.getMessage() for r in caplog.records) == len(bad) + 1
    assert report_collect.stored_bisects(Domain.find(domain), links, limit=0) == []


def _browser():
    from tests import browser

    exe, why = browser.find()
    if exe is None:
        pytest.skip(why)
    return browser, browser.Chromium(exe)


def test_the_browser_check_sees_console_errors_and_failed_loads(tmp_path):
    """The check below cannot pass vacuously: a broken page shows up as problems."""
    _, chromium = _browser()
    page = tmp_path / "broken.html"
    page.write_text("<!doctype html><img src=missing.png><script>console.error('boom')</script>")
    try:
        chromium.load(page.as_uri())
        problems = chromium.problems()
    finally:
        chromium.close()
    assert any("boom" in p for p in problems) and any("missing.png" in p or "ERR_FILE_NOT_FOUND" in p
                                                       for p in problems), problems


@pytest.mark.slow
def test_report_of_trained_commits_draws_in_a_real_browser(trained_example, tmp_path, monkeypatch):
    """Three commits with results (two trained with the tiny model, one reusing a result) render in
    headless Chromium without a console message, with one point per result in each series and a
    screenshot that is not blank. PWD_GIT_REPORT_SCREENSHOT=PATH saves the screenshot (docs/report.png)."""
    browser, chromium = _browser()
    example, model_cache = trained_example
    monkeypatch.setenv("PWD_GIT_CACHE", str(model_cache))
    root = tmp_path / "cell-biology"
    git(tmp_path, "clone", "-q", str(example), str(root))
    git(example, "push", "-q", str(root), "refs/notes/*:refs/notes/*")
    enzyme = root / "concepts/enzymes/citrate-synthase.yaml"
    enzyme.write_text(enzyme.read_text().replace("opening each", "which opens each"))
    assert run_cli("build", "-q", cwd=root).code == 0
    git(root, "commit", "-qam", "reword citrate synthase")
    assert run_cli("run", "-q", "HEAD", cwd=root).code in (0, 1)
    (root / "NOTES.md").write_text("a change outside the KB\n")
    git(root, "add", "NOTES.md")
    git(root, "commit", "-qm", "notes outside the KB")
    assert run_cli("run", "-q", "HEAD", cwd=root).code in (0, 1)  # the same model: reuses the result
    head, first = git(root, "rev-parse", "HEAD"), git(root, "rev-list", "--max-parents=0", "HEAD")
    notes.append(Domain.find(root).repo, head, {"schema": 1, "time": "2026-01-01T00:00:00+00:00", "good": first,
                                                "bad": head, "metric": "acc", "outcome": "first-bad", "first_bad": head,
                                                "subject": "notes outside the KB", "candidates": [], "trained": 2},
                 ref=notes.BISECT_REF)
    out = tmp_path / "site"
    summary = report_json(root, "-o", str(out))
    with_results = [c for c in git(root, "rev-list", "HEAD").split() if notes.read(Domain.find(root).repo, c)]
    assert summary["results"] == len(with_results) == 3 and summary["bisects"] == 1
    try:
        chromium.load((out / "index.html").as_uri())
        problems = chromium.problems()
        drawn = chromium.evaluate("Object.fromEntries(['acc','acc_norm','L1','L2','L3','concepts']"
                                  ".map(s => [s, document.querySelectorAll(`circle.pt[data-series=${s}]`).length]))")
        cells = chromium.evaluate("document.querySelectorAll('#chart-heatmap rect.cell').length")
        findings = chromium.evaluate("[...document.querySelectorAll('table.findings a')].map(a => a.getAttribute('href'))")
        boxes = chromium.evaluate("[...document.querySelectorAll('svg.chart')].map(s => s.getBoundingClientRect().height)")
        bisect_rows = chromium.evaluate("document.querySelectorAll('#bisects tr').length")
        small = chromium.screenshot(scale=0.5)
        saved = os.environ.get("PWD_GIT_REPORT_SCREENSHOT")
        if saved:
            browser.save(chromium.screenshot(), Path(saved))
    finally:
        chromium.close()
    assert problems == []
    assert {k: v for k, v in drawn.items() if k != "concepts"} == {k: 3 for k in ("acc", "acc_norm", "L1", "L2", "L3")}
    assert drawn["concepts"] == 3  # the KB size at each of the three commits
    assert cells == summary["heatmap_rows"] * 3 and cells > 0
    assert all(h > 100 for h in boxes) and len(boxes) == 3
    assert len(findings) == summary["findings"]
    assert bisect_rows == 2  # the header and the stored conclusion
    assert all((out / h.split("#")[0]).resolve().is_file() for h in findings)  # no remote: links into the checkout
    variance, colours = browser.colour_stats(small)
    assert variance > 100 and colours > 20, (variance, colours)


def test_ci_templates_publish_the_report():
    import yaml

    from pwd_git.resources import templates_dir

    github = yaml.safe_load((templates_dir() / "ci/github-workflow.yml").read_text())
    steps = github["jobs"]["test-data"]["steps"]
    runs = [s.get("run", "") for s in steps]
    assert any("git pwd report -o public" in r for r in runs)
    upload = next(s for s in steps if str(s.get("uses", "")).startswith("actions/upload-pages-artifact@"))
    assert upload["with"]["path"] == "public"
    assert any(str(s.get("uses", "")).startswith("actions/deploy-pages@") for s in github["jobs"]["pages"]["steps"])
    assert github["jobs"]["pages"]["permissions"] == {"pages": "write", "id-token": "write"}
    gitlab = yaml.safe_load((templates_dir() / "ci/gitlab-ci.yml").read_text())
    assert any("git pwd report -o public" in line for line in gitlab["pwd-git"]["script"])
    assert "public/" in gitlab["pwd-git"]["artifacts"]["paths"] and gitlab["pwd-git"]["artifacts"]["when"] == "always"
    assert gitlab["pages"]["artifacts"]["paths"] == ["public/"]
