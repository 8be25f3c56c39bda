"""Large text and Markdown documents: streamed from git piece by piece, chunked as they stream,
quotes verified against their chunk with the right line, memory bounded, and a re-run after an
edit extracting only the chunks that changed. The limits are set small (a few MB documents,
64 KiB streaming threshold, 8 KiB pieces, 1000-character chunks) so every boundary is crossed."""

from __future__ import annotations

import hashlib
import json
import random
import tracemalloc
from pathlib import Path

import pytest
import yaml

from pwd_git.extract import candidates, chunks, corpus, patterns, run
from pwd_git.extract.chunks import chunk, stream_chunks
from pwd_git.extract.corpus import list_sources, read_documents
from pwd_git.extract.settings import ExtractSettings
from pwd_git.kb.loader import Domain
from tests.conftest import git, run_cli, write

CONFIG = "name: big\nextract:\n  chunk_chars: 1000\n  max_document_mb: 1\n  chains: 0\n"
FILLER = ("Paragraph {i} of the archive was written on a quiet afternoon, and it states nothing that a reader could "
          "take away. Would anyone remember it? Perhaps the café will reopen tomorrow, if the weather allows.")


@pytest.fixture(autouse=True)
def small_limits(monkeypatch):
    monkeypatch.setattr(corpus, "STREAM_BYTES", 64 << 10)
    monkeypatch.setattr(corpus, "PIECE_BYTES", 8 << 10)


def big_document(megabytes: float, definitions: int = 40) -> tuple[str, dict[str, int]]:
    """Filler paragraphs with `definitions` definitions spread through them (some inside a
    paragraph longer than a chunk, some broken over two lines); {term: line of its quote}."""
    parts, lines, line, i, d = ["# The archive\n\n"], {}, 3, 0, 0
    target = int(megabytes * 1e6)
    every = target // 230 // definitions
    size = len(parts[0])
    while size < target:
        if i % every == every // 2 and d < definitions:
            term = f"zorb{d}"
            if d % 3 == 0:  # inside a paragraph longer than a chunk, cut at sentence ends
                text = " ".join([FILLER.format(i=i)] * 2 + [f"A {term} is a structure that binds pages."]
                                + [FILLER.format(i=i)] * 2)
            elif d % 3 == 1:  # the quote spans a line break
                text = f"A {term} is a structure\nthat binds pages."
            else:
                text = f"A {term} is a structure that binds pages."
            lines[term] = line
            d += 1
        else:
            text = FILLER.format(i=i)
        parts.append(text + "\n\n")
        size += len(text.encode()) + 2
        line += text.count("\n") + 2
        i += 1
    return "".join(parts), lines


def commit_corpus(root: Path, files: dict[str, str]) -> None:
    root.mkdir(exist_ok=True)
    git(root, "init", "-q", "-b", "main")
    write(root, {"pwd.yaml": CONFIG, **files})
    git(root, "add", "-A")
    git(root, "commit", "-qm", "corpus")


def test_a_large_document_is_streamed_across_chunks_with_verified_quotes_and_their_lines(tmp_path):
    text, lines = big_document(3)
    root = tmp_path / "big"
    commit_corpus(root, {"corpus/big.md": text, "corpus/page.html": "<p>" + "x " * 600_000 + "</p>"})
    domain = Domain.find(root)
    settings = ExtractSettings.from_config(yaml.safe_load(CONFIG))
    sources = list_sources(domain, domain.repo.resolve("HEAD"), settings.corpus)

    tracemalloc.start()
    docs = read_documents(domain, sources, int(settings.max_document_mb * 1e6))
    read_peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.reset_peak()
    big = next(d for d in docs if d.path == "corpus/big.md")
    [result] = candidates.extract_documents([big], settings)
    extract_peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()

    size = len(text.encode())
    # never held whole: not its bytes, nor its text (the HTML, read whole, is over the limit and was not read)
    assert read_peak < size / 8 and extract_peak < size / 8, (read_peak, extract_peak, size)
    html = next(d for d in docs if d.path == "corpus/page.html")
    assert html.skipped and "over extract.max_document_mb" in html.reason
    assert big.sha256 == hashlib.sha256(text.encode()).hexdigest()
    assert result["chunks"] > 2500 and result["dropped"] == []
    found = {c["term"]: c for c in result["concepts"]}
    assert set(found) == set(lines)
    text_lines = text.split("\n")
    for term, c in found.items():
        assert c["line"] == lines[term], term
        assert text_lines[c["line"] - 1].startswith(f"A {term} is") or f"A {term} is" in text_lines[c["line"] - 1]
        assert c["quote"] in chunks.normalise_ws(text) and c["quote"].startswith(f"A {term} is a structure")


def test_the_verb_extracts_a_document_over_max_document_mb_and_writes_quotes_it_holds(tmp_path):
    text, lines = big_document(1.5, definitions=6)
    root = tmp_path / "big"
    commit_corpus(root, {"corpus/big.md": text})
    result = run_cli("extract", "--format", "json", cwd=root)
    assert result.code == 0, result.output
    info = json.loads(result.out)
    [doc] = info["documents"]
    assert doc["status"] == "extracted" and doc["chunks"] > 1000, doc
    assert sorted(c["id"] for c in info["concepts"]) == sorted(lines)
    normalised = chunks.normalise_ws(text)
    for term in lines:
        node = yaml.safe_load(git(root, "show", f"{info['branch']}:concepts/extracted/{term}.yaml"))
        assert node["source"]["doc"] == "corpus/big.md" and node["source"]["quote"] in normalised


def test_adding_a_paragraph_to_a_large_document_re_extracts_only_the_chunks_up_to_the_next_anchor(tmp_path, monkeypatch):
    text, lines = big_document(1, definitions=8)  # about 1000 chunks
    root = tmp_path / "big"
    commit_corpus(root, {"corpus/big.md": text})
    done = run.extract(Domain.find(root))
    git(root, "merge", "-q", "--ff-only", done.branch)
    middle = text.index("Paragraph 2000 of")
    inserted = "A zorb99 is a structure that binds covers. " + FILLER.format(i="new") + "\n\n"
    edited = text[:middle] + inserted + text[middle:]
    (root / "corpus/big.md").write_text(edited)
    git(root, "commit", "-qam", "one paragraph added")

    seen: list[str] = []
    real = patterns.extract_chunk
    monkeypatch.setattr(patterns, "extract_chunk", lambda ch, preds: seen.append(ch.text) or real(ch, preds))
    again = run.extract(Domain.find(root), dry_run=True)
    chunks = again.documents[0].chunks
    assert again.documents[0].status == "extracted" and chunks > 900
    # the chunks from the edit to the next anchor paragraph, not every chunk after the edit
    assert 1 <= len(seen) <= 40 and any("zorb99" in t for t in seen), (len(seen), chunks)
    assert "zorb99" in {c["id"] for c in again.plan.concepts}
    entry = json.loads(next((root / ".git/pwd/extract/docs").glob(f"*{hashlib.sha256(edited.encode()).hexdigest()[:40]}*"))
                       .read_text())
    at = text[:middle].count("\n") + 1
    moved = {c["term"]: c["line"] for c in entry["concepts"]}
    assert moved == {"zorb99": at, **{t: n + 2 if n >= at else n for t, n in lines.items()}}


def test_streamed_chunks_do_not_depend_on_where_the_pieces_are_cut():
    rng = random.Random(7)
    atoms = ["word", "Word.", "end!", " ", "  ", "\n", "\n\n", "\n \n", "\t", "x" * 50, "Sent. ", "a? B", "é"]
    for _ in range(400):
        text = "".join(rng.choice(atoms) for _ in range(rng.randint(0, 300)))
        size = rng.choice([5, 17, 40, 200])
        cuts = sorted(rng.sample(range(len(text) + 1), min(len(text) + 1, rng.randint(0, 20))))
        pieces = [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)], strict=True)]
        whole = chunk(text, size)
        assert [(c.start, c.text, c.line) for c in stream_chunks(pieces, size)] == [(c.start, c.text, c.line) for c in whole]
        for c in whole:
            assert text[c.start:c.start + len(c.text)] == c.text and len(c.text) <= size
            assert c.line == text.count("\n", 0, c.start) + 1


@pytest.mark.parametrize("damage, reason", [
    (lambda raw: raw[:900_000] + b"\xff" + raw[900_000:], "not UTF-8 (byte 0xff at line {line})"),
    (lambda raw: raw[:100] + b"\0" + raw[100:], "binary content (NUL bytes)"),
    (lambda raw: b"\n \n" * 40_000, "no text"),
])
def test_a_large_document_that_is_not_text_is_skipped_with_its_reason(tmp_path, damage, reason):
    text, _ = big_document(1.2, definitions=2)
    raw = damage(text.encode())
    root = tmp_path / "big"
    root.mkdir()
    (root / "corpus").mkdir()
    (root / "corpus/big.txt").write_bytes(raw)
    commit_corpus(root, {})
    result = run_cli("extract", "--dry-run", cwd=root)
    expected = reason.format(line=raw[:900_000].count(b"\n") + 1)
    assert result.code == 0 and f"corpus/big.txt: skipped: {expected}" in result.out, result.output


def test_a_large_git_lfs_object_is_streamed_from_the_working_tree(tmp_path):
    text, lines = big_document(0.5, definitions=3)
    data = text.encode()
    pointer = f"version https://git-lfs.github.com/spec/v1\noid sha256:{hashlib.sha256(data).hexdigest()}\nsize {len(data)}\n"
    root = tmp_path / "big"
    commit_corpus(root, {"corpus/big.md": pointer})
    (root / "corpus/big.md").write_bytes(data)  # what `git lfs pull` leaves there
    result = run.extract(Domain.find(root), dry_run=True)
    assert result.documents[0].status == "extracted", result.documents
    assert sorted(c["id"] for c in result.plan.concepts) == sorted(lines)
    (root / "corpus/big.md").write_bytes(data.replace(b"quiet", b"noisy"))
    again = run.extract(Domain.find(root), dry_run=True)
    assert again.documents[0].status == "skipped" and "not the object it names" in again.documents[0].reason
