"""`git pwd extract` with the offline patterns backend: shapes read and refused, provenance,
stable ids, ownership of files, incremental and byte-identical re-runs, bad input."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from pwd_git.extract import patterns, sentences
from pwd_git.extract.candidates import keep_verified
from pwd_git.extract.chunks import Chunk, chunk, normalise_ws
from pwd_git.extract.corpus import document_text, html_text
from pwd_git.extract.manifest import MANIFEST, read_manifest
from pwd_git.extract.merge import FOLDER, plan
from pwd_git.kb.model import KB
from tests.conftest import git, run_cli, snapshot, write

CONFIG = """
name: cells
predicates:
  occurs in: {functional: false}
  is bounded by: {functional: true}
  is part of: {functional: false}
"""

CELLS = """
# The cell

A mitochondrion is an organelle that produces most of the ATP of the cell.
The cytosol is a fluid that fills the cell. Glycolysis is a pathway that splits glucose.
Glycolysis occurs in the cytosol. The mitochondrion is part of the cell.
A cell is a unit of life.

- Adenosine triphosphate (ATP) is a molecule that stores energy.
- The nucleus, also called the karyon, is an organelle that holds the DNA.
"""

MEMBRANES = """
The mitochondrion is bounded by the double membrane.
A double membrane is a membrane with two lipid bilayers.
"""


def read(text: str, predicates: tuple[str, ...] = ("occurs in", "is bounded by")) -> dict:
    return patterns.extract_chunk(Chunk(0, 0, text), predicates)


# -- the patterns backend on hand-made sentences ---------------------------------------------

@pytest.mark.parametrize("sentence, kind, expected", [
    ("A mitochondrion is an organelle that produces ATP.", "concepts",
     {"term": "mitochondrion", "type": "organelle", "definition": "An organelle that produces ATP."}),
    ("Hexokinase is a kind of enzyme that phosphorylates glucose.", "concepts", {"term": "hexokinase", "type": "enzyme"}),
    ("DNA polymerase is an enzyme which copies DNA.", "concepts", {"term": "DNA polymerase", "type": "enzyme"}),
    ("**Rubisco** is an enzyme of the Calvin cycle.", "concepts", {"term": "rubisco", "type": "enzyme"}),
    ("The nucleus, also called the karyon, is an organelle.", "aliases", {"term": "nucleus", "alias": "karyon"}),
    ("Adenosine triphosphate (ATP) is a molecule.", "aliases", {"term": "adenosine triphosphate", "alias": "ATP"}),
    ("The cytosol is also known as cytoplasmic matrix.", "aliases", {"term": "cytosol", "alias": "cytoplasmic matrix"}),
    ("The nucleolus is part of the nucleus.", "statements",
     {"subject": "nucleolus", "predicate": "is part of", "object": "the nucleus"}),
    ("Ribosomes are located in the cytosol, where they make proteins.", "statements",
     {"subject": "ribosomes", "predicate": "is located in", "object": "the cytosol"}),
    ("A ribosome consists of rRNA and proteins.", "statements",
     {"subject": "ribosome", "predicate": "consists of", "object": "rRNA and proteins"}),
    ("Glycolysis occurs in the cytosol.", "statements", {"subject": "glycolysis", "predicate": "occurs in"}),
    ("Lysosomes occur in animal cells.", "statements", {"subject": "lysosomes", "predicate": "occurs in"}),
    ("Organelles such as mitochondria and chloroplasts have DNA.", "statements",
     {"predicate": "is a", "object": "Organelles", "shape": "such-as"}),
])
def test_patterns_read_the_claimed_shapes(sentence, kind, expected):
    found = read(sentence)[kind]
    assert len(found) == 1, found
    assert expected.items() <= found[0].items()
    assert found[0]["quote"] == sentence


@pytest.mark.parametrize("sentence", [
    "Is the mitochondrion an organelle?",                # a question
    "The nucleus is not a part of the cytosol.",         # negated
    "The ribosome isn't an organelle.",
    "A virus may be an organism.",                       # hedged
    "The nucleus is probably part of the cell.",
    "Glycolysis often occurs in the cytosol.",
    "If the cell is a neuron, it fires.",                # conditional
    "It is an organelle that makes ATP.",                # a pronoun, not a term
    "This is a problem for the cell.",
    "There is a membrane around it.",
    "The mitochondrion is a larger organelle than the peroxisome.",  # comparative
    "The result is a disaster for the cell.",            # a discourse noun, not a term
    "Mitochondria were once bacteria.",                  # past, and hedged
    "Glucose is a good source of energy.",               # the head is vague: no class
    "The cell of the liver is part of the organ.",       # subject is a clause, not a term
])
def test_patterns_do_not_read_what_they_do_not_claim(sentence):
    found = read(sentence)
    assert found == {"concepts": [], "aliases": [], "statements": []}, found


def test_markdown_structure_is_not_read_as_sentences():
    text = ("# A heading is a title\n\n```\nA snippet is a block of code.\n```\n\n| A row is a line. |\n\n"
            "A cell is a unit of life, e.g. in animals. Dr. Smith said so. It is J. Doe's view.\n")
    found = read(text)
    assert [c["term"] for c in found["concepts"]] == ["cell"]
    assert [quote for quote, _ in sentences.said(text)] == ["A cell is a unit of life, e.g. in animals.", "Dr. Smith said so.",
                                                           "It is J. Doe's view."]


def test_chunks_are_verbatim_slices_with_stable_hashes():
    text = "\n\n".join(f"Paragraph {i} is a paragraph of text number {i}." for i in range(40))
    chunks = chunk(text, 300)
    assert len(chunks) > 3 and all(len(c.text) <= 300 for c in chunks)
    assert all(text[c.start:c.start + len(c.text)] == c.text for c in chunks)
    assert [c.hash for c in chunk(text, 300)] == [c.hash for c in chunks]
    assert len({c.hash for c in chunks}) == len(chunks)
    assert chunk("x" * 1000, 300)[0].text == "x" * 300  # no whitespace at all: cut anyway


def test_a_quote_that_is_not_in_the_chunk_is_dropped_and_counted():
    result = {"concepts": [], "aliases": [], "statements": [], "dropped": []}
    found = {"concepts": [{"term": "cell", "type": "unit", "definition": "A unit.", "quote": "A cell  is\na unit."},
                          {"term": "cell", "type": "unit", "definition": "A unit.", "quote": "A cell is a unicorn."}],
             "statements": [{"subject": "cell", "predicate": "is part of", "object": "body", "quote": ""}]}
    keep_verified(found, "Intro. A cell is a\n  unit. More.", result)
    assert [c["quote"] for c in result["concepts"]] == ["A cell is a unit."]  # whitespace-normalised match
    assert [d["reason"] for d in result["dropped"]] == ["quote-not-found", "quote-not-found"]


def test_ids_from_a_backend_never_become_paths():
    results = [{"doc": "corpus/x.md", "aliases": [], "statements": [], "concepts": [
        {"term": t, "type": "thing", "definition": "Something.", "quote": "q"}
        for t in ("../../etc/passwd", "a/b", "..", "/root", "C:\\win")]}]
    out = plan(KB(config={}), read_manifest(None), results, frozenset(), {})
    assert sorted(out.files) == [f"{FOLDER}/{x}.yaml" for x in ("a-b", "c-win", "etc-passwd", "root", "x")]
    for data in out.files.values():
        node = yaml.safe_load(data)
        assert "/" not in node["id"] and "." not in node["id"]


def test_an_alias_never_merges_two_defined_concepts():
    text = ("Kaon reactor (KR) is a device that splits atoms. Krypton ring (KR) is a structure that holds gas. "
            "The kaon reactor is part of the krypton ring. The KR is part of the plant.")
    found = read(text)
    results = [{"doc": "corpus/a.md", **found}]
    out = plan(KB(config={}), read_manifest(None), results, frozenset(), {})
    assert sorted(c["id"] for c in out.concepts) == ["kaon-reactor", "krypton-ring"]
    assert [d.reason for d in out.dropped] == ["alias-conflict", "unknown-object"]
    assert [s["id"] for s in out.statements] == ["kaon-reactor.is-part-of.krypton-ring"]


def test_text_of_html_and_pdf_documents():
    html = "<html><head><title>T</title><script>var x = 'A trap is a bug.';</script></head><body>" \
           "<h1>Cells</h1><p>A cell is a unit of&nbsp;life.</p><ul><li>A gene is a unit of heredity.</li></ul></body></html>"
    assert html_text(html) == "Cells\n\nA cell is a unit of life.\n\nA gene is a unit of heredity."
    text, why = document_text("a.pdf", make_pdf("A cell is a unit of life."))
    assert why is None and "A cell is a unit of life." in normalise_ws(text)
    assert document_text("b.pdf", make_pdf(None)) == (None, document_text("b.pdf", make_pdf(None))[1])
    assert "no text layer" in document_text("b.pdf", make_pdf(None))[1]
    assert "not a readable PDF" in document_text("c.pdf", b"%PDF-1.4 garbage")[1]


# -- the verb on a real repository -----------------------------------------------------------

def corpus_repo(root: Path, files: dict[str, str]) -> Path:
    """A domain repo at `root` with `files` (pwd.yaml and corpus documents) committed."""
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    write(root, files)
    git(root, "add", "-A")
    git(root, "commit", "-qm", "corpus")
    return root


@pytest.fixture
def corpus(tmp_path) -> Path:
    return corpus_repo(tmp_path / "cells", {"pwd.yaml": CONFIG, "corpus/cells.md": CELLS, "corpus/membranes.txt": MEMBRANES})


def worktree(root: Path) -> dict[str, bytes]:
    return {k: v for k, v in snapshot(root).items() if not k.startswith(".git/")}


def extract_json(root: Path, *args: str) -> dict:
    result = run_cli("extract", "--format", "json", *args, cwd=root)
    assert result.code == 0, result.output
    return json.loads(result.out)


def merge(root: Path, branch: str) -> None:
    git(root, "merge", "-q", "--ff-only", branch)


def test_extract_commits_on_a_branch_without_touching_the_checkout(corpus):
    (corpus / "scratch.txt").write_text("uncommitted work\n")
    (corpus / "corpus/cells.md").write_text(CELLS + "An edit is a change nobody committed.\n")
    before, head, status = worktree(corpus), git(corpus, "rev-parse", "HEAD"), git(corpus, "status", "--porcelain")
    info = extract_json(corpus)
    assert (worktree(corpus), git(corpus, "rev-parse", "HEAD"), git(corpus, "status", "--porcelain")) == (before, head, status)
    assert git(corpus, "rev-parse", "--abbrev-ref", "HEAD") == "main" and info["uncommitted"] == ["corpus/cells.md"]
    assert "edit" not in {c["id"] for c in info["concepts"]}  # what is extracted is what is committed
    git(corpus, "checkout", "-q", "--", "corpus/cells.md")
    assert info["branch"].startswith("pwd/extract/") and git(corpus, "rev-parse", info["branch"]) == info["commit"]
    ids = sorted(c["id"] for c in info["concepts"])
    assert ids == ["adenosine-triphosphate", "cell", "cytosol", "double-membrane", "glycolysis", "mitochondrion",
                   "nucleus"]
    assert sorted(s["id"] for s in info["statements"]) == ["glycolysis.occurs-in.cytosol", "mitochondrion.is-bounded-by."
                                                           "double-membrane", "mitochondrion.is-part-of.cell"]
    files = git(corpus, "ls-tree", "-r", "--name-only", info["branch"]).splitlines()
    assert MANIFEST in files and all(f.startswith((f"{FOLDER}/", "corpus/")) or f in ("pwd.yaml", MANIFEST) for f in files)
    # every node's quote is in its document, verbatim after whitespace normalisation
    for c in info["concepts"]:
        node = yaml.safe_load(git(corpus, "show", f"{info['branch']}:{c['path']}"))
        for src in [node["source"], *(r["source"] for r in node.get("relations", []))]:
            assert src["quote"] in normalise_ws(git(corpus, "show", f"{info['branch']}:{src['doc']}"))
    nucleus = yaml.safe_load(git(corpus, "show", f"{info['branch']}:{FOLDER}/nucleus.yaml"))
    assert nucleus["aliases"] == ["karyon"] and nucleus["type"] == "organelle"
    merge(corpus, info["branch"])
    assert run_cli("validate", cwd=corpus).code == 0


def test_a_rerun_is_a_no_op_and_byte_identical(corpus):
    first = extract_json(corpus)
    again = extract_json(corpus)  # not merged yet: the same extraction is already on that branch
    assert again["existing_branch"] and again["commit"] == first["commit"]
    assert [d["status"] for d in again["documents"]] == ["extracted", "extracted"]  # against main's lock
    merge(corpus, first["branch"])
    tree = git(corpus, "rev-parse", "HEAD^{tree}")
    branches = git(corpus, "branch", "--list", "pwd/extract/*")
    result = run_cli("extract", cwd=corpus)
    assert result.code == 0 and "nothing new" in result.out
    assert git(corpus, "branch", "--list", "pwd/extract/*") == branches
    # a cold cache re-extracts every document and still writes the same bytes
    for f in (corpus / ".git" / "pwd" / "extract" / "docs").iterdir():
        f.unlink()
    cold = extract_json(corpus)
    assert not cold["changed"] and [d["status"] for d in cold["documents"]] == ["unchanged", "unchanged"]
    assert git(corpus, "rev-parse", "HEAD^{tree}") == tree


def test_editing_one_document_re_extracts_only_that_document(corpus):
    merge(corpus, extract_json(corpus)["branch"])
    (corpus / "corpus/membranes.txt").write_text(MEMBRANES + "A lipid bilayer is a sheet of lipids.\n"
                                                 "The double membrane consists of the lipid bilayer.\n")
    git(corpus, "commit", "-qam", "more on membranes")
    info = extract_json(corpus)
    assert {d["doc"]: d["status"] for d in info["documents"]} == {"corpus/cells.md": "unchanged",
                                                                   "corpus/membranes.txt": "extracted"}
    assert info["files"]["added_or_changed"] == ["chains/extracted/mitochondrion-to-lipid-bilayer.yaml",
                                                 f"{FOLDER}/double-membrane.yaml", f"{FOLDER}/lipid-bilayer.yaml"]
    node = yaml.safe_load(git(corpus, "show", f"{info['branch']}:{FOLDER}/double-membrane.yaml"))
    assert node["relations"][0]["object"] == "lipid-bilayer"
    chain = yaml.safe_load(git(corpus, "show", f"{info['branch']}:chains/extracted/mitochondrion-to-lipid-bilayer.yaml"))
    assert chain["steps"] == ["mitochondrion.is-bounded-by.double-membrane", "double-membrane.consists-of.lipid-bilayer"]
    assert chain["split"] == "train"  # the only chain ending in a membrane: its type must be in training


def test_a_file_a_person_edited_is_never_rewritten(corpus):
    merge(corpus, extract_json(corpus)["branch"])
    path = corpus / FOLDER / "cytosol.yaml"
    edited = path.read_text().replace("A fluid that fills the cell.", "The aqueous part of the cytoplasm.")
    path.write_text(edited)
    (corpus / "corpus/more.md").write_text("The cytosol is part of the cell.\nGlycolysis is part of the cell.\n")
    git(corpus, "add", "-A")
    git(corpus, "commit", "-qm", "a person's definition; more corpus")
    info = extract_json(corpus)
    assert f"{FOLDER}/cytosol.yaml" not in info["files"]["added_or_changed"]
    assert info["files"]["released"] == [f"{FOLDER}/cytosol.yaml"]
    assert [(p["path"], p["change"]) for p in info["proposals"]] == [
        (f"{FOLDER}/cytosol.yaml", "add relation 'is part of' -> 'cell'")]
    assert git(corpus, "show", f"{info['branch']}:{FOLDER}/cytosol.yaml") + "\n" == edited
    manifest = json.loads(git(corpus, "show", f"{info['branch']}:{MANIFEST}"))
    assert f"{FOLDER}/cytosol.yaml" not in manifest["files"]
    # the person's file stays theirs: a later run proposes again and writes nothing there
    merge(corpus, info["branch"])
    later = extract_json(corpus)
    assert not later["changed"] and len(later["proposals"]) == 1


def test_hand_written_concepts_win_and_get_proposals(corpus):
    write(corpus, {"concepts/cytosol.yaml": "id: cytosol\nterm: cytosol\ntype: compartment\naliases: [cytoplasmic fluid]\n"
                                           "definition: The fluid inside the cell around the organelles.\n"})
    git(corpus, "add", "-A")
    git(corpus, "commit", "-qm", "a hand-written concept")
    (corpus / "corpus/extra.md").write_text("The cytoplasmic fluid is part of the cell.\n")
    git(corpus, "add", "-A")
    git(corpus, "commit", "-qm", "corpus")
    info = extract_json(corpus)
    assert "cytosol" not in {c["id"] for c in info["concepts"]}  # the person's concept, not a second one
    assert {(p["path"], p["change"]) for p in info["proposals"]} == {("concepts/cytosol.yaml",
                                                                       "add relation 'is part of' -> 'cell'")}
    glycolysis = yaml.safe_load(git(corpus, "show", f"{info['branch']}:{FOLDER}/glycolysis.yaml"))
    assert glycolysis["relations"][0]["object"] == "cytosol"  # extracted nodes point at the hand-written one
    assert git(corpus, "diff", "--stat", "HEAD", info["branch"], "--", "concepts/cytosol.yaml") == ""


def test_a_second_object_for_a_functional_predicate_is_a_contradiction(corpus):
    (corpus / "corpus/wrong.md").write_text("A single membrane is a membrane with one bilayer.\n"
                                            "The mitochondrion is bounded by a single membrane.\n")
    git(corpus, "add", "-A")
    git(corpus, "commit", "-qm", "a contradicting document")
    info = extract_json(corpus)
    assert info["dropped_counts"].get("contradiction") == 1
    bad = next(d for d in info["dropped"] if d["reason"] == "contradiction")
    assert bad["doc"] == "corpus/wrong.md" and "double-membrane" in bad["detail"]
    mito = yaml.safe_load(git(corpus, "show", f"{info['branch']}:{FOLDER}/mitochondrion.yaml"))
    assert [r.get("object") for r in mito["relations"] if r["predicate"] == "is bounded by"] == ["double-membrane"]


def test_nodes_only_a_deleted_document_gave_are_removed(corpus):
    merge(corpus, extract_json(corpus)["branch"])
    git(corpus, "rm", "-q", "corpus/membranes.txt")
    git(corpus, "commit", "-qm", "drop a document")
    info = extract_json(corpus)
    assert info["files"]["removed"] == [f"{FOLDER}/double-membrane.yaml"]
    assert info["files"]["added_or_changed"] == [f"{FOLDER}/mitochondrion.yaml"]  # its relation went too
    merge(corpus, info["branch"])
    assert run_cli("validate", cwd=corpus).code == 0


def test_a_chain_keeps_the_extracted_file_it_steps_through(corpus):
    merge(corpus, extract_json(corpus)["branch"])
    write(corpus, {"chains/glycolysis-site.yaml": "id: glycolysis-site\ntitle: where glycolysis runs\nsplit: train\n"
                                                 "steps: [glycolysis.occurs-in.cytosol]\n"})
    (corpus / "corpus/cells.md").write_text(CELLS.replace("Glycolysis occurs in the cytosol.", ""))
    git(corpus, "add", "-A")
    git(corpus, "commit", "-qm", "a chain; the sentence goes")
    info = extract_json(corpus)
    assert f"{FOLDER}/glycolysis.yaml" in info["files"]["kept"]
    merge(corpus, info["branch"])
    assert run_cli("validate", cwd=corpus).code == 0


def test_dry_run_creates_nothing(corpus):
    before = snapshot(corpus)
    refs = git(corpus, "for-each-ref")
    result = run_cli("extract", "--dry-run", cwd=corpus)
    assert result.code == 0 and "would commit 7 concept(s), 3 statement(s)" in result.out
    assert f"A {FOLDER}/cell.yaml" in result.out
    assert snapshot(corpus) == before and git(corpus, "for-each-ref") == refs
    info = extract_json(corpus)  # served from the cache the dry run filled, yet new to the KB
    assert {d["status"] for d in info["documents"]} == {"extracted"}, info["documents"]
    merge(corpus, info["branch"])
    (corpus / "corpus/notes.md").write_text("A vesicle is a small sac.\n")
    git(corpus, "add", "-A")
    git(corpus, "commit", "-qm", "a new document")
    status = {d["doc"]: d["status"] for d in extract_json(corpus)["documents"]}
    assert status.pop("corpus/notes.md") == "extracted" and set(status.values()) == {"unchanged"}, status


def make_pdf(text: str | None) -> bytes:
    """A one-page PDF whose page shows `text` in Helvetica (None: a page with no text layer)."""
    content = b"" if text is None else f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
               b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 5 0 R >> >> "
               b"/Contents 4 0 R >>",
               b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream",
               b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
    out, offsets = b"%PDF-1.4\n", []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1) + b"".join(b"%010d 00000 n \n" % o for o in offsets)
    return out + b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)


def test_bad_documents_are_skipped_with_a_reason(corpus):
    (corpus / "corpus/scan.pdf").write_bytes(make_pdf(None))
    (corpus / "corpus/paper.pdf").write_bytes(make_pdf("A ribosome is a structure that makes proteins."))
    (corpus / "corpus/latin1.txt").write_bytes("Caf\xe9 is a place.\n".encode("latin-1"))
    (corpus / "corpus/blob.txt").write_bytes(b"\x00\x01\x02binary")
    (corpus / "corpus/sheet.xlsx").write_bytes(b"PK\x03\x04")
    (corpus / "corpus/.hidden.md").write_text("A secret is a thing nobody knows.\n")
    git(corpus, "add", "-A")
    git(corpus, "commit", "-qm", "bad documents")
    info = extract_json(corpus)
    why = {d["doc"]: (d["status"], d["reason"] or "") for d in info["documents"]}
    assert ".hidden.md" not in " ".join(why)
    assert why["corpus/scan.pdf"][0] == "skipped" and "no text layer" in why["corpus/scan.pdf"][1]
    assert why["corpus/latin1.txt"][0] == "skipped" and "not UTF-8 (byte 0xe9 at line 1)" in why["corpus/latin1.txt"][1]
    assert why["corpus/blob.txt"][0] == "skipped" and "binary" in why["corpus/blob.txt"][1]
    assert why["corpus/sheet.xlsx"][0] == "skipped"
    assert why["corpus/paper.pdf"][0] == "extracted" and "ribosome" in {c["id"] for c in info["concepts"]}
    text = run_cli("extract", "--dry-run", cwd=corpus).out
    assert "corpus/scan.pdf: skipped: a PDF with no text layer" in text


def test_an_empty_corpus_or_a_path_outside_it_is_one_clear_error(tmp_path, corpus):
    empty = tmp_path / "empty"
    empty.mkdir()
    git(empty, "init", "-q", "-b", "main")
    write(empty, {"pwd.yaml": CONFIG})
    (empty / "corpus").mkdir()
    (empty / "corpus/draft.md").write_text("A draft is a text.\n")
    git(empty, "add", "pwd.yaml")
    git(empty, "commit", "-qm", "config only")
    before = snapshot(empty)
    result = run_cli("extract", cwd=empty)
    assert result.code == 1 and "the corpus is empty" in result.err and "1 not committed" in result.err
    assert "Traceback" not in result.output and snapshot(empty) == before
    result = run_cli("extract", "../elsewhere", cwd=corpus)
    assert result.code == 2 and "is not in the corpus" in result.err
    result = run_cli("extract", "/etc/passwd", cwd=corpus)  # named as given, not as 'etc/passwd'
    assert result.code == 2 and "'/etc/passwd' is not in the corpus" in result.err, result.output
    result = run_cli("extract", "/corpus", cwd=corpus)  # an absolute path is not the domain's corpus/
    assert result.code == 2 and "'/corpus' is not in the corpus" in result.err, result.output
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    git(fresh, "init", "-q", "-b", "main")
    write(fresh, {"pwd.yaml": CONFIG})
    result = run_cli("extract", cwd=fresh)
    assert result.code == 2 and "no commits yet" in result.err


def test_named_paths_re_extract_only_those_documents(corpus):
    merge(corpus, extract_json(corpus)["branch"])
    (corpus / "corpus/cells.md").write_text(CELLS + "A vacuole is an organelle that stores water.\n")
    (corpus / "corpus/membranes.txt").write_text(MEMBRANES + "A lipid bilayer is a sheet of lipids.\n")
    (corpus / "corpus/new.md").write_text("A lysosome is an organelle that digests waste.\n")
    git(corpus, "add", "-A")
    git(corpus, "commit", "-qm", "three documents change")
    info = extract_json(corpus, "corpus/membranes.txt")
    assert {d["doc"]: d["status"] for d in info["documents"]} == {
        "corpus/cells.md": "kept", "corpus/membranes.txt": "extracted", "corpus/new.md": "not-named"}
    assert info["files"]["added_or_changed"] == [f"{FOLDER}/lipid-bilayer.yaml"]  # cells.md stays as extracted
    merge(corpus, info["branch"])
    info = extract_json(corpus)
    assert info["files"]["added_or_changed"] == [f"{FOLDER}/lysosome.yaml", f"{FOLDER}/vacuole.yaml"]


@pytest.mark.parametrize("section, message", [
    ("{backend: magic}", "expected one of patterns"),
    ("{corpus: [../outside]}", "a corpus folder is a path inside the domain"),
    ("{chunk_chars: 10}", "minimum"),
])
def test_the_extract_section_of_pwd_yaml_is_validated(corpus, section, message):
    (corpus / "pwd.yaml").write_text(CONFIG.lstrip() + f"extract: {section}\n")
    result = run_cli("validate", cwd=corpus)
    assert result.code == 1 and message in result.output
    git(corpus, "commit", "-qam", "bad extract section")
    result = run_cli("extract", cwd=corpus)
    assert result.code == 1 and "pwd.yaml:" in result.err and message in result.err


def test_committed_shards_are_rebuilt_on_the_branch(tmp_path):
    from tests.conftest import small_domain

    root = small_domain(tmp_path / "bikes")
    write(root, {"corpus/bikes.md": "A bell is a component that rings.\nA bell is located in the frame.\n"
                                    "A brake is a device that stops a wheel.\n"})
    git(root, "add", "-A")
    git(root, "commit", "-qm", "a corpus")
    info = extract_json(root)
    assert sorted(c["id"] for c in info["concepts"]) == ["bell", "brake"]
    assert "shards/MANIFEST.json" in git(root, "diff", "--name-only", "HEAD", info["branch"]).splitlines()
    merge(root, info["branch"])
    result = run_cli("build", "--check", cwd=root)
    assert result.code == 0, result.output


ORGANELLES = """
The nucleus is an organelle that holds the DNA. A mitochondrion is an organelle that makes ATP.
A chloroplast is an organelle that captures light. A peroxisome is an organelle that breaks down fats.
A lysosome is an organelle that digests waste. A vacuole is an organelle that stores water.

The matrix is a compartment of the mitochondrion. The stroma is a compartment of the chloroplast.
The nucleoplasm is a compartment of the nucleus. The lumen is a compartment of the peroxisome.
The matrix is part of the mitochondrion. The stroma is part of the chloroplast.
The nucleoplasm is part of the nucleus. The lumen is part of the peroxisome.

Citrate synthase is an enzyme that makes citrate. Rubisco is an enzyme that fixes carbon.
Polymerase is an enzyme that copies DNA. Catalase is an enzyme that splits peroxide.
Citrate synthase is located in the matrix. Rubisco is located in the stroma.
Polymerase is located in the nucleoplasm. Catalase is located in the lumen.
"""


def test_chains_from_the_statement_graph_with_a_split_that_keeps_answer_types_in_training(tmp_path):
    root = corpus_repo(tmp_path / "org", {"pwd.yaml": CONFIG + "  is located in: {functional: false}\n",
                                          "corpus/organelles.md": ORGANELLES})
    info = extract_json(root)
    chains = {c["id"]: c["split"] for c in info["chains"]}
    assert sorted(chains) == ["catalase-to-peroxisome", "citrate-synthase-to-mitochondrion", "polymerase-to-nucleus",
                              "rubisco-to-chloroplast"]
    assert sorted(chains.values()) == ["test", "test", "train", "train"]  # one type: organelle, in both splits
    assert extract_json(root)["chains"] == info["chains"]  # deterministic
    merge(root, info["branch"])
    assert run_cli("validate", cwd=root).code == 0
    result = run_cli("build", "-q", cwd=root)
    assert result.code == 0, result.output
    bench = (root / "shards" / "bench").glob("*.jsonl")
    assert any('"L3"' in p.read_text() for p in bench)


def test_open_pr_pushes_the_branch_and_opens_a_pull_request(corpus, tmp_path, monkeypatch):
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    seen = []

    class Forge(BaseHTTPRequestHandler):
        def do_POST(self):
            payload = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            seen.append((self.path, self.headers["Authorization"], payload))
            data = json.dumps({"html_url": "https://github.com/lab/cells/pull/3"}).encode()
            self.send_response(201)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Forge)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    origin = tmp_path / "origin.git"
    git(tmp_path, "init", "-q", "--bare", str(origin))
    git(corpus, "remote", "add", "origin", str(origin))
    git(corpus, "config", "pwd.forge.repo", "lab/cells")
    monkeypatch.setenv("PWD_GIT_FORGE_API", f"http://127.0.0.1:{server.server_port}")
    monkeypatch.setenv("GITHUB_TOKEN", "ghp-extract-secret")
    try:
        result = run_cli("extract", "--open-pr", cwd=corpus)
    finally:
        server.shutdown()
        server.server_close()
    assert result.code == 0, result.output
    assert "opened https://github.com/lab/cells/pull/3" in result.out and "ghp-extract-secret" not in result.output
    path, auth, body = seen[0]
    assert path == "/repos/lab/cells/pulls" and auth == "Bearer ghp-extract-secret" and body["base"] == "main"
    assert body["head"].startswith("pwd/extract/") and git(corpus, "--git-dir", str(origin), "rev-parse", body["head"])
    assert "### Documents" in body["body"] and "`corpus/cells.md`" in body["body"] and "added `concepts/extracted/cell.yaml`" \
        in body["body"]


def test_import_csv_tsv_and_rdf_triples(corpus):
    merge(corpus, extract_json(corpus)["branch"])
    write(corpus, {
        "corpus/tables/ribosome.csv": "subject,predicate,object\nribosome,type,structure\n"
                                      "ribosome,definition,\"A complex that makes proteins, in the cytosol.\"\n"
                                      "ribosome,is located in,cytosol\nribosome,has diameter,25 nm\n"
                                      "ribosome,alias,protein factory\nghost,is part of,cell\n",
        "corpus/tables/lysosome.tsv": "subject\tpredicate\tobject\nlysosome\ttype\torganelle\n"
                                      "lysosome\tdefinition\tAn organelle that digests waste.\nlysosome\tis part of\tcell\n",
        "corpus/tables/golgi.ttl": "@prefix ex: <http://example.org/> .\n"
                                   "@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .\n"
                                   "@prefix skos: <http://www.w3.org/2004/02/skos/core#> .\n"
                                   "ex:Golgi a ex:Organelle ; rdfs:label \"Golgi apparatus\" ;\n"
                                   "  rdfs:comment \"An organelle that packages proteins.\" ;\n"
                                   "  skos:altLabel \"Golgi body\" ; ex:isPartOf ex:Cell .\n"
                                   "ex:Cell rdfs:label \"cell\" .\n"})
    git(corpus, "add", "-A")
    git(corpus, "commit", "-qm", "tables")
    result = run_cli("import", "corpus/tables/ribosome.csv", "corpus/tables/lysosome.tsv", "--format", "json", cwd=corpus)
    assert result.code == 0, result.output
    info = json.loads(result.out)
    assert {d["doc"]: d["status"] for d in info["documents"]}["corpus/tables/golgi.ttl"] == "not-named"
    ribosome = yaml.safe_load(git(corpus, "show", f"{info['branch']}:{FOLDER}/ribosome.yaml"))
    assert ribosome["type"] == "structure" and ribosome["aliases"] == ["protein factory"]
    assert ribosome["source"]["quote"] == 'ribosome,definition,"A complex that makes proteins, in the cytosol."'
    assert {(r["predicate"], r.get("object"), r.get("value")) for r in ribosome["relations"]} == {
        ("has diameter", None, "25 nm"), ("is located in", "cytosol", None)}
    assert info["dropped_counts"] == {"unknown-subject": 1}  # the ghost has no type and definition
    assert "lysosome" in {c["id"] for c in info["concepts"]}
    pytest.importorskip("rdflib")  # pwd-git[extract]
    info = extract_json(corpus, "corpus/tables/golgi.ttl")
    golgi = yaml.safe_load(git(corpus, "show", f"{info['branch']}:{FOLDER}/golgi-apparatus.yaml"))
    assert (golgi["type"], golgi["aliases"], golgi["definition"]) == ("organelle", ["Golgi body"],
                                                                      "An organelle that packages proteins.")
    assert golgi["relations"][0]["object"] == "cell" and golgi["relations"][0]["predicate"] == "is part of"
    assert golgi["relations"][0]["source"]["quote"] == "<http://example.org/Golgi> <http://example.org/isPartOf> " \
                                                       "<http://example.org/Cell> ."
    result = run_cli("import", "corpus/cells.md", cwd=corpus)
    assert result.code == 2 and "not a CSV, TSV or RDF file" in result.err


def test_names_keep_their_capitals_after_an_article_or_beside_another(tmp_path):
    """Only a sentence's first word has a capital that may just be the sentence's: "The Danube"
    and "North Sea" are names ("danube is defined as ..." and "north Sea" were written), and so
    is "Vienna", which the text also capitalises mid-sentence."""
    root = corpus_repo(tmp_path / "rivers", {
        "pwd.yaml": "name: rivers\npredicates:\n  flows into: {functional: true}\n",
        "corpus/rivers.md": "The Danube is a river that crosses ten countries.\nThe North Sea is a sea that borders Norway.\n"
                            "Glycolysis is a pathway that splits glucose.\nThe Danube flows into the North Sea.\n\n"
                            "Vienna is a city that lies on the Danube. Millions visit Vienna each year.\n"})
    branch = extract_json(root)["branch"]
    terms = {p: yaml.safe_load(git(root, "show", f"{branch}:{FOLDER}/{p}.yaml"))["term"]
             for p in ("danube", "north-sea", "glycolysis", "vienna")}
    # a word the chunk capitalises mid-sentence is a name, also where it opens a sentence
    assert terms == {"danube": "Danube", "north-sea": "North Sea", "glycolysis": "glycolysis", "vienna": "Vienna"}


def test_a_new_concepts_id_spells_its_term_in_ascii(tmp_path):
    """Accents and ß decompose ("Rhône" -> rhone, not rh-ne); a term with no ASCII letter left
    ("東京") gets a hash of its own rather than a bare "x"."""
    root = corpus_repo(tmp_path / "places", {
        "pwd.yaml": "name: places\npredicates: {}\n",
        "corpus/places.md": "Rhône is a river that rises in the Alps.\nGroßglockner is a mountain of the Hohe Tauern.\n"})
    branch = extract_json(root)["branch"]
    assert git(root, "ls-tree", "--name-only", f"{branch}:{FOLDER}").split() == ["grossglockner.yaml", "rhone.yaml"]
    results = [{"doc": "corpus/x.md", "aliases": [], "statements": [], "concepts": [
        {"term": t, "type": "city", "definition": "A city.", "quote": "q"} for t in ("東京", "大阪")]}]
    files = sorted(plan(KB(config={}), read_manifest(None), results, frozenset(), {}).files)
    assert len(files) == 2 and all(re.fullmatch(rf"{FOLDER}/x-[0-9a-f]{{6}}\.yaml", f) for f in files), files


def test_two_values_in_another_script_for_a_functional_predicate_are_a_contradiction():
    """東京 and 大阪 both slug to "x"; they are two values (two statement ids), so a second
    capital for a functional predicate is dropped as a contradiction, not taken for the first."""
    statements = [{"subject": "japan", "predicate": "has capital", "value": v, "quote": f"Japan has capital {v}."}
                  for v in ("東京", "大阪")]
    results = [{"doc": "corpus/x.md", "aliases": [], "statements": statements, "concepts": [
        {"term": "japan", "type": "country", "definition": "A country.", "quote": "q"}]}]
    out = plan(KB(config={}), read_manifest(None), results, frozenset({"has capital"}), {})
    assert [d.reason for d in out.dropped] == ["contradiction"], out.dropped


def test_an_imported_row_is_a_statement_without_text(corpus):
    """A statement's `text` is the natural sentence behind l2.text training records; a CSV row
    ("ribosome,has diameter,25 nm") or an N-Triples line is no sentence, so it stays the quote only."""
    merge(corpus, extract_json(corpus)["branch"])
    write(corpus, {"corpus/cells.csv": "subject,predicate,object\nmitochondrion,has diameter,1 um\n"})
    git(corpus, "add", "-A")
    git(corpus, "commit", "-qm", "table")
    info = extract_json(corpus, "corpus/cells.csv")
    mito = yaml.safe_load(git(corpus, "show", f"{info['branch']}:{FOLDER}/mitochondrion.yaml"))
    (row,) = [r for r in mito["relations"] if r["predicate"] == "has diameter"]
    assert "text" not in row and row["source"]["quote"] == "mitochondrion,has diameter,1 um", row
    assert [r["text"] for r in mito["relations"] if r["predicate"] == "is part of"] == \
        ["The mitochondrion is part of the cell."], "a sentence's statement keeps its text"


def test_a_domain_in_a_subfolder_of_the_repository(tmp_path):
    top = tmp_path / "mono"
    top.mkdir()
    git(top, "init", "-q", "-b", "main")
    write(top, {"README.md": "monorepo\n", "kb/pwd.yaml": CONFIG, "kb/corpus/cells.md": CELLS})
    git(top, "add", "-A")
    git(top, "commit", "-qm", "a domain in kb/")
    info = extract_json(top / "kb")
    files = git(top, "diff", "--name-only", "HEAD", info["branch"]).splitlines()
    assert f"kb/{FOLDER}/cell.yaml" in files and "kb/extract.lock.json" in files
    assert all(f.startswith("kb/") for f in files)
    merge(top, info["branch"])
    assert run_cli("validate", cwd=top / "kb").code == 0
    assert "nothing new" in run_cli("extract", cwd=top / "kb").out


PLANTS = """
A chloroplast is a plastid that captures light.
Photosynthesis is a pathway that makes sugar.
Photosynthesis occurs in the chloroplast.
"""


def test_two_extraction_branches_of_different_documents_merge_cleanly(tmp_path):
    """Extracting one document, then another, from the same commit gives two branches that
    both change extract.lock.json; its merge driver (set up by init and by extract) takes
    each document's entry from the side that changed it, so both merge without a conflict."""
    root = corpus_repo(tmp_path / "two", {"pwd.yaml": CONFIG, "corpus/cells.md": CELLS, "corpus/plants.md": PLANTS,
                                          ".gitattributes": "extract.lock.json merge=pwd-extract-lock\n"})
    first, second = extract_json(root, "corpus/cells.md"), extract_json(root, "corpus/plants.md")
    merge(root, first["branch"])
    proc = run_git_merge(root, second["branch"])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lock = read_manifest((root / MANIFEST).read_bytes())
    assert sorted(lock["documents"]) == ["corpus/cells.md", "corpus/plants.md"]
    assert {f"{FOLDER}/chloroplast.yaml", f"{FOLDER}/mitochondrion.yaml"} <= set(lock["files"])
    assert run_cli("validate", cwd=root).code == 0
    again = run_cli("extract", cwd=root)  # the merged lock owns both documents' files
    assert again.code == 0 and "nothing new" in again.out, again.output


def test_the_lock_merge_driver_reports_a_document_both_sides_changed(tmp_path):
    """Both sides re-extracted the same document differently: a conflict naming it (exit 1),
    and the file left is still a valid lock (ours), so `git pwd extract` can redo it."""
    def lock(docs: dict) -> str:
        return json.dumps({"version": 1, "documents": {p: {"status": "extracted", "sha256": s, "chunks": 1}
                                                       for p, s in docs.items()}, "files": {}}, indent=2)

    paths = {}
    for name, docs in (("base", {"a.md": "1", "b.md": "1"}), ("ours", {"a.md": "2", "b.md": "1"}),
                       ("theirs", {"a.md": "3", "b.md": "1", "c.md": "1"})):
        paths[name] = tmp_path / name
        paths[name].write_text(lock(docs))
    res = run_cli("merge-lock", str(paths["base"]), str(paths["ours"]), str(paths["theirs"]), cwd=tmp_path)
    assert res.code == 1 and "a.md" in res.err and "b.md" not in res.err, res.output
    merged = read_manifest(paths["ours"].read_bytes())
    assert {p: d["sha256"] for p, d in merged["documents"].items()} == {"a.md": "2", "b.md": "1", "c.md": "1"}
    res = run_cli("merge-lock", str(paths["base"]), str(tmp_path / "missing"), str(paths["theirs"]), cwd=tmp_path)
    assert res.code == 2 and "Traceback" not in res.output, res.output
    paths["theirs"].write_text("<<<<<<< HEAD\n{}\n=======\n")
    before = paths["ours"].read_bytes()
    res = run_cli("merge-lock", str(paths["base"]), str(paths["ours"]), str(paths["theirs"]), cwd=tmp_path)
    assert res.code == 1 and "not a lock file" in res.err and "Traceback" not in res.output, res.output
    assert paths["ours"].read_bytes() == before


def run_git_merge(root: Path, branch: str):
    import subprocess

    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "merge", "-q", "--no-edit", branch],
                          cwd=root, capture_output=True, text=True)
