"""What the data compiler writes and what its leak check refuses, on KBs shaped like real
data: long names and predicates, definitions that start with their own term, types that
take "an"."""

from __future__ import annotations

import json
import re
import textwrap
from collections import Counter
from pathlib import Path

import pytest

from pwd_git.build.decontam import words
from pwd_git.build.generate import generate
from pwd_git.build.templates import MASK, article, clue, define, restates, sentence, unmatched
from pwd_git.kb.loader import Domain, load_worktree
from tests.conftest import git, run_cli, snapshot, write
from tests.test_build import build_ok, by_template, shard_records

BORDER = "shares a land border with the country of"  # 8 words
LOCATED = "is located in the continent of"
CONFIG = f"""
name: atlas
predicates:
  {BORDER}: {{functional: false}}
  {LOCATED}: {{functional: true}}
  is the capital city of: {{functional: true}}
model: {{base: tiny}}
"""  # no build: section, so build.ngram is the default 8

#: id -> (term, type, definition, relations). Subject name + predicate run to 8-14 words.
ATLAS = {
    "drc": ("Democratic Republic of the Congo", "country", "A large country of Central Africa, crossed by the equator.",
            [(BORDER, "angola"), (LOCATED, "africa")]),
    "angola": ("Angola", "country", "A country on the south-western coast of Africa.", [(LOCATED, "africa")]),
    "zambia": ("Zambia", "country", "A landlocked country of southern Africa.", [(BORDER, "angola"), (LOCATED, "africa")]),
    "uk": ("United Kingdom of Great Britain and Northern Ireland", "country",
           "The United Kingdom of Great Britain and Northern Ireland is an island country of north-western Europe.",
           [(LOCATED, "europe")]),
    "svg": ("Saint Vincent and the Grenadines", "country", "An island country of the Lesser Antilles.",
            [(LOCATED, "north-america")]),
    "london": ("London", "city", "The capital of the United Kingdom of Great Britain and Northern Ireland, on the Thames.",
               [("is the capital city of", "uk")]),
    "luanda": ("Luanda", "city", "The largest city and main port of Angola.", [("is the capital city of", "angola")]),
    "africa": ("Africa", "continent", "The second-largest continent, south of the Mediterranean.", []),
    "europe": ("Europe", "continent", "The continent west of the Ural Mountains.", []),
    "asia": ("Asia", "continent", "The largest and most populous continent.", []),
    "north-america": ("North America", "continent", "The continent of Canada, Mexico and the Caribbean.", []),
    "oceania": ("Oceania", "continent", "The continent of Australia and the Pacific islands.", []),
}
BORDER_CHAIN = f"""
id: drc-continent
title: Across the southern border of the Congo
split: test
steps:
  - drc.{BORDER.replace(" ", "-")}.angola
  - angola.{LOCATED.replace(" ", "-")}.africa
items:
  - question: Leaving Kinshasa by road towards the south, on which landmass does a traveller stay?
    choices: [Africa, Europe, Asia, Oceania]
    answer: 0
"""
CAPITAL_CHAIN = f"""
id: london-continent
title: Where London lies
split: test
steps:
  - london.is-the-capital-city-of.uk
  - uk.{LOCATED.replace(" ", "-")}.europe
"""


def atlas_concept(cid: str, text: dict[str, str] | None = None, definition: str | None = None) -> str:
    term, ctype, written, relations = ATLAS[cid]
    definition = definition or written
    lines = [f"id: {cid}", f"term: {term}", f"type: {ctype}", f"definition: {definition}"]
    if relations:
        lines.append("relations:")
        for predicate, target in relations:
            lines += [f"  - predicate: {predicate}", f"    object: {target}"]
            if text and target in text:
                lines.append(f"    text: {json.dumps(text[target])}")
    return "\n".join(lines) + "\n"


@pytest.fixture
def atlas(tmp_path) -> Path:
    root = tmp_path / "atlas"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    files = {"pwd.yaml": CONFIG, "chains/drc-continent.yaml": BORDER_CHAIN,
             "chains/london-continent.yaml": CAPITAL_CHAIN}
    files.update({f"concepts/{cid}.yaml": atlas_concept(cid) for cid in ATLAS})
    write(root, files)
    git(root, "add", "-A")
    git(root, "commit", "-qm", "atlas")
    return root


def _leak_report(res) -> tuple[str, list[str], str]:
    """(head, leak lines, hint) of a leakage error."""
    lines = res.err.strip().splitlines()
    head = next(line for line in lines if "benchmark leakage" in line)
    return head, [line.strip() for line in lines if line.strip().startswith("benchmark item ")], \
        next(line for line in lines if line.strip().startswith("hint:"))


# --- the leak check on real-data shapes -------------------------------------------------------

def test_long_names_and_predicates_build_with_the_default_settings(atlas):
    """Probes quote their node's own fact ("Complete the statement: Democratic Republic of the
    Congo shares a land border with the country of"), a long term appears in other concepts'
    definitions (London's names the United Kingdom), and an 8-word predicate is shared by
    every statement that uses it: none of that lets a model answer by copying."""
    res = run_cli("build", cwd=atlas)
    assert res.code == 0, res.output
    bench = shard_records(atlas, "bench")
    quoted = {b["question"] for b in bench}
    assert f"Quiz. Complete the statement: Democratic Republic of the Congo {BORDER}" in quoted
    assert "Quiz. In this domain, United Kingdom of Great Britain and Northern Ireland is defined as" in quoted
    train = [m["content"] for r in shard_records(atlas, "train") for m in r["messages"]]
    assert f"Democratic Republic of the Congo {BORDER} Angola." in train, "the probed fact is taught as is"


def test_statement_text_copying_a_hand_written_item_and_its_answer_is_a_leak(atlas):
    build_ok(atlas)
    before = {k: v for k, v in snapshot(atlas).items() if k.startswith("shards/")}
    copy = "Leaving Kinshasa by road towards the south, on which landmass does a traveller stay? Africa."
    write(atlas, {"concepts/zambia.yaml": atlas_concept("zambia", text={"angola": copy})})
    res = run_cli("build", cwd=atlas)
    assert res.code == 1, res.output
    head, leaks, hint = _leak_report(res)
    assert "1 benchmark item can be answered by copying training data" in head
    out = generate(_kb(atlas))
    (hand,) = [b for b in out.bench["l3"] if b["template"] == "hand"]
    (text,) = [r for r in out.train["l2"] if r["template"] == "l2.text"]
    assert hand["source"] == "chains/drc-continent.yaml:8" and text["source"] == "concepts/zambia.yaml:6"
    assert leaks and all(hand["id"] in line and hand["source"] in line and "hand-written item" in line
                         and text["id"] in line and text["source"] in line for line in leaks)
    assert "reword the hand-written item" in hint and "generated probe" not in hint
    assert "Traceback" not in res.output
    assert {k: v for k, v in snapshot(atlas).items() if k.startswith("shards/")} == before


def test_patch_example_copying_a_generated_probe_names_the_probed_statement(atlas):
    (probe,) = [b for b in generate(_kb(atlas)).bench["l2"] if b["traces"]["statements"][0].startswith("drc.shares")]
    write(atlas, {"patches/copy.yaml": textwrap.dedent(f"""
        examples:
          - traces: {{concepts: [drc], statements: [{probe["traces"]["statements"][0]}]}}
            messages:
              - {{role: user, content: {json.dumps(probe["question"])}}}
              - {{role: assistant, content: Angola}}
    """)})
    res = run_cli("build", cwd=atlas)
    assert res.code == 1, res.output
    head, leaks, hint = _leak_report(res)
    assert "1 benchmark item can be answered" in head, "the same item against one record is one item"
    (line,) = leaks
    assert probe["id"] in line and probe["source"] in line and "patches/copy.yaml:2" in line
    assert f"probe of statement {probe['traces']['statements'][0]!r}" in line
    assert "shares a run of 8 words with" in line
    assert "patch example" in hint and "build.ngram (now 8)" in hint and "hand-written" not in hint


def test_another_nodes_record_giving_the_answer_after_the_quoted_words_is_a_leak(atlas):
    """The quoted words followed by the answer, in a record about other nodes, answer the probe
    by copying; the same sentence traced to the probed statement is that statement's training."""
    fact = f"Democratic Republic of the Congo {BORDER} Angola."
    patch = """
        examples:
          - traces: {{concepts: [{concept}]}}
            messages:
              - {{role: user, content: Name one fact you know.}}
              - {{role: assistant, content: {fact}}}
    """
    write(atlas, {"patches/fact.yaml": textwrap.dedent(patch.format(concept="drc", fact=fact))})
    build_ok(atlas)
    write(atlas, {"patches/fact.yaml": textwrap.dedent(patch.format(concept="zambia", fact=fact))})
    res = run_cli("build", cwd=atlas)
    assert res.code == 1, res.output
    head, leaks, _ = _leak_report(res)
    assert "1 benchmark item" in head
    (line,) = leaks
    assert "is answered verbatim by" in line and "patches/fact.yaml:2" in line and "probe of statement" in line


def test_find_leaks_judges_records_by_their_traces_like_the_build(atlas):
    """`find_leaks` (what `patch` drops examples by) is the build's rule: the probed statement
    restated is that statement's training when traced to it, a leak when traced to nothing."""
    from pwd_git.build.decontam import find_leaks

    bench = [b for items in generate(_kb(atlas)).bench.values() for b in items]
    fact = {"role": "assistant", "content": f"Democratic Republic of the Congo {BORDER} Angola."}
    record = {"id": "r1", "source": "patch", "messages": [{"role": "user", "content": "Name a fact."}, fact]}
    traced = {**record, "traces": {"concepts": ["drc"], "statements": [], "chain": None}}
    assert find_leaks(bench, [traced]) == []
    (leak,) = find_leaks(bench, [record])
    assert leak.reason == "is answered verbatim by" and leak.probe == f"statement 'drc.{BORDER.replace(' ', '-')}.angola'"


def test_a_reused_record_is_checked_again_when_the_answer_it_could_give_away_changes(atlas):
    """London's definition holds the words of the UK's describe probe; it gives the answer away
    only once the UK's definition changes to what follows them. London's unchanged records are
    reused from the last build, and must still be checked against the new answer."""
    london = "The capital of the United Kingdom of Great Britain and Northern Ireland is defined as a sovereign state."
    write(atlas, {"concepts/london.yaml": atlas_concept("london", definition=london)})
    build_ok(atlas)
    write(atlas, {"concepts/uk.yaml": atlas_concept("uk", definition="A sovereign state.")})
    res = run_cli("build", cwd=atlas)
    assert res.code == 1, res.output
    head, leaks, _ = _leak_report(res)
    assert "1 benchmark item" in head
    assert leaks and all("probe of concept 'uk'" in line and "is answered verbatim by" in line
                         and "concepts/london.yaml:1" in line for line in leaks)


def test_a_leak_report_counts_items_not_pairs(atlas):
    """One hand-written item copied by three training records: one item, on one line that names
    the first record and counts the other two, with their sources."""
    copy = "Leaving Kinshasa by road towards the south, on which landmass does a traveller stay?"
    write(atlas, {"patches/copies.yaml": "examples:\n" + "".join(
        f"  - traces: {{concepts: [angola]}}\n    messages:\n      - {{role: user, content: \"{copy} ({n})\"}}\n"
        f"      - {{role: assistant, content: Africa}}\n" for n in range(3))})
    res = run_cli("build", cwd=atlas)
    assert res.code == 1, res.output
    head, leaks, _ = _leak_report(res)
    assert "1 benchmark item can be answered" in head and len(leaks) == 1
    assert leaks[0].count("patches/copies.yaml:") == 3 and "; and 2 more training record(s) (" in leaks[0]


def _kb(root: Path):
    kb, diags = load_worktree(Domain.find(root), use_cache=False)
    assert not [d for d in diags if d.severity == "error"], diags
    return kb


# --- generated text ---------------------------------------------------------------------------

@pytest.mark.parametrize(("phrase", "expected"), [
    ("element", "an"), ("organelle", "an"), ("island country", "an"), ("city", "a"), ("country", "a"),
    ("unit", "a"), ("European capital", "a"), ("eukaryotic cell", "a"), ("one-way street", "a"),
    ("hour", "an"), ("honest broker", "an"), ("hub", "a"), ("Uzbek city", "an")])
def test_article_follows_the_sound_of_the_next_word(phrase, expected):
    assert article(phrase) == expected


def _chem(root: Path) -> Path:
    """Elements, units, a period and an instrument; definitions that restate their term (with
    and without an article, through an alias) and ones that do not."""
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    concepts = {
        "oxygen": ("oxygen", "element", "Oxygen is a reactive gas that most life breathes.", ["O2"],
                   [("reacts with", "hydrogen")]),
        "hydrogen": ("hydrogen", "element", "The hydrogen is the lightest element of all.", [],
                     [("is measured in", "mole")]),
        "helium": ("helium", "element", "A noble gas lighter than air, unlike radon.", [], []),
        "radon": ("radon", "element", "Rn refers to a radioactive noble gas; radon seeps from granite.", ["Rn"], []),
        "mole": ("mole", "unit", "The unit of amount of substance.", [], []),
        "second": ("second", "unit", "The base unit of time.", [], []),
        "hour": ("hour", "period", "Sixty minutes of time.", [], []),
        "flask": ("flask", "instrument", "A glass vessel with a narrow neck.", [], []),
    }
    files = {"pwd.yaml": "name: chem\nmodel: {base: tiny}\n",
             "chains/oxygen-hydrogen.yaml": "id: oxygen-hydrogen\ntitle: t\nsplit: test\n"
                                            "steps: [oxygen.reacts-with.hydrogen]\n"}
    for cid, (term, ctype, definition, aliases, relations) in concepts.items():
        text = f"id: {cid}\nterm: {term}\ntype: {ctype}\ndefinition: {definition}\n"
        if aliases:
            text += f"aliases: [{', '.join(aliases)}]\n"
        if relations:
            text += "relations:\n" + "".join(f"  - predicate: {p}\n    object: {o}\n" for p, o in relations)
        files[f"concepts/{cid}.yaml"] = text
    write(root, files)
    git(root, "add", "-A")
    git(root, "commit", "-qm", "chem")
    return root


def test_types_take_the_article_their_sound_asks_for(tmp_path):
    root = _chem(tmp_path / "chem")
    build_ok(root)
    answers = {r["traces"]["concepts"][0]: r["messages"][1]["content"]
               for r in by_template(shard_records(root, "train"), "l1.type")}
    assert answers["helium"] == "helium is an element."
    assert answers["mole"] == "mole is a unit."
    assert answers["hour"] == "hour is a period."
    assert answers["flask"] == "flask is an instrument."
    kinds = by_template(shard_records(root, "bench"), "probe.l1.kind")
    assert {item["question"] for item in kinds} == {"Quiz. In this domain, oxygen is", "Quiz. In this domain, hydrogen is"}
    for item in kinds:
        assert item["choices"][item["answer"]] == "an element"
        assert set(item["choices"]) == {"an element", "a unit", "a period", "an instrument"}, "each choice its article"


def test_a_term_that_names_its_type_gets_no_kind_probe(tmp_path):
    """"hydrogen element is" + "an element" is answered by matching the question's words."""
    root = _chem(tmp_path / "chem")
    text = (root / "concepts/hydrogen.yaml").read_text()
    write(root, {"concepts/hydrogen.yaml": text.replace("term: hydrogen\n", "term: hydrogen Element\n")})
    build_ok(root)
    bench = shard_records(root, "bench")
    assert [i["question"] for i in by_template(bench, "probe.l1.kind")] == ["Quiz. In this domain, oxygen is"]
    assert any(i["traces"]["concepts"] == ["hydrogen"] for i in by_template(bench, "probe.l1.describe"))


def test_a_definition_that_starts_with_its_term_is_not_repeated(tmp_path):
    root = _chem(tmp_path / "chem")
    build_ok(root)
    define = {r["traces"]["concepts"][0]: r["messages"][1]["content"]
              for r in by_template(shard_records(root, "train"), "l1.define")}
    assert define["oxygen"] == "Oxygen is a reactive gas that most life breathes."
    assert define["hydrogen"] == "The hydrogen is the lightest element of all."
    assert define["radon"] == "Rn refers to a radioactive noble gas; radon seeps from granite.", "an alias counts too"
    assert define["helium"] == "helium is defined as A noble gas lighter than air, unlike radon."
    names = {r["messages"][1]["content"]: r["messages"][0]["content"]
             for r in by_template(shard_records(root, "train"), "l1.name")}
    assert names["oxygen"] == "Which term means: a reactive gas that most life breathes.", "the clue does not name it"
    assert names["radon"] == f"Which term means: a radioactive noble gas; {MASK} seeps from granite."


def test_describe_probes_cannot_be_answered_by_matching_the_question_against_the_choices(tmp_path):
    root = _chem(tmp_path / "chem")
    build_ok(root)
    kb = _kb(root)
    describe = by_template(shard_records(root, "bench"), "probe.l1.describe")
    assert {item["traces"]["concepts"][0] for item in describe} == {"oxygen", "hydrogen"}
    for item in describe:
        c = kb.concepts[item["traces"]["concepts"][0]]
        for choice in item["choices"]:
            for name in (c.term, *c.aliases):
                assert not _contains(choice, name), (name, choice)
        assert len(set(item["choices"])) == len(item["choices"])
    (oxygen,) = [i for i in describe if i["traces"]["concepts"] == ["oxygen"]]
    assert oxygen["choices"][oxygen["answer"]] == "a reactive gas that most life breathes."


def _contains(text: str, name: str) -> bool:
    """Whether `name` occurs in `text` as whole words (the words decontamination sees)."""
    return f" {b' '.join(words(name)).decode()} " in f" {b' '.join(words(text)).decode()} "


def test_no_describe_probe_of_the_example_domain_shows_its_concept(tmp_path):
    root = tmp_path / "cell-biology"
    assert run_cli("init", "--template", "example", str(root), cwd=tmp_path).code == 0
    build_ok(root)
    kb = _kb(root)
    describe = by_template(shard_records(root, "bench"), "probe.l1.describe")
    assert len(describe) > 20
    for item in describe:
        c = kb.concepts[item["traces"]["concepts"][0]]
        for name in (c.term, *c.aliases):
            assert not any(_contains(choice, name) for choice in item["choices"]), (c.id, name, item["choices"])
        assert len(set(item["choices"])) == len(item["choices"]) == 4, item


def test_clue_helpers_on_edge_cases():
    assert restates("Abu Dhabi is a city.", ("Abu Dhabi",)) == len("Abu Dhabi is ")
    assert restates("abu  dhabi  refers to the capital", ("Abu Dhabi",)) == len("abu  dhabi  refers to ")
    assert restates("Abu Dhabian food is spicy.", ("Abu Dhabi",)) == 0, "whole words only"
    assert restates("Abu Dhabi is", ("Abu Dhabi",)) == 0, "nothing after the copula: keep it"
    assert restates("Isotopes are atoms.", ("isotope",)) == 0
    assert clue("The capital of the UAE, next to Dubai and dubai-port.", ("Abu Dhabi",), ("Dubai",)) == \
        f"The capital of the UAE, next to {MASK} and {MASK}-port."
    assert clue("Dubaian food.", ("Dubai",)) == "Dubaian food."


def test_a_definition_stated_on_its_own_ends_as_a_sentence():
    """l1.define's answer (and a patch's sibling contrast, which goes on after it) ends with a
    period when the definition has none: "... - runtime By contrast, ..." ran on."""
    names = ("libfoo",)
    assert define("libfoo", "Shared library - runtime", names) == "libfoo is defined as Shared library - runtime."
    assert define("libfoo", "libfoo is a shared library", names) == "libfoo is a shared library."
    for done in ("A library.", "Is it a library?", "A library!", '"A library."', "(A library.)", "A library.\n"):
        assert define("x", done, names) == f"x is defined as {done}", done
    assert sentence("A library  \n") == "A library."


def test_a_version_number_in_a_name_is_masked_in_the_clues(tmp_path):
    """"python3.11 is defined as": only the answer said "3.11" ("version 3.11"), and tk8.6-dev's
    definition "v8.6". A dotted number in a name is masked wherever a clue has it whole, in the
    concept's own definition and, as the probed name's, in every other choice; a number that only
    contains it ("13.11", "3.11.2") is another number."""
    assert clue("Shared runtime (version 3.11).", ("libpython3.11",)) == f"Shared runtime (version {MASK})."
    assert clue("Tk toolkit v8.6 - files, not 18.6 or 8.6.1", ("tk8.6-dev",)) == \
        f"Tk toolkit v{MASK} - files, not 18.6 or 8.6.1"
    assert clue("Python 3.11 headers", ("libfoo",), ("python3.11",)) == f"Python {MASK} headers"
    root = tmp_path / "pkgs"
    root.mkdir()
    git(root, "init", "-q")
    packages = {"python3-11": ("python3.11", "Interactive language (version 3.11)", "tk8-6-dev"),
                "tk8-6-dev": ("tk8.6-dev", "Tk toolkit for Tcl v8.6 - development files", "libbar"),
                "libpython3-11": ("libpython3.11", "Shared Python runtime library (version 3.11)", None),
                "libbar": ("libbar", "Bar runtime, release 13.11 of 3.11.2", None),
                "libbaz": ("libbaz", "Baz runtime", None)}
    files = {"pwd.yaml": "name: pkgs\npredicates: {depends on: {functional: false}}\n",
             "chains/c.yaml": "id: c\ntitle: t\nsplit: test\nsteps: [python3-11.depends-on.tk8-6-dev, "
                              "tk8-6-dev.depends-on.libbar]\n"}
    for cid, (term, definition, needs) in packages.items():
        files[f"concepts/{cid}.yaml"] = f"id: {cid}\nterm: {term}\ntype: package\ndefinition: {definition}\n" + (
            f"relations:\n  - {{predicate: depends on, object: {needs}}}\n" if needs else "")
    write(root, files)
    describe = by_template(generate(_kb(root)).bench["l1"], "probe.l1.describe")
    assert len(describe) == 3
    for item in describe:
        assert not [c for c in item["choices"] if re.search(r"(?<![\d.])(3\.11|8\.6)(?!\d|\.\d)", c)], item
    assert {c for item in describe for c in item["choices"]} >= {
        f"Interactive language (version {MASK})", f"Tk toolkit for Tcl v{MASK} - development files",
        "Bar runtime, release 13.11 of 3.11.2"}


def test_a_word_of_the_term_that_only_the_answer_repeats_is_masked_in_it(tmp_path):
    """MIME types as the freedesktop database defines them: "application/json is defined as"
    with "JSON document" among definitions that never say JSON is answered by matching the
    question's words. Such a word is masked in the answer; one that another choice shares too
    ("document") points at no choice and stays."""
    assert unmatched("application/json", "JSON document", ("XML document", "plain text")) == f"{MASK} document"
    assert unmatched("application/json", "JSON document", ("JSON lines", "plain text")) == "JSON document"
    assert unmatched("image/svg+xml", "SVG image", ("PNG image",)) == f"{MASK} image"
    root = tmp_path / "mime"
    root.mkdir()
    git(root, "init", "-q")
    types = {"application-json": ("application/json", "JSON document"),
             "image-svg-xml": ("image/svg+xml", "SVG vector image"),
             "image-png": ("image/png", "PNG image"), "text-plain": ("text/plain", "plain text document"),
             "text-csv": ("text/csv", "CSV document")}
    files = {"pwd.yaml": "name: mime\npredicates: {is a subclass of: {functional: false}}\n"}
    for cid, (term, definition) in types.items():
        files[f"concepts/{cid}.yaml"] = f"id: {cid}\nterm: {term}\ntype: mime type\ndefinition: {definition}\n" + (
            "" if cid == "text-plain" else "relations:\n  - {predicate: is a subclass of, object: text-plain}\n")
        if cid != "text-plain":
            files[f"chains/{cid}-up.yaml"] = f"id: {cid}-up\ntitle: t\nsplit: test\nsteps: [{cid}.is-a-subclass-of.text-plain]\n"
    write(root, files)
    describe = by_template(generate(_kb(root)).bench["l1"], "probe.l1.describe")
    assert describe
    for item in describe:
        term = item["question"].removeprefix("Quiz. In this domain, ").removesuffix(" is defined as")
        words = set(re.findall(r"[a-z0-9]+", term.lower()))
        shared = [w for w in words if sum(bool(re.search(rf"\b{w}\b", c, re.I)) for c in item["choices"]) == 1
                  and re.search(rf"\b{w}\b", item["choices"][item["answer"]], re.I)]
        assert not shared, item


def test_describe_distractors_share_the_words_and_blanks_the_answer_shows(tmp_path):
    """A describe answer that repeats a word of its term ("DNA polymerase": "... a template DNA
    strand") draws its distractors first among the definitions that say that word too, so the
    word points at no one choice and is not blanked; a definition that names its own term
    mid-text (blanked) draws definitions that are blanked as well, and one that does not, none
    that are: a blank in one choice alone is a tell either way."""
    root = tmp_path / "enzymes"
    root.mkdir()
    git(root, "init", "-q")
    plain = [f"An enzyme that acts on substrate number {i} in the {w} pathway." for i, w in
             enumerate(["glycolysis", "urea", "sterol", "purine", "heme", "folate", "lipid", "amino acid", "sugar"])]
    concepts = {"dna-polymerase": ("DNA polymerase", "An enzyme that extends a primer along a template DNA strand."),
                "dna-ligase": ("DNA ligase", "An enzyme that seals nicks in the backbone of DNA."),
                **{f"enzyme-{i}": (f"enzyme E{i}", text) for i, text in enumerate(plain)},
                **{f"kinase-{i}": (f"kinase K{i}", f"A transferase; kinase K{i} moves phosphate to target {i}.")
                   for i in range(4)}}
    files = {"pwd.yaml": "name: enzymes\n",
             "concepts/cell.yaml": "id: cell\nterm: cell\ntype: place\ndefinition: The unit of life.\n"}
    for cid, (term, definition) in concepts.items():
        files[f"concepts/{cid}.yaml"] = (f"id: {cid}\nterm: {term}\ntype: enzyme\ndefinition: {definition}\n"
                                         "relations:\n  - {predicate: acts in, object: cell}\n")
        files[f"chains/{cid}-in.yaml"] = f"id: {cid}-in\ntitle: t\nsplit: test\nsteps: [{cid}.acts-in.cell]\n"
    write(root, files)
    describe = {item["question"].removeprefix("Quiz. In this domain, ").removesuffix(" is defined as"): item
                for item in by_template(generate(_kb(root)).bench["l1"], "probe.l1.describe")}
    polymerase = describe["DNA polymerase"]
    assert concepts["dna-ligase"][1] in polymerase["choices"], polymerase
    assert MASK not in polymerase["choices"][polymerase["answer"]], polymerase
    for item in describe.values():
        blanked = [MASK in c for c in item["choices"]]
        assert len(set(blanked)) == 1, item  # all blanked (the kinases) or none
    assert any(MASK in describe[f"kinase K{i}"]["choices"][0] for i in range(4))


def _errors(root: Path) -> Path:
    """Python's exceptions as their docstrings define them: identifier names (CamelCase,
    snake_case) that running text spells as words, and a definition that only restates its name."""
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    concepts = {
        "connection-error": ("ConnectionError", "Connection error."),
        "child-process-error": ("ChildProcessError", "Child process error."),
        "key-error": ("KeyError", "Mapping key not found."),
        "value-error": ("ValueError", "Inappropriate argument value (of correct type)."),
        "os-error": ("OSError", "Base class for I/O related errors."),
        "buenos-aires": ("Buenos_Aires", "The zone of buenos aires, in the America area."),
        "processing": ("HTTP 102", "Processing."),
        "exception": ("Exception", "Common base class for all non-exit exceptions."),
    }
    files = {"pwd.yaml": "name: errors\nmodel: {base: tiny}\n"}
    for cid, (term, definition) in concepts.items():
        text = f"id: {cid}\nterm: {term}\ntype: exception class\ndefinition: {definition}\n"
        if cid == "processing":
            text += "aliases: [Processing]\n"
        if cid != "exception":
            text += "relations:\n  - predicate: is a subclass of\n    object: exception\n"
        files[f"concepts/{cid}.yaml"] = text
    for cid in concepts:
        if cid != "exception":
            files[f"chains/{cid}-base.yaml"] = (f"id: {cid}-base\ntitle: t\nsplit: test\n"
                                                f"steps: [{cid}.is-a-subclass-of.exception]\n")
    write(root, files)
    git(root, "add", "-A")
    git(root, "commit", "-qm", "errors")
    return root


def test_identifier_names_are_masked_as_running_text_spells_them(tmp_path):
    """"ConnectionError is defined as" answered by "Connection error." is a probe answerable from
    its own words: a CamelCase or snake_case name is masked in its spaced spelling too."""
    root = _errors(tmp_path / "errors")
    build_ok(root)
    describe = {i["traces"]["concepts"][0]: i for i in by_template(shard_records(root, "bench"), "probe.l1.describe")}
    shown = [choice for item in describe.values() for choice in item["choices"]]
    assert "Connection error." not in shown and "Child process error." not in shown
    buenos = describe["buenos-aires"]
    assert buenos["choices"][buenos["answer"]] == f"The zone of {MASK}, in the America area."
    assert clue("A linked list node; a LinkedList.", ("LinkedList",)) == f"A {MASK} node; a {MASK}."
    assert clue("The IOError alias; an I/O error, an io error.", ("IOError",)) == f"The {MASK} alias; an I/O error, an {MASK}."
    assert clue("Ends in .rstrip, not a strip.", ("rstrip",)) == f"Ends in .{MASK}, not a strip.", "lower case: one word"


def test_a_definition_that_only_restates_its_name_is_no_probe_and_no_choice(tmp_path):
    """"Processing." for HTTP 102 (alias Processing), "Connection error." for ConnectionError:
    masked, the clue is "___.", which tells no concept from another. Such a concept gets no
    describe probe (its kind probe stays), its definition is offered as no wrong choice, and no
    l1.name record asks "Which term means: ___."."""
    root = _errors(tmp_path / "errors")
    build_ok(root)
    bench = shard_records(root, "bench")
    described = {i["traces"]["concepts"][0] for i in by_template(bench, "probe.l1.describe")}
    assert described == {"key-error", "value-error", "os-error", "buenos-aires", "exception"}, described
    assert all(MASK + "." not in item["choices"] for item in bench), "no choice reads only the blank"
    named = {r["messages"][1]["content"] for r in by_template(shard_records(root, "train"), "l1.name")}
    assert "HTTP 102" not in named and "ConnectionError" not in named and "KeyError" in named


def test_a_name_of_underscores_alone_builds(tmp_path):
    """`term: _` (the schema allows any string): an identifier with no words to space, so it is
    masked as written, and the build does not stop with an internal error."""
    root = _errors(tmp_path / "errors")
    write(root, {"concepts/key-error.yaml": (root / "concepts/key-error.yaml").read_text().replace("KeyError", "_")})
    build_ok(root)
    describe = by_template(shard_records(root, "bench"), "probe.l1.describe")
    assert any(i["traces"]["concepts"][0] == "key-error" and " _ is defined as" in i["question"] for i in describe)
    assert clue("The _ of a _name.", ("_",)) == f"The {MASK} of a _name."


def test_a_literal_value_is_written_as_the_file_writes_it(tmp_path):
    """YAML reads `3.10` as the float 3.1 and `yes` as True: "Python has version 3.1." and
    "... is cacheable True." A statement's value is a literal, kept as written, ids included."""
    root = tmp_path / "lits"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    values = {"has version": "3.10", "is cacheable": "yes", "has weight": "1.0e3", "has flag": "0x1F", "has code": "404"}
    write(root, {"pwd.yaml": "name: lits\nmodel: {base: tiny}\n",
                 "concepts/python.yaml": "id: python\nterm: Python\ntype: language\ndefinition: A language.\nrelations:\n"
                                         + "".join(f"  - predicate: {p}\n    value: {v}\n" for p, v in values.items())})
    kb = _kb(root)
    assert sorted(kb.statements) == ["python.has-code.404", "python.has-flag.0x1f", "python.has-version.3-10",
                                     "python.has-weight.1-0e3", "python.is-cacheable.yes"]
    build_ok(root)
    facts = {r["messages"][1]["content"] for r in by_template(shard_records(root, "train"), "l2.fact")}
    assert facts == {f"Python {p} {v}." for p, v in values.items()}


def test_an_item_whose_question_shows_its_answer_is_not_asked(tmp_path):
    """"Complete the statement: America/Argentina/Buenos_Aires is in area" with the choice
    America is answered by copying a word of the question: no such L2 probe or multi-hop item.
    A hop left without a probe is judged by its training data alone (diagnose)."""
    root = tmp_path / "zones"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    files = {"pwd.yaml": "name: zones\nmodel: {base: tiny}\n"}
    areas = ["America", "Europe", "Asia", "Africa", "Oceania"]
    for area in areas:
        files[f"concepts/{area.lower()}.yaml"] = f"id: {area.lower()}\nterm: {area}\ntype: area\ndefinition: A region.\n"
    zones = {"ba": ("America/Argentina/Buenos_Aires", "america", None), "cordoba": ("America/Argentina/Cordoba", "america", "ba"),
             "paris": ("Europe/Paris", "europe", None), "city": ("Capital Federal", None, "ba")}
    for zid, (term, area, link) in zones.items():
        rel = (f"  - {{predicate: is in area, object: {area}}}\n" if area else "") + (
            f"  - {{predicate: follows the rules of, object: {link}}}\n" if link else "")
        files[f"concepts/{zid}.yaml"] = f"id: {zid}\nterm: {term}\ntype: zone\ndefinition: A time zone.\nrelations:\n{rel}"
    chains = {"ba-area": ["ba.is-in-area.america"], "paris-area": ["paris.is-in-area.europe"],
              "cordoba-area": ["cordoba.follows-the-rules-of.ba", "ba.is-in-area.america"],
              "city-area": ["city.follows-the-rules-of.ba", "ba.is-in-area.america"]}
    for cid, steps in chains.items():
        files[f"chains/{cid}.yaml"] = f"id: {cid}\ntitle: t\nsplit: test\nsteps: [{', '.join(steps)}]\n"
    write(root, files)
    git(root, "add", "-A")
    git(root, "commit", "-qm", "zones")
    build_ok(root)
    bench = shard_records(root, "bench")
    probed = {i["traces"]["statements"][0] for i in by_template(bench, "probe.l2.complete")}
    assert "paris.is-in-area.europe" not in probed and "ba.is-in-area.america" not in probed
    assert "cordoba.follows-the-rules-of.ba" in probed
    assert {i["traces"]["chain"] for i in by_template(bench, "chain.l3.hops")} == {"city-area"}
    for item in bench:
        answer = item["choices"][item["answer"]]
        assert not re.search(rf"(?<!\w){re.escape(answer)}(?!\w)", item["question"], re.I), item


def test_a_definition_written_on_several_lines_is_one_line_in_every_generated_text(tmp_path):
    """A YAML `|` block keeps its line breaks, a folded `>` one those of its blank lines and its
    last: generated questions, answers and choices are written with runs of whitespace as one
    space, wherever the definition or a statement's `text` shows up."""
    root = _chem(tmp_path / "chem")
    write(root, {
        "concepts/oxygen.yaml": "id: oxygen\nterm: oxygen\ntype: element\naliases: [O2]\ndefinition: |\n"
                                "  Oxygen is a reactive gas\n  that most   life breathes.\nrelations:\n"
                                "  - predicate: reacts with\n    object: hydrogen\n    text: |\n"
                                "      Oxygen burns\n      in hydrogen.\n",
        "concepts/helium.yaml": "id: helium\nterm: helium\ntype: element\ndefinition: >\n  A noble gas\n\n"
                                "  lighter than air, unlike radon.\n"})
    build_ok(root)
    train, bench = shard_records(root, "train"), shard_records(root, "bench")
    texts = [m["content"] for r in train for m in r["messages"]] + [t for b in bench for t in (b["question"], *b["choices"])]
    assert len(texts) > 50
    assert [t for t in texts if t != " ".join(t.split())] == []
    define = {r["traces"]["concepts"][0]: r["messages"][1]["content"] for r in by_template(train, "l1.define")}
    assert define["oxygen"] == "Oxygen is a reactive gas that most life breathes."
    assert define["helium"] == "helium is defined as A noble gas lighter than air, unlike radon."
    (text,) = by_template(train, "l2.text")
    assert text["messages"][1]["content"] == "Oxygen burns in hydrogen."
    (oxygen,) = [i for i in by_template(bench, "probe.l1.describe") if i["traces"]["concepts"] == ["oxygen"]]
    assert oxygen["choices"][oxygen["answer"]] == "a reactive gas that most life breathes."


def test_the_manifest_counts_the_records_the_shards_hold(tmp_path):
    """A concept whose clue is only its name ("Connection error.") gets no l1.name record: the
    build summary, the manifest's counts and the dataset card count the records written."""
    root = _errors(tmp_path / "errors")
    res = build_ok(root)
    manifest = json.loads((root / "shards" / "MANIFEST.json").read_text())
    train = shard_records(root, "train")
    assert manifest["files"]["train/kb.jsonl"]["records"] == len(train)
    assert manifest["counts"]["train"] == dict(Counter(r["level"] for r in train))
    assert manifest["counts"]["templates"] == dict(Counter(r["template"] for r in train + shard_records(root, "bench")))
    assert manifest["counts"]["train_per_concept"] == dict(Counter(c for r in train for c in r["traces"]["concepts"]))
    assert f"L1 {sum(r['level'] == 'L1' for r in train)}," in res.out


def _fillers(kb, predicate: str, target: str) -> set[str]:
    """The subjects that make "____ <predicate> <target>" true: the test's own reading of the truth."""
    return {s for (s, p), targets in kb.true_targets().items() if p == predicate and target in targets}


@pytest.mark.parametrize("inverse", [False, True])
def test_a_cloze_is_written_only_where_its_blank_has_one_true_answer(atlas, inverse):
    """"Fill in the blank: ____ is located in the continent of Africa." is true of the DRC,
    Angola and Zambia: a record answering it with one of them teaches that the others are wrong.
    Such a blank gets no cloze; Europe's (the UK alone) does. Saint Vincent is the one country
    stated to border the UK, but with the border declared symmetric (`inverse`) the UK bordering
    Angola makes Angola border the UK too: then that blank has two answers, and no cloze."""
    border = BORDER.replace(" ", "-")
    config = CONFIG.replace(f"{BORDER}: {{functional: false}}", f"{BORDER}: {{functional: false, inverse: {BORDER}}}")
    write(atlas, {"pwd.yaml": config if inverse else CONFIG,
                  "concepts/svg.yaml": atlas_concept("svg").replace(
                      "relations:", f"relations:\n  - predicate: {BORDER}\n    object: uk"),
                  "concepts/uk.yaml": atlas_concept("uk").replace(
                      "relations:", f"relations:\n  - predicate: {BORDER}\n    object: angola")})
    kb = _kb(atlas)
    out = generate(kb)
    cloze = {r["traces"]["statements"][0] for r in by_template(out.train["l2"], "l2.cloze")}
    unique = {sid for sid, st in kb.statements.items() if _fillers(kb, st.predicate, st.target) == {st.subject}}
    assert cloze == unique
    assert f"uk.{LOCATED.replace(' ', '-')}.europe" in cloze and "london.is-the-capital-city-of.uk" in cloze
    assert not {sid for sid in cloze if sid.endswith((".africa", f"{border}.angola"))}, "three true answers each"
    assert (f"svg.{border}.uk" in cloze) is not inverse
    for rec in by_template(out.train["l2"], "l2.cloze"):
        st = kb.statements[rec["traces"]["statements"][0]]
        assert rec["messages"][1]["content"] == kb.concepts[st.subject].term


def test_which_term_means_is_asked_only_of_a_clue_one_concept_has(atlas):
    """"Which term means: the continent east of here." has three answers when three concepts are
    defined alike (as written, or once their own names are masked: "Europe is the continent ...").
    A record answering it with one teaches that the others are wrong: such clues get no l1.name."""
    write(atlas, {"concepts/europe.yaml": atlas_concept("europe", definition="Europe is the continent east of here."),
                  "concepts/asia.yaml": atlas_concept("asia", definition="The continent east of here."),
                  "concepts/oceania.yaml": atlas_concept("oceania", definition="the continent east of here")})
    out = generate(_kb(atlas))
    named = {r["traces"]["concepts"][0] for r in by_template(out.train["l1"], "l1.name")}
    assert named == set(ATLAS) - {"europe", "asia", "oceania"}
    assert {r["traces"]["concepts"][0] for r in by_template(out.train["l1"], "l1.define")} == set(ATLAS)


def _name_words(name: str) -> set[str]:
    """The words an identifier is made of ("ConnectionResetError": connection, reset, error)."""
    return {w.lower() for w in re.findall(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+", name)}


def test_a_definition_that_repeats_most_of_an_identifier_names_words_masks_them(tmp_path):
    """"ConnectionResetError is defined as" answered by "Connection reset by the peer." is
    picked by matching two of the name's three words against the choices, though the name is
    not there whole. A text that repeats most (more than half) of an identifier's words shows
    each of them as the blank, the probed concept's and every choice's own name alike; one
    that then says nothing ("Broken pipe.") is no probe and no l1.name. Half is not most:
    "Mapping key not found." for KeyError stays as written."""
    root = _errors(tmp_path / "errors")
    added = {"connection-reset-error": ("ConnectionResetError", "Connection reset by the peer."),
             "connection-aborted-error": ("ConnectionAbortedError", "Connection aborted by the software of the host."),
             "max-document-mb": ("max_document_mb", "The maximum document size in MB that an upload may have."),
             "broken-pipe-error": ("BrokenPipeError", "Broken pipe.")}
    files = {}
    for cid, (term, definition) in added.items():
        files[f"concepts/{cid}.yaml"] = (f"id: {cid}\nterm: {term}\ntype: exception class\ndefinition: {definition}\n"
                                         "relations:\n  - predicate: is a subclass of\n    object: exception\n")
        files[f"chains/{cid}-base.yaml"] = f"id: {cid}-base\ntitle: t\nsplit: test\nsteps: [{cid}.is-a-subclass-of.exception]\n"
    write(root, files)
    build_ok(root)
    kb = _kb(root)
    describe = {i["traces"]["concepts"][0]: i for i in by_template(shard_records(root, "bench"), "probe.l1.describe")}
    answer = {cid: item["choices"][item["answer"]] for cid, item in describe.items()}
    assert answer["connection-reset-error"] == f"{MASK} {MASK} by the peer."
    assert answer["connection-aborted-error"] == f"{MASK} {MASK} by the software of the host."
    # "max" points at "maximum" by its first letters, which no other choice begins
    assert answer["max-document-mb"] == f"The {MASK} {MASK} size in {MASK} that an upload may have."
    assert answer["key-error"] == "Mapping key not found."
    assert "broken-pipe-error" not in describe
    named = {r["messages"][1]["content"] for r in by_template(shard_records(root, "train"), "l1.name")}
    assert "BrokenPipeError" not in named and "ConnectionResetError" in named
    for cid, item in describe.items():
        name = _name_words(kb.concepts[cid].term)
        for choice in item["choices"]:
            shown = {w.decode() for w in words(choice)} & name
            assert len(name) < 2 or 2 * len(shown) <= len(name), (cid, choice)
    assert clue("Connection reset; the connection was reset.", ("ConnectionResetError",)) == \
        f"{MASK} {MASK}; the {MASK} was {MASK}."
    assert clue("The max document MB limit.", ("max_document_mb",)) == f"The {MASK} limit."
    assert clue("An I/O error; an io error.", ("IOError",)) == f"An I/O error; an {MASK}.", "the rest is half the name"


SECTIONS = {"admin": "Administration utilities", "net": "Network services and tools",
            "misc": "Miscellaneous software", "devel": "Development tools for programmers",
            "libdevel": "Library headers for developers", "web": "Web servers and browsers",
            "x11": "The X Window System and its programs", "text": "Text processing utilities",
            "mail": "Electronic post", "games": "Things to play", "sound": "Audio players"}


def _sections(root: Path, sections: dict[str, str]):
    root.mkdir(parents=True)
    git(root, "init", "-q")
    write(root, {"pwd.yaml": "name: s\n", **{f"concepts/{cid}.yaml": f"id: {cid}\nterm: {cid}\ntype: section\n"
                                             f"definition: {text}\n" for cid, text in sections.items()}})
    return _kb(root)


def test_a_term_that_abbreviates_a_word_of_its_definition_does_not_point_at_it(tmp_path):
    """Debian's sections are abbreviations: "admin" is "Administration utilities", "devel" is
    "Development tools". A word of the term begins a word of the answer: another choice that
    begins with it is drawn first ("Library headers for developers" beside "Development
    tools"), and where none exists the answer's word is the blank; a KB-blind matcher of first
    letters scored 0.50 on a Debian KB's describe items before (chance 0.25), 0.36 after."""
    from pwd_git.build.generate import Generator

    gen = Generator(_sections(tmp_path / "s", SECTIONS))
    _q, answer, others, _loc, _fallback = gen.concept_probe("devel")
    assert answer == "Development tools for programmers"
    assert any(re.search(r"\bdevel", o.lower()) for o in others)  # "devel" points at more than one choice
    for cid in ("admin", "net", "misc"):
        _q, answer, others, _loc, _fallback = gen.concept_probe(cid)
        choices = [answer, *others]
        pointing = [c for c in choices if any(w.startswith(cid[:4]) for w in re.findall(r"\w+", c.lower()))]
        assert len(pointing) != 1 or pointing[0] != answer, (cid, choices)
    _q, answer, _others, _loc, _fallback = gen.concept_probe("admin")
    assert answer == f"{MASK} utilities"


def test_a_blank_in_the_answer_is_never_the_only_blank_when_the_type_has_another(tmp_path):
    """A definition that names its own term shows a blank ("libnsl development files" for
    libnsl-dev: "___ development files"); a distractor with a blank of its own is drawn before
    the ones that share the term's words, or the blank alone would say "this one" (8 of 114
    describe items on a Debian KB; none after)."""
    from pwd_git.build.generate import Generator

    sections = {**SECTIONS, "devtools": "dev utilities", "devdocs": "dev documentation", "devsrc": "dev sources",
                "mail": "Programs that mail letters"}
    root = tmp_path / "s"
    _sections(root, sections)
    (root / "concepts/devbox.yaml").write_text("id: devbox\nterm: dev box\naliases: [postbox]\ntype: section\n"
                                               "definition: dev tools for the postbox\n")
    gen = Generator(_kb(root))
    _q, answer, others, _loc, _fallback = gen.concept_probe("devbox")
    assert answer == f"dev tools for the {MASK}" and any(MASK in o for o in others), others
    assert any(o.startswith("dev ") for o in others)  # and "dev" still points at more than the answer


def test_a_statement_probes_choices_share_the_answers_prefix_with_the_subject(tmp_path):
    """"libx11-dev depends on" with libx11-6 the only choice that "libx" begins is answered by
    the name's first letters: other packages whose names begin so are drawn first."""
    from pwd_git.build.generate import Generator

    root = tmp_path / "p"
    root.mkdir()
    git(root, "init", "-q")
    names = ["libx11-6", "libxau6", "libxcb1", "libxext6", *(f"tool{i}" for i in range(12))]
    files = {"pwd.yaml": "name: p\npredicates: {depends on: {functional: false}}\n",
             "concepts/libx11-dev.yaml": "id: libx11-dev\nterm: libx11-dev\ntype: package\ndefinition: X11 headers\n"
                                         "relations:\n  - {predicate: depends on, object: libx11-6}\n"}
    for n in names:
        files[f"concepts/{n}.yaml"] = f"id: {n}\nterm: {n}\ntype: package\ndefinition: The {n} package files\n"
    write(root, files)
    gen = Generator(_kb(root))
    _q, answer, others, _loc, _fallback = gen.statement_probe(gen.kb.statements["libx11-dev.depends-on.libx11-6"])
    assert answer == "libx11-6" and all(o.startswith("libx") for o in others), others
