"""The patterns backend on text nobody on the project wrote: sentences and layouts taken from
Debian package docs (README, changelog, copyright), man pages as `man -P cat` prints them,
pydoc's plain text and HTML manuals. Each case is a misreading that once came out of them."""

from __future__ import annotations

import codecs
import os
import pydoc
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml

from pwd_git.extract import patterns
from pwd_git.extract.chunks import Chunk, chunk, stream_chunks
from tests.conftest import git, run_cli, snapshot
from tests.test_extract import corpus_repo, extract_json


def read(text: str, predicates: tuple[str, ...] = ()) -> dict:
    return patterns.extract_chunk(Chunk(0, 0, text), predicates)


def test_a_long_token_is_read_in_linear_time():
    """A base64 image inlined in Markdown, a minified line: one 'word' of a whole chunk."""
    start = time.perf_counter()
    assert read("x" * 20000) == {"concepts": [], "aliases": [], "statements": []}
    assert time.perf_counter() - start < 1  # was quadratic: about 25 s


@pytest.mark.parametrize("text", [
    "Revert 17, patch doesn't work anyway. 26 is a new patch for the problem of building as non-root.",  # a changelog
    "3.2.1 is a release with many fixes.",
    "2023 is a year of changes.",
])
def test_a_number_is_no_term(text):
    assert read(text)["concepts"] == []


def test_headings_and_separator_lines_of_plain_text_end_a_paragraph():
    man = "SED(1)\n\nNAME\n       sed - stream editor\n\nDESCRIPTION\n       Sed is a stream editor.\n"  # man -P cat
    assert [(c["term"], c["quote"]) for c in read(man)["concepts"]] == [("sed", "Sed is a stream editor.")]
    copyright_file = (" The names of the authors must not be used.\n .\n OpenLDAP is a registered trademark of the"
                      " OpenLDAP Foundation.\n .\n Permission to copy this document is granted.\n")
    assert [(c["term"], c["definition"], c["quote"]) for c in read(copyright_file)["concepts"]] == [
        ("OpenLDAP", "A registered trademark of the OpenLDAP Foundation.",
         "OpenLDAP is a registered trademark of the OpenLDAP Foundation.")]
    assert read("Zlib is a library for compression. .")["concepts"][0]["definition"] == "A library for compression."


def test_markers_inside_words_are_text_not_emphasis():
    def definition(text: str) -> str:
        return read(text)["concepts"][0]["definition"]

    assert definition("avalues is a vector of void * pointers.") == "A vector of void * pointers."  # libffi's manual
    assert definition("The SIZE argument is an integer with an optional unit (example: 10K is 10*1024).") == \
        "An integer with an optional unit (example: 10K is 10*1024)."  # after ls(1)
    assert definition("The *quick* enzyme is a protein that cuts **fast**.") == "A protein that cuts fast."
    assert read("``object_hook`` is a function that is called.")["concepts"][0]["term"] == "object_hook"  # pydoc


@pytest.mark.parametrize("sentence, expected", [
    # single-word premodifiers listed before the class
    ("Git is a fast, scalable, distributed revision control system with a rich command set.", [("git", "system")]),
    ("Zstd is a fast, lossless compression algorithm.", [("zstd", "algorithm")]),
    ("Zstd is a fast and lossless compression algorithm.", []),  # read as "an integer and optional unit" is:
    ("The SIZE argument is an integer and optional unit (example: 10K is 10*1024).", []),  # no class told
    ("Vienna is a city, capital of Austria.", [("vienna", "city")]),  # an apposition stays cut
    ("Cork is a city and port.", [("cork", "city")]),
    # a participle with its preposition, any preposition, ends the head
    ("Git is an Open Source project covered by the GNU General Public License version 2.", [("git", "project")]),
    ("Gold is a bold red text foreground over the current line background.", [("gold", "foreground")]),
    # a quantity is no class
    ("The worst case expansion is a few bytes for the gzip file header.", []),
    ("The der field is a pointer inside the buffer.", [("der field", "pointer")]),  # libtasn1's manual (PDF)
    # a word hyphenated across a line break by groff (U+2010 HYPHEN)
    ("The exit code argument is a GNU ex\u2010 tension.", [("exit code argument", "extension")]),
])
def test_the_class_a_definition_names(sentence, expected):
    assert [(c["term"], c["type"]) for c in read(sentence)["concepts"]] == expected


@pytest.mark.parametrize("sentence", [
    "The default is a bold red text foreground over the current line background.",  # grep(1), once per colour
    "The returned object is an iterator.",  # pydoc csv
    "The following is a list of the options.",
    "The given string is a path to the file.",
    "The output is an allocated value of the data.",  # libtasn1's manual, once per function
])
def test_a_subject_whose_referent_is_in_the_context_is_no_term(sentence):
    assert read(sentence)["concepts"] == []


DECLARED = ("supports", "removes", "returns", "reads", "writes", "provides", "uses", "produces")


@pytest.mark.parametrize("sentence", [
    "SELinux support has been integrated upstream.",  # "support" is a noun here, not the verb of "supports"
    "Explicitly disable zstd support (closes: #992505)",  # changelogs
    "Automatically remove unused kernels on apt upgrade.",  # an imperative
    "Please read the file INSTALL for installation instructions.",
    "Positional options always return true.",  # an adverb is no part of the subject
    "apt-ftparchive now reads the standard configuration files.",
    "w filename Write the current pattern space to filename.",  # sed(1): the verb starts the next line's text
    "The names read are handled the same way as command line arguments.",  # the object is a verb phrase
    "Enable brotli support (Closes: #940129)",
    "PPC uses -mlong-double-64 to prevent test failures (Closes: #641907)",
    "Parameters of such functions are treated as being attacker-controlled, such as for annotating system calls.",
])
def test_no_statement_from_a_misread_verb(sentence):
    assert read(sentence, DECLARED)["statements"] == []


@pytest.mark.parametrize("sentence, subject, obj", [
    ("The gzip command uses the Lempel-Ziv algorithm.", "gzip command", "the Lempel-Ziv algorithm"),
    ("Ribosomes produce proteins.", "ribosomes", "proteins"),
    ("Mitochondria produce ATP.", "mitochondria", "ATP"),
    ("Modern APIs use JSON.", "Modern APIs", "JSON"),
    ("The libffi library provides a portable interface.", "libffi library", "a portable interface"),
])
def test_statements_whose_verb_agrees_are_read(sentence, subject, obj):
    assert [(s["subject"], s["object"]) for s in read(sentence, DECLARED)["statements"]] == [(subject, obj)]


def test_a_utf16_document_is_skipped_naming_its_encoding(tmp_path):
    """What Windows Notepad saves as "Unicode": not a binary file, a text in another encoding."""
    root = corpus_repo(tmp_path / "d", {"pwd.yaml": "name: tools\n", "corpus/ok.txt": "Sed is a stream editor.\n"})
    (root / "corpus/notes.txt").write_bytes("Gzip is a compression program.\r\n".encode("utf-16"))
    (root / "corpus/page.html").write_bytes(codecs.BOM_UTF16_BE + "<p>Tar is an archiving program.</p>".encode("utf-16-be"))
    git(root, "add", "-A")
    git(root, "commit", "-qm", "utf-16")
    why = {d["doc"]: (d["status"], d["reason"]) for d in extract_json(root)["documents"]}
    for doc in ("corpus/notes.txt", "corpus/page.html"):
        assert why[doc] == ("skipped", "UTF-16 or UTF-32 text (it opens with that byte-order mark); save it as UTF-8")
    assert why["corpus/ok.txt"][0] == "extracted"


def test_a_broken_pdf_is_one_skip_line_and_no_library_noise(tmp_path):
    """pypdf logs what it repairs (with no file name); the user gets our one line per document."""
    root = corpus_repo(tmp_path / "d", {"pwd.yaml": "name: tools\n", "corpus/ok.txt": "Sed is a stream editor.\n",
                                        "corpus/cut.pdf": "%PDF-1.4\n1 0 obj\n<< /Type /Catalog >>\nendobj\n"})
    proc = subprocess.run([sys.executable, "-m", "pwd_git", "extract", "--dry-run"], cwd=root, capture_output=True,
                          text=True, env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])})
    assert proc.returncode == 0, proc.stderr
    assert "corpus/cut.pdf: skipped: not a readable PDF" in proc.stdout
    assert all(line.startswith(("reading ", "extracting ")) for line in proc.stderr.splitlines()), proc.stderr


@pytest.mark.parametrize("line_end, blank", [("\r\n", "\r\n"), ("\n", "\f\n"), ("\n", " \t\n"), ("\r", "\r"),
                                             ("\r", " \f\r")])
def test_paragraphs_end_at_blank_lines_of_any_kind(line_end, blank):
    """Windows line ends, a lone CR (classic Mac OS files) and a form feed between pages (GNU texts)
    cut paragraphs as blank lines do, so chunks are whole paragraphs, wherever the streamed pieces
    fall, and each chunk knows its line."""
    paragraphs = [f"Paragraph {i} is a paragraph of the text. " * (2 + i % 5) for i in range(30)]
    text = (line_end + blank).join(p.strip() for p in paragraphs) + line_end
    whole = chunk(text, 1000)
    assert len(whole) > 5
    for c in whole:
        assert all(part.strip() in {p.strip() for p in paragraphs} for part in c.text.split(line_end + blank)), c.text
        assert c.line == 1 + text.count(line_end, 0, c.start)
    for cut in range(len(paragraphs[0]) - 3, len(paragraphs[0]) + 6):
        assert [c.text for c in stream_chunks([text[:cut], text[cut:]], 1000)] == [c.text for c in whole]


def test_lone_cr_line_ends_through_the_verb(tmp_path):
    """A classic Mac OS file (lines ended by CR alone): its bad byte is named on its line, and a table
    is read row by row (csv took it for one row with line breaks in unquoted fields, and skipped it)."""
    root = corpus_repo(tmp_path / "d", {
        "pwd.yaml": "name: mac\n",
        "corpus/notes.txt": "The sprocket is a wheel that turns.\r\rA gear is a wheel with teeth.\r",
        "corpus/triples.csv": "subject,predicate,object\rribosome,type,structure\r"
                              "ribosome,definition,A complex that makes proteins.\r"})
    (root / "corpus/roman.txt").write_bytes(b"Old notes.\rA second line.\rThe caf\x8e is a place.\r")  # Mac OS Roman
    git(root, "add", "-A")
    git(root, "commit", "-qm", "classic Mac OS files")
    info = extract_json(root)
    why = {d["doc"]: (d["status"], d["reason"]) for d in info["documents"]}
    assert why["corpus/roman.txt"] == ("skipped", "not UTF-8 (byte 0x8e at line 3); save it as UTF-8")
    assert why["corpus/notes.txt"][0] == why["corpus/triples.csv"][0] == "extracted"
    assert sorted(c["id"] for c in info["concepts"]) == ["gear", "ribosome", "sprocket"]


def test_real_layouts_through_the_verb(tmp_path):
    """A man page as `man -P cat` prints it, a Debian copyright file with CRLF line ends and a form
    feed, a README: what is written is what the documents state, and the branch validates and builds."""
    man = ("GZIP(1)                 General Commands Manual                 GZIP(1)\n\nNAME\n       gzip - compress files\n\n"
           "DESCRIPTION\n       Gzip is a compression program that reduces the size of files.\n"
           "       Gzip uses the Lempel-Ziv algorithm.\n\n"
           "       The Lempel-Ziv algorithm is a lossless, dictionary-based compression method.\n"
           "       The default is a bold red text foreground over the line.\n")
    copyright_file = ("Files: *\r\nCopyright: 1992-2023 Free Software Foundation\r\nLicense: GPL-3+\r\n .\r\n"
                      " 26 is a new patch for the build.\r\n .\r\n\f\r\n OpenLDAP is a registered trademark of"
                      " the OpenLDAP Foundation.\r\n")
    root = corpus_repo(tmp_path / "d", {
        "pwd.yaml": "name: tools\npredicates:\n  uses: {functional: false}\n",
        "corpus/gzip.txt": man, "corpus/copyright.txt": copyright_file,
        "corpus/README.md": "# Git\n\nGit is a fast, scalable, distributed revision control system.\n",
    })
    info = extract_json(root)
    assert sorted(c["id"] for c in info["concepts"]) == ["git", "gzip", "lempel-ziv-algorithm", "openldap"]
    assert [s["id"] for s in info["statements"]] == ["gzip.uses.lempel-ziv-algorithm"]
    git(root, "checkout", "-q", info["branch"])
    nodes = {p.stem: yaml.safe_load(p.read_text()) for p in (root / "concepts/extracted").glob("*.yaml")}
    assert {cid: n["type"] for cid, n in nodes.items()} == {"git": "system", "gzip": "program",
                                                           "lempel-ziv-algorithm": "method", "openldap": "trademark"}
    texts = {p: " ".join((root / p).read_text().split()) for p in ("corpus/gzip.txt", "corpus/copyright.txt",
                                                                   "corpus/README.md")}
    for n in nodes.values():
        for source in [n["source"], *(r["source"] for r in n.get("relations", []))]:
            assert source["quote"] in texts[source["doc"]]
    assert run_cli("validate", cwd=root).code == 0
    assert run_cli("build", "-q", cwd=root).code == 0


@pytest.mark.parametrize("sentence, expected", [
    ("The GNU General Public License (GPL) does govern all other use of the material.",
     [("GNU General Public License", "GPL")]),
    ("Adenosine triphosphate (ATP) is a molecule.", [("adenosine triphosphate", "ATP")]),
    ("Deoxyribonucleic acid (DNA) is a molecule.", [("deoxyribonucleic acid", "DNA")]),
    ("2011-2014 PLUMgrid 2001-2003 Sistina Software (UK) Limited.", []),  # Debian copyright files
    ("Always use global offset table (GOT) to access external data.", []),  # GCC's NEWS
    ("RFC 3986 (STD66): Uniform Resource Identifiers by T. Berners-Lee.", []),  # pydoc urllib.parse
])
def test_an_abbreviation_in_parentheses_spells_its_term(sentence, expected):
    assert [(a["term"], a["alias"]) for a in read(sentence)["aliases"]] == expected


def test_a_declared_copula_leaves_definitions_to_the_definition_shape(tmp_path):
    """A taxonomy declares `is a` (the predicate of 'such as' statements): its definitions still define."""
    root = corpus_repo(tmp_path / "d", {
        "pwd.yaml": "name: kinds\npredicates:\n  is a: {functional: false}\n  is: {functional: false}\n",
        "corpus/a.txt": "The sprocket is a wheel that turns.\nA wheel is a device that rolls.\nA gear is a wheel with teeth.\n"
                        "Wheels such as the sprocket and the gear turn.\n"})
    info = extract_json(root)
    assert sorted(c["id"] for c in info["concepts"]) == ["gear", "sprocket", "wheel"]
    assert sorted(s["id"] for s in info["statements"]) == ["gear.is-a.wheel", "sprocket.is-a.wheel"]


@pytest.mark.parametrize("sentence, expected", [
    ("The latest directory is an alias for the latest Current release.", [("latest directory", "alias")]),  # nodejs
    ("The world atlas is an atlas of maps.", [("world atlas", "atlas")]),
    ("A Fibonacci sequence is a series of numbers.", [("Fibonacci sequence", "series")]),
    ("A T cell is a type of lymphocytes.", [("T cell", "lymphocyte")]),  # through "of", a plural's singular
])
def test_the_head_after_a_or_an_is_already_singular(sentence, expected):
    assert [(c["term"], c["type"]) for c in read(sentence)["concepts"]] == expected


def test_reference_style_markdown_links_read_as_their_text():
    found = read("Librsvg is part of the [GNOME platform][platform].")["statements"]  # librsvg's README
    assert [(s["subject"], s["object"]) for s in found] == [("librsvg", "the GNOME platform")]


def test_a_table_that_is_not_of_triples_is_skipped_with_its_columns(tmp_path):
    """distro-info's debian.csv: a real table, but no subject, predicate and object columns to import."""
    root = corpus_repo(tmp_path / "d", {
        "pwd.yaml": "name: tables\n",
        "corpus/debian.csv": "version,codename,series,created,release,eol\n1.1,Buzz,buzz,1993-08-16,1996-06-17,1997-06-05\n",
        "corpus/triples.tsv": "subject\tpredicate\tobject\nbuzz\tis part of\tdebian\n"})
    why = {d["doc"]: (d["status"], d["reason"]) for d in extract_json(root)["documents"]}
    assert why["corpus/debian.csv"] == ("skipped", "not a table of triples: its first row has no subject, predicate or "
                                        "object column (it has version, codename, series, created, release, ...); see "
                                        "docs/extract.md, Structured import")
    assert why["corpus/triples.tsv"][0] == "extracted"


def test_html_with_a_broken_marked_section_is_read_as_browsers_read_it(tmp_path):
    """`<![` that opens no CDATA or conditional section made html.parser raise: exit 3, internal error."""
    root = corpus_repo(tmp_path / "d", {
        "pwd.yaml": "name: pages\n",
        "corpus/page.html": "<html><body><p>The sprocket is a wheel that turns.</p><p>Write a<![0] to the port.</p>"
                            "<p><![if !supportLists]>- <![endif]>A gear is a wheel with teeth.</p></body></html>\n"})
    info = extract_json(root)
    assert sorted(c["id"] for c in info["concepts"]) == ["gear", "sprocket"]


def test_a_table_with_a_field_over_the_csv_limit_is_skipped_naming_its_line(tmp_path):
    """A 200 kB quoted field (a document pasted into a cell): csv.Error was an internal error, exit 3."""
    root = corpus_repo(tmp_path / "d", {
        "pwd.yaml": "name: tables\n",
        "corpus/big.csv": "subject,predicate,object\nribosome,is part of,cell\nribosome,definition,\"" + "x " * 100000 + "\"\n",
        "corpus/ok.txt": "The sprocket is a wheel that turns.\n"})
    why = {d["doc"]: (d["status"], d["reason"]) for d in extract_json(root)["documents"]}
    status, reason = why["corpus/big.csv"]
    assert status == "skipped" and reason.startswith("not readable as CSV (line 3: "), reason  # the rest is csv's words
    assert why["corpus/ok.txt"][0] == "extracted"


def test_a_pydoc_page_reads_class_docstrings_as_prose(tmp_path):
    """`pydoc threading > threading.txt`: a class's docstrings sit behind pydoc's ` |  ` gutter, which
    was read as a table row, so they were all lost; a pipe table is still no prose."""
    page = pydoc.render_doc(threading, renderer=pydoc.plaintext)
    assert "\n     |      *kwargs* is a dictionary of keyword arguments for the target\n" in page  # two lines
    root = corpus_repo(tmp_path / "d", {
        "pwd.yaml": "name: pydoc\n",
        "corpus/table.md": "| A gear is a wheel with teeth. | A cog is a wheel. |\n|---|---|\n"
                           "|  A sprocket is a wheel that turns.  |  A pulley is a wheel with a groove.\n"})
    (root / "corpus/threading.txt").write_text(page)
    git(root, "add", "-A")
    git(root, "commit", "-qm", "a pydoc page")
    info = extract_json(root)
    assert {"args", "kwargs"} <= {c["id"] for c in info["concepts"]}
    assert not {"gear", "cog", "sprocket", "pulley"} & {c["id"] for c in info["concepts"]}
    git(root, "checkout", "-q", info["branch"])
    node = yaml.safe_load((root / "concepts/extracted/kwargs.yaml").read_text())
    assert (node["type"], node["definition"]) == ("dictionary", "A dictionary of keyword arguments for the target "
                                                  "invocation.")  # the gutter is no part of the text
    assert node["source"]["quote"] in " ".join(page.split())  # but is of the quote, which is verbatim


def test_a_csv_with_an_unterminated_quote_is_skipped_naming_the_line_it_opens(tmp_path):
    """csv reads an unclosed quote to the end of the file as one field: the rows after it were lost
    without a word. The document is skipped instead, naming where the quote opens."""
    root = corpus_repo(tmp_path / "d", {
        "pwd.yaml": "name: tables\n",
        "corpus/open.csv": "subject,predicate,object\nribosome,is part of,cell\nribosome,definition,\"A complex "
                           "that makes proteins.\nribosome,type,structure\nnucleus,is part of,cell\n",
        "corpus/later.tsv": "subject\tpredicate\tobject\n\"ribo\nsome\"\tis part of\t\"cell\nnucleus\tis part of\tcell\n",
        "corpus/ok.txt": "The sprocket is a wheel that turns.\n"})
    info = extract_json(root)
    why = {d["doc"]: (d["status"], d["reason"]) for d in info["documents"]}
    for doc, line in (("corpus/open.csv", 3), ("corpus/later.tsv", 3)):  # in later.tsv, after a closed one
        status, reason = why[doc]
        assert status == "skipped" and reason.startswith(f"not readable as {doc[-3:].upper()} (line {line}: "), reason
    assert [c["id"] for c in info["concepts"]] == ["sprocket"] and info["statements"] == []


def test_an_imported_row_quotes_its_own_text(tmp_path):
    """A row's quote was the line at csv's line count in str.splitlines(), which also cuts at U+2028
    and form feeds: after one in a field, every later row quoted another row. A row whose quoted
    field holds a line break (a spreadsheet's multi-line cell) quotes its lines, whitespace
    normalised, from the line it begins on; the rows after it keep their own lines."""
    root = corpus_repo(tmp_path / "d", {
        "pwd.yaml": "name: tables\n",
        "corpus/t.csv": "subject,predicate,object\nribosome,type,structure\n"
                        "ribosome,definition,A complex that makes proteins.\u2028It is in every cell.\n"
                        "cell,type,unit\ncell,definition,\"The unit\nof life.\"\nribosome,is part of,cell\n"
                        "water,type,fluid\nwater,definition,A clear liquid.\n"})
    info = extract_json(root)
    git(root, "checkout", "-q", info["branch"])
    nodes = {p.stem: yaml.safe_load(p.read_text()) for p in (root / "concepts/extracted").glob("*.yaml")}
    assert nodes["cell"]["source"]["quote"] == 'cell,definition,"The unit of life."'
    assert nodes["cell"]["definition"] == "The unit\nof life."  # the field as written; the build flattens it
    assert [r["source"]["quote"] for r in nodes["ribosome"]["relations"]] == ["ribosome,is part of,cell"]
    assert nodes["ribosome"]["source"]["quote"] == "ribosome,definition,A complex that makes proteins. It is in every cell."
    assert nodes["water"]["source"]["quote"] == "water,definition,A clear liquid."
    assert info["dropped"] == []


@pytest.mark.parametrize("files", [
    {"corpus/notes.md": "# Notes\n\nNothing here says what anything is.\n"},
    {"corpus/scan.pdf": "%PDF-1.4\n", "corpus/big.csv": "version,codename\n1.1,buzz\n"},  # every document skipped
])
def test_a_corpus_that_yields_nothing_is_one_error_and_no_branch(tmp_path, files):
    """It committed a branch holding only extract.lock.json."""
    root = corpus_repo(tmp_path / "d", {"pwd.yaml": "name: empty\n", **files})
    before, refs = snapshot(root), git(root, "for-each-ref")
    result = run_cli("extract", "-q", cwd=root)
    assert result.code == 1 and result.err.startswith("error: nothing to extract: "), result.output
    assert "hint: " in result.err and "Traceback" not in result.output
    assert (snapshot(root), git(root, "for-each-ref")) == (before, refs)
    dry = run_cli("extract", "-q", "--dry-run", cwd=root)  # a dry run reports it, document by document
    assert dry.code == 0 and all(f"{doc}: " in dry.out for doc in files) and "nothing to commit: " in dry.out


def test_a_new_document_that_yields_nothing_commits_no_lock_file_alone(tmp_path):
    """After an extraction is merged, a committed document with nothing to extract changed only
    extract.lock.json: that is "nothing new" (exit 0), not a branch holding the lock file alone."""
    from tests.test_extract import CELLS, CONFIG

    root = corpus_repo(tmp_path / "d", {"pwd.yaml": CONFIG, "corpus/cells.md": CELLS})
    git(root, "merge", "-q", extract_json(root)["branch"])
    (root / "corpus/notes.md").write_text("# Notes\n\nNothing here says what anything is.\n")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "notes")
    before, refs = snapshot(root), git(root, "for-each-ref")
    info = extract_json(root)
    assert (info["branch"], info["yields_nothing"]) == (None, True), info
    assert (snapshot(root), git(root, "for-each-ref")) == (before, refs)
    assert "nothing new: " in run_cli("extract", cwd=root).out


def test_a_named_document_that_is_not_committed_is_named_in_the_error(tmp_path):
    """`git pwd import corpus/extra.csv` before committing it said the corpus yields nothing."""
    from tests.test_extract import CELLS, CONFIG

    root = corpus_repo(tmp_path / "d", {"pwd.yaml": CONFIG, "corpus/cells.md": CELLS})
    (root / "corpus/extra.csv").write_text("subject,predicate,object\ncytosol,type,fluid\n")
    before, refs = snapshot(root), git(root, "for-each-ref")
    for verb in (("extract", "corpus/extra.csv"), ("import", "corpus/extra.csv"), ("extract", "corpus/missing.md")):
        result = run_cli(*verb, cwd=root)
        assert result.code == 2 and f"'{verb[1]}' is not in the corpus at " in result.err, result.output
        assert ("not committed yet" in result.err) == (verb[1] == "corpus/extra.csv") and "Traceback" not in result.output
    assert (snapshot(root), git(root, "for-each-ref")) == (before, refs)


def test_a_corpus_whose_candidates_are_all_dropped_commits_nothing(tmp_path):
    """The dropped candidates are the report (exit 0, as for any run that drops some); the branch held
    only extract.lock.json."""
    root = corpus_repo(tmp_path / "d", {"pwd.yaml": "name: dropped\n",
                                        "corpus/t.tsv": "subject\tpredicate\tobject\nbuzz\tis part of\tdebian\n"})
    before, refs = snapshot(root), git(root, "for-each-ref")
    info = extract_json(root)
    assert (info["branch"], info["yields_nothing"], info["dropped_counts"]) == (None, True, {"unknown-subject": 1})
    assert (snapshot(root), git(root, "for-each-ref")) == (before, refs)
    assert "nothing to commit: " in run_cli("extract", cwd=root).out
