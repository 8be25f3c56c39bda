"""The offline, deterministic backend: a few sentence shapes it reads precisely, nothing else.

Claimed shapes (the subject opens the sentence; an optional a/an/the is dropped):
  definitions    "X is a/an Y ..."                      -> concept X, type = head noun of Y
  aliases        "X, also called/known as Z, ..."       -> alias Z of X (the rest is read on)
                 "X (ABBR) ..."  "X is also called Z."
  relations      "X is (a) part of Y", "X is located in Y", "X consists of Y[, Z] and W",
                 "X <predicate declared in pwd.yaml> Y" (also the plural verb form)
  hyponyms       "Ys such as X[, W] and V"              -> X is a Y (Y a concept)
A sentence that is a question, negated, hedged (may, probably, often, ...), conditional or
comparative states nothing here. Terms are 1-6 content words. Candidates carry the sentence
as their quote; merge.py resolves the phrases to concepts across the whole corpus.
"""

from __future__ import annotations

import re

from pwd_git.extract.chunks import Chunk
from pwd_git.extract.sentences import said
from pwd_git.extract.terms import DETERMINER

VERSION = "5"

def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


BUILTIN = {  # canonical predicate -> the verb phrases that state it
    "is part of": ("is part of", "is a part of", "are part of"),
    "is located in": ("is located in", "are located in"),
    "consists of": ("consists of", "consist of"),
}
FUNCTION_WORDS = _words("""a an the of in on at to for with by from into onto and or but nor as is are was were be been
being am that which who whom whose where when while than then also very it its this these those there here they them
their he she his her we our you your i me my one each every some any all many most much more few several such other
another no not only just so if because about over under between through during without within against among per via
what how why do does did has have had now always still already again ever inside outside across along around near
behind beyond toward towards upon like unlike after before since until beside besides beneath underneath throughout amid
despite""")
REJECT = _words("""not no never nor neither cannot may might could would should can must possibly probably perhaps
likely unlikely maybe sometimes often usually rarely seldom occasionally generally typically mostly mainly partly
partially largely allegedly reportedly supposedly believed thought suggested hypothesized hypothesised claimed
seems seem appears appear if unless whether although though suppose assume except than formerly once rather
sometime somewhat arguably apparently""")
_CUT = (FUNCTION_WORDS - _words("very more most")) | _words("consisting made composed found located used containing comprising")
_PARTICIPLE_PREPOSITIONS = _words("by in for with to from as on at into under over through via within")
_COORDINATION = _words(", and or")
_THROUGH_OF = _words("kind type sort form class variety subtype species")  # "a kind of enzyme": enzyme
_VAGUE = _words("""thing part way example member one lot number source result matter case set group piece bit term
name word amount means""")  # "a good source of energy" names no class
_DISCOURSE = _words("""result problem point idea reason fact answer question goal aim purpose outcome effect
consequence issue difference key trick solution truth conclusion upshot catch rule""")  # "The result is a ..."
_CONTEXT = _words("""default following above below former latter same said aforementioned given returned resulting
corresponding respective previous preceding remaining output input return""")  # "The default is ...", "The output is ..."
_COPULAS = frozenset({"is", "are", "is a", "is an", "are a"})
_IRREGULAR_PLURALS = _words("people children men women")
_WORD = re.compile(r"[^\W_][\w'’+-]*", re.UNICODE)
_EMPHASIS = re.compile(r"(?<!\w)(\*\*|__|\*|`+)(?=[^\s*`])(.+?)(?<=[^\s*`])\1(?!\w)")  # paired: `10*1024` is text
_LINK = re.compile(r"\[([^\]]*)\](?:\([^)]*\)|\[[^\]]*\])")  # [text](url), [text][ref], [text][]
_LINE_BREAK_HYPHEN = re.compile(r"(?<=\w)\u2010 (?=[a-z])(?!(?:and|or|nor|to)\b)")  # groff's "ex‐\n tension"
_APPOSITIVE = re.compile(r"^(?P<x>[^,()]+?)\s*,\s*(?:also\s+(?:called|known\s+as|termed|named))\s+(?P<z>[^,()]+?)\s*,\s*"
                         r"(?P<rest>.+)$", re.I)
_PAREN_ALIAS = re.compile(r"^(?P<x>[^,()]+?)\s*\(\s*(?:also\s+(?:called|known\s+as|termed|named)\s+)(?P<z>[^,()]+?)\s*\)\s*"
                          r"(?P<rest>.+)$", re.I)
_ABBR = re.compile(r"^(?P<x>[^,()]+?)\s*\(\s*(?P<z>[A-Z][A-Za-z0-9-]{0,9})\s*\)\s*(?P<rest>.+)$")
_ALSO_CALLED = re.compile(r"^(?P<x>[^,()]+?)\s+(?:is|are)\s+also\s+(?:called|known\s+as|termed|named)\s+(?P<z>[^,()]+)$", re.I)
_DEFINITION = re.compile(r"^(?P<x>[^,;:()]+?)\s+is\s+(?P<det>an?)\s+(?P<y>.+)$", re.I)
_SUCH_AS = re.compile(r"(?<![\w'’+-])(?P<y>(?:[^\W_][\w'’+-]*\s+){0,3}[^\W_][\w'’+-]*)\s*,?\s+such\s+as\s+(?P<xs>.+)$",
                      re.I)  # Y starts at a word's start: a search from inside a long token would take quadratic time
_OBJECT_END = re.compile(r"\s*(?:,\s*(?:which|where|who|whose|a|an|the)\b|;|\s\(|:).*$", re.I)


def extract_chunk(chunk: Chunk, predicates: tuple[str, ...]) -> dict[str, list[dict]]:
    """Candidates of one chunk: {"concepts": [...], "aliases": [...], "statements": [...]}, each
    with its sentence as `quote`."""
    out: dict[str, list[dict]] = {"concepts": [], "aliases": [], "statements": []}
    table = _predicate_table(predicates)
    read = [(quote, clean(sentence)) for quote, sentence in said(chunk.text)]
    names = mid_sentence_capitals(text for _, text in read)
    for quote, text in read:
        read_sentence(quote, text, table, out, names)
    return out


def mid_sentence_capitals(texts) -> frozenset[str]:
    """Words (lower-cased) the chunk's sentences (`clean` texts) write with a capital after their
    first word: names ("... the capital, Vienna, ..."), whose capital a sentence that opens
    with them keeps."""
    return frozenset(w.lower() for text in texts for w in _WORD.findall(text)[1:] if w[:1].isupper())


def _predicate_table(predicates: tuple[str, ...]) -> list[tuple[str, str]]:
    """(verb phrase as written, canonical predicate), longest phrase first. A declared copula ("is",
    "is a") is left out: "X is a Y ..." is the definition shape, which it would otherwise take over."""
    pairs = {phrase: canon for canon, phrases in BUILTIN.items() for phrase in phrases}
    for p in predicates:
        if p in _COPULAS:
            continue
        for phrase in _verb_forms(p):
            pairs.setdefault(phrase, p)
    return sorted(pairs.items(), key=lambda kv: (-len(kv[0]), kv[0]))


def _verb_forms(predicate: str) -> list[str]:
    """The predicate and its plural-subject form: is -> are, has -> have, occurs -> occur."""
    first, _, rest = predicate.partition(" ")
    plural = {"is": "are", "has": "have", "does": "do"}.get(first)
    if plural is None and first.endswith("s") and not first.endswith("ss") and len(first) > 3:
        plural = first[:-1]
    forms = [predicate]
    if plural:
        forms.append(f"{plural} {rest}".strip())
    return forms


def clean(sentence: str) -> str:
    """The sentence as patterns read it: no markdown emphasis or link targets, words hyphenated at a
    line break (U+2010, as groff's man pages break them) joined again, no final stop."""
    text = _LINK.sub(r"\1", sentence) if "](" in sentence or "][" in sentence else sentence  # (most have none)
    if "*" in text or "`" in text or "__" in text:
        text = _EMPHASIS.sub(r"\2", text)
    if "\u2010" in text:
        text = _LINE_BREAK_HYPHEN.sub("", text)
    return text.rstrip(" .!").strip()


def read_sentence(sentence: str, text: str, table: list[tuple[str, str]], out: dict[str, list[dict]],
                  names: frozenset[str]) -> None:
    """The candidates of one sentence (`text` is its `clean` form) added to `out`."""
    if sentence.rstrip().endswith("?") or not text or _rejected(text):
        return
    for pattern in (_APPOSITIVE, _PAREN_ALIAS, _ABBR):
        match = pattern.match(text)
        if match and term_words(match["x"]) and (_abbreviates(match["z"], match["x"]) if pattern is _ABBR
                                                 else term_words(match["z"])):
            out["aliases"].append({"term": term(match["x"], opening=True, names=names), "alias": term(match["z"]),
                                   "quote": sentence})
            text = f"{match['x']} {match['rest']}"
            break
    match = _ALSO_CALLED.match(text)
    if match and term_words(match["x"]) and term_words(match["z"]):
        out["aliases"].append({"term": term(match["x"], opening=True, names=names), "alias": term(match["z"]),
                               "quote": sentence})
        return
    if _relation(text, sentence, table, out, names):
        return
    if _such_as(text, sentence, out):
        return
    _definition(text, sentence, out, names)


def _rejected(text: str) -> bool:
    words = {w.lower() for w in _WORD.findall(text)}
    return bool(words & REJECT) or "n't" in text.lower() or "n’t" in text.lower()


def term_words(phrase: str) -> list[str] | None:
    """The words of `phrase` when it reads as a term (1-6 content words, no clause, a letter in
    it: "26" or "3.2.1" is a number, not a name; not one whose referent is in the context: "the
    result", "the default", "the returned object"), else None."""
    phrase = DETERMINER.sub("", phrase.strip())
    words = phrase.split()
    if not 1 <= len(words) <= 6 or any(not _WORD.fullmatch(w) for w in words) or not any(c.isalpha() for c in phrase):
        return None
    if any(w.lower() in FUNCTION_WORDS for w in words) or (len(words) == 1 and words[0].lower() in _DISCOURSE) \
            or words[0].lower() in _CONTEXT:
        return None
    return words


def term(phrase: str, *, opening: bool = False, names: frozenset[str] = frozenset()) -> str:
    """A term as written, without its article; a sentence-initial capital (Mitochondria, not DNA)
    lowered. A capital after an article (the Danube), beside another (North Sea) or on a word
    the chunk also capitalises mid-sentence (`names`: Vienna) is a name's."""
    bare = DETERMINER.sub("", phrase.strip())
    words = bare.split()
    if opening and bare == phrase.strip() and bare[:1].isupper() and bare[1:2].islower() \
            and not any(c.isupper() for w in words for c in w[1:]) and not any(w[:1].isupper() for w in words[1:]) \
            and words[0].lower() not in names:
        bare = bare[0].lower() + bare[1:]
    return bare


def _abbreviates(abbreviation: str, phrase: str) -> bool:
    """Whether `abbreviation` (two capitals or more) can stand for `phrase`: its ASCII letters and
    digits occur in it in order, the first one opening it ("GNU General Public License (GPL)",
    "adenosine triphosphate (ATP)"; not "Sistina Software (UK) Limited", "Always use global offset
    table (GOT)", "RFC 3986 (STD66)")."""
    if sum(c.isupper() for c in abbreviation) < 2:
        return False
    chars = [c.lower() for c in abbreviation if c.isascii() and c.isalnum()]
    text = DETERMINER.sub("", phrase.strip()).lower()
    at = 0
    for i, c in enumerate(chars):
        at = text.find(c, at) if i else (0 if text.startswith(c) else -1)
        if at < 0:
            return False
        at += 1
    return True


def _relation(text: str, sentence: str, table: list[tuple[str, str]], out: dict[str, list[dict]],
              names: frozenset[str]) -> bool:
    lower = text.lower()
    for phrase, predicate in table:
        at = lower.find(f" {phrase} ")
        while at > 0:
            subject, obj = text[:at], text[at + len(phrase) + 2:]
            words = term_words(subject)
            if words and _verb_agrees(text[at + 1:at + 1 + len(phrase)], predicate, words[-1]):
                obj = _OBJECT_END.sub("", obj).strip()
                if _noun_phrase_start(obj):
                    out["statements"].append({"subject": term(subject, opening=True, names=names), "predicate": predicate,
                                              "object": obj, "quote": sentence, "shape": "list"})
                return True
            at = lower.find(f" {phrase} ", at + 1)
    return False


def _noun_phrase_start(phrase: str) -> bool:
    """Whether `phrase` may open a noun phrase: a word that is not a function word other than an
    article (not "are handled ...", "for name resolution", "(Closes: ...")."""
    return bool(_WORD.match(phrase)) and phrase.split()[0].lower() not in FUNCTION_WORDS - {"a", "an", "the"}


def _verb_agrees(written: str, predicate: str, last_word: str) -> bool:
    """Whether the verb phrase as `written` after a subject ending in `last_word` is the sentence's
    verb: in lower case (a capital starts the next line's text: "w filename Write ..."), and its bare
    plural form ("support" of "supports") after a plural only (a word in -s, -a, -ae, -i, or "people"),
    since it is a noun too ("SELinux support has been ...", "Enable zstd support")."""
    if written[:1].isupper():
        return False
    if written.split()[0].lower() + "s" != predicate.split()[0]:
        return True
    word = last_word.lower()
    return (word.endswith(("s", "a", "ae", "i")) and not word.endswith("ss")) or word in _IRREGULAR_PLURALS


def _such_as(text: str, sentence: str, out: dict[str, list[dict]]) -> bool:
    match = _SUCH_AS.search(text)
    if not match or not _noun_phrase_start(match["xs"]):
        return False
    out["statements"].append({"subject": match["xs"].strip(), "predicate": "is a", "object": match["y"].strip(),
                              "quote": sentence, "shape": "such-as"})
    return True


def _definition(text: str, sentence: str, out: dict[str, list[dict]], names: frozenset[str]) -> None:
    match = _DEFINITION.match(text)
    if not match or not term_words(match["x"]):
        return
    kind = head_noun(match["y"])
    name = term(match["x"], opening=True, names=names)
    if kind is None or kind == name.lower():
        return
    definition = f"{match['det']} {match['y']}".strip()
    out["concepts"].append({"term": name, "type": kind, "definition": definition[0].upper() + definition[1:] + ".",
                            "quote": sentence})


def head_noun(phrase: str) -> str | None:
    """The class a definition names: the last word before the first function word, punctuation or
    participle with its preposition ("organelle" in "double-membrane organelle that ...", "project"
    in "project covered by ...", none in "a few bytes"), after any single-word premodifiers listed
    before it ("system" in "fast, scalable, distributed revision control system"; none in "fast and
    lossless ...", see _after_premodifiers); through "of" after a vague head ("a kind of enzyme" ->
    "enzyme"). None when there is none."""
    words = _after_premodifiers(re.findall(r"[\w'’-]+|[,;:()]", phrase))
    if words is None:
        return None
    head: list[str] = []
    rest: list[str] = []
    for i, w in enumerate(words):
        if w in ",;:()" or w.lower() in _CUT or (_participle(w) and words[i + 1:i + 2] and
                                                  words[i + 1].lower() in _PARTICIPLE_PREPOSITIONS):
            rest = words[i:]
            break
        head.append(w)
    if not head:
        return None
    word = head[-1].lower()
    if word in _VAGUE:
        return None
    if word in _THROUGH_OF:
        if not rest or rest[0].lower() != "of":
            return None
        kind = head_noun(" ".join(w for w in rest[1:] if w.lower() not in ("a", "an", "the")))
        return singular(kind) if kind else None  # "a kind of enzymes"; after "a/an" the head is singular already
    return word if re.fullmatch(r"[a-z][a-z-]{1,98}[a-z]", word) and word not in FUNCTION_WORDS else None


def _participle(word: str) -> bool:
    """A past participle by its regular ending ("covered", "designed"; not "bed" or "speed")."""
    word = word.lower()
    return len(word) > 4 and word.endswith("ed") and not word.endswith("eed")


def _after_premodifiers(words: list[str]) -> list[str] | None:
    """`words` from the last conjunct on when single words listed with commas before it modify it
    ("fast, scalable, distributed revision control system"); as they are when the last conjunct is a
    single word too: an apposition or two classes ("city, capital of Austria", "city and port").
    None when only "and"/"or" join them: "fast and lossless compression algorithm" and "integer and
    optional unit" read alike, and only one names its class by its last word."""
    at, comma = 0, False
    while True:
        run = next((i for i in range(at, len(words)) if words[i] in ",;:()" or words[i].lower() in _CUT), len(words))
        if run - at >= 2 and at:
            return words[at:] if comma else None
        if run - at >= 2:
            return words
        if run - at == 0 or run == len(words) or words[run].lower() not in _COORDINATION:
            return words
        at = run
        while at < len(words) and words[at].lower() in _COORDINATION:
            comma, at = comma or words[at] == ",", at + 1


def singular(word: str) -> str:
    """An English plural's singular, for the regular endings only."""
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 4 and word.endswith(("ses", "xes", "ches", "shes", "zes")):
        return word[:-2]
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word
