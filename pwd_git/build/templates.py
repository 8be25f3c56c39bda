"""Surface forms. Training and benchmark templates are disjoint by construction: the
benchmark must check that the model learned the KB, not that it memorised a question.

Benchmark prompts end exactly where the answer starts; scoring appends " " + choice.

The text helpers below are the rules every template follows: generated text is one line
(`flat`: a definition written as a YAML `|` block keeps its line breaks), the article before a
type (`article`), a definition that already starts with its own term ("Abu Dhabi is a city.") is
not repeated after "X is defined as" (`restates`), "X is defined as ..." ends as a sentence
(`sentence`), and a definition offered as an answer choice never shows the concepts it
describes (`clue`), so no choice can be picked by matching the question's words against it.
"""

from __future__ import annotations

import re
from functools import cache, lru_cache

# --- training (chat `messages`: one user turn, one assistant turn) -----------------------
TRAIN_L1 = {
    "l1.define": ("What is {term}?", "{term} is defined as {definition}"),
    "l1.name": ("Which term means: {clue}", "{term}"),
    "l1.type": ("What type of entity is {term}?", "{term} is {a} {type}."),
    "l1.alias": ("What is another name for {term}?", "{alias} is another name for {term}."),
}
#: l1.define's answer when the definition already starts with the term (or an alias) and a copula.
RESTATED_DEFINITION = "{definition}"
TRAIN_L2 = {
    "l2.fact": ("Tell me a fact about {subject}.", "{subject} {predicate} {object}."),
    "l2.text": ("Tell me about {subject} and {object}.", "{text}"),
    "l2.qa": ("{subject} {predicate} what?", "{subject} {predicate} {object}."),
    "l2.cloze": ("Fill in the blank: ____ {predicate} {object}.", "{subject}"),
    "l2.true": ("True or false: {subject} {predicate} {object}.", "True."),
    "l2.false": ("True or false: {subject} {predicate} {wrong}.", "False. {subject} {predicate} {object}."),
}
TRAIN_L3 = {
    "l3.demo": ("Reason step by step. Start at {start} and follow: {path}. Where do you arrive?",
                "{steps} Answer: {answer}."),
}

# --- benchmark (multiple choice, scored by log-likelihood of each choice) ---------------
BENCH = {
    "probe.l1.describe": "Quiz. In this domain, {term} is defined as",
    "probe.l1.kind": "Quiz. In this domain, {term} is",  # the choices are "<article> <type>"
    "probe.l2.complete": "Quiz. Complete the statement: {subject} {predicate}",
    "chain.l3.hops": "Quiz. From {start}, follow the relations {path}. {ending}",
    "hand": "{question}",
}
#: chain.l3.hops's last words: one true endpoint, or several (a many-to-many predicate on the
#: path: "depends on -> is in section" reaches every section of every dependency), where "the"
#: endpoint would ask for one the question does not name. Only one true endpoint is a choice.
L3_ENDINGS = {False: "The endpoint is", True: "One endpoint is"}
#: The parts of each generated question that quote the KB: the words it shares, by design,
#: with the training text of the nodes it probes (decontamination expects them there; the
#: rest of the question is the benchmark's own wording, which no training text may copy).
QUOTED = {
    "probe.l1.describe": ("{term} is defined as",),
    "probe.l1.kind": ("{term} is",),
    "probe.l2.complete": ("{subject} {predicate}",),
    "chain.l3.hops": ("{start}", "{path}"),
}


# --- text rules ----------------------------------------------------------------------------

def flat(text: str) -> str:
    """`text` on one line, each run of whitespace one space: a definition or `text` written as a
    YAML `|` block (or folded with blank lines) keeps its line breaks, which would end up inside
    prompts, answers and choices. The writers of every generated record apply it (render.py)."""
    return " ".join(text.split())


#: Prefixes whose sound goes against their first letter: a silent h takes "an", a vowel
#: letter sounded "yu" or "w" takes "a". Acronyms ("an MRI") and numbers are not guessed at.
_AN_PREFIXES = ("hour", "honest", "honor", "honour", "heir")
_A_PREFIXES = ("uni", "use", "usu", "uti", "eu", "one-", "once")


def article(phrase: str) -> str:
    """'a' or 'an' before `phrase`: "an" before a vowel letter, "a" otherwise, except for the
    prefixes above ("an hour", "a unit", "a eukaryotic cell", "a European")."""
    word = phrase.lstrip(" \"'(").lower()
    if word.startswith(_AN_PREFIXES):
        return "an"
    if word.startswith(_A_PREFIXES) or word == "one":
        return "a"
    return "an" if word[:1] in ("a", "e", "i", "o", "u") else "a"


COPULAS = ("is", "are", "was", "were", "refers to", "means")
_COPULA = re.compile(r"\s+(?:" + "|".join(r"\s+".join(c.split()) for c in COPULAS) + r")\s+(?=\S)", re.IGNORECASE)
_ARTICLES = ("a", "an", "the")
MASK = "___"  # what a choice shows instead of the name of a concept it describes

# Names are matched as whole words, case-insensitively, any whitespace between their words
# (the regex `(?<!\w)word\s+word(?!\w)`), by scanning the lower-cased text: a regex per name
# would be compiled for every concept of a large KB.


def _is_word(ch: str) -> bool:
    return ch.isalnum() or ch == "_"


def _skip_space(low: str, i: int) -> int:
    while i < len(low) and low[i].isspace():
        i += 1
    return i


def _at(low: str, i: int, parts: list[str]) -> int:
    """The end of `parts` (lower-case words) found at `i` in `low`, whitespace between them and
    no word character right after; -1 if they are not there."""
    for k, part in enumerate(parts):
        if k:
            j = _skip_space(low, i)
            if j == i:
                return -1
            i = j
        if not low.startswith(part, i):
            return -1
        i += len(part)
    return -1 if i < len(low) and _is_word(low[i]) else i


@lru_cache(maxsize=1024)
def _pattern(name: str) -> re.Pattern:
    """The same match as a regex, for a text whose lower case has another length ("İ")."""
    return re.compile(r"(?<!\w)" + r"\s+".join(map(re.escape, name.split())) + r"(?!\w)", re.IGNORECASE)


def restates(definition: str, names) -> int:
    """Where the body of `definition` starts when it opens with one of `names` (the term or an
    alias, optionally after "a"/"an"/"the") and a copula ("Abu Dhabi is a city": 13), else 0."""
    wanted = {" ".join(n.split()).lower() for n in names}
    head = 2 * max(map(len, wanted), default=0) + 16  # room for an article and wide spaces
    for copula in _COPULA.finditer(definition, 0, min(len(definition), head)):
        subject = " ".join(definition[:copula.start()].split()).lower()
        first, _, rest = subject.partition(" ")
        if subject in wanted or (first in _ARTICLES and rest in wanted):
            return copula.end()
    return 0


_HUMP = re.compile(r"(?<=[a-z])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])|_+")


def spellings(name: str) -> tuple[str, ...]:
    """`name` and, when it is written as an identifier (CamelCase, snake_case), its words
    spaced, as running text writes them: ConnectionError is "connection error", Buenos_Aires
    is "Buenos Aires"."""
    spaced = " ".join(_HUMP.sub(" ", name).split())
    return (name,) if spaced in ("", " ".join(name.split())) else (name, spaced)  # "_" has no words to space


#: Words an identifier may hold that say nothing of what it names ("time_to_live"): never masked alone.
FUNCTION_WORDS = frozenset({"a", "an", "the", "of", "to", "in", "on", "at", "by", "for", "and", "or", "is"})


def _spans(text: str, low: str, name: str) -> list[tuple[int, int]]:
    """Where `name` occurs in `text` (`low` its lower case) as whole words, any case, any
    whitespace between its words."""
    if len(low) != len(text):
        return [m.span() for m in _pattern(name).finditer(text)]
    parts, out = name.lower().split(), []
    i = low.find(parts[0])
    while i >= 0:
        end = _at(low, i, parts) if i == 0 or not _is_word(low[i - 1]) else -1
        if end >= 0:
            out.append((i, end))
        i = low.find(parts[0], max(end, i + 1))
    return out


def mask(text: str, names) -> str:
    """`text` with every whole-word, case-insensitive mention of one of `names` (in any of its
    `spellings`) replaced by MASK; and where the rest of `text` repeats most (more than half) of
    the words of a name written as an identifier (two or more, function words aside), each of
    those words too: "Connection reset by the peer." shows ConnectionResetError as plainly as
    "Connection reset error." would. Where two mentions overlap, the one that starts first wins,
    then the longer."""
    low, spans, partial = text.lower(), [], []
    for name in {n for n in names if n.strip()}:
        forms = spellings(name)
        for form in forms:
            spans += _spans(text, low, form)
        words = dict.fromkeys(w for w in forms[-1].lower().split() if w not in FUNCTION_WORDS) if len(forms) > 1 else ()
        if len(words) > 1:
            partial.append([_spans(text, low, w) for w in words])
    whole = list(spans)
    for found in partial:
        found = [[(a, b) for a, b in word if not any(s <= a and b <= e for s, e in whole)] for word in found]
        if 2 * sum(map(bool, found)) > len(found):
            spans += [span for word in found for span in word]
    out, at = [], 0
    for start, end in sorted(spans, key=lambda span: (span[0], -span[1])):
        if start >= at:
            out += [text[at:start], MASK]
            at = end
    return "".join(out) + text[at:]


def mentions(text: str, name: str) -> bool:
    """Whether `text` names `name` as `mask` finds it (whole words, in any of its `spellings`, or
    most of an identifier's words): an answer the question already shows
    ("America/Argentina/Buenos_Aires is in area": America) is found by matching the question's
    words against the choices, not by knowing the fact."""
    return mask(text, (name,)) != text


def unmatched(term: str, answer: str, others: tuple[str, ...], prefixes: bool = True) -> str:
    """`answer` with each word of `term` masked that it alone among the choices repeats, and
    each of its words that a word of `term` begins (`pointed_at`): the question shows the
    term, so "application/json is defined as" with "JSON document" among choices that never
    say JSON, or "admin is defined as" with "Administration utilities", is answered by
    matching words, not by knowing the concept. A word several choices share points at none
    of them and stays. Without `prefixes`, only whole words are masked."""
    lone = []
    for word in term_words(term):
        if any(mentions(o, word) or (prefixes and pointed_at(o, word)) for o in others):
            continue
        lone += ([word] if mentions(answer, word) else []) + (pointed_at(answer, word) if prefixes else [])
    return mask(answer, lone) if lone else answer


def pointed_at(text: str, word: str) -> list[str]:
    """The words of `text` that a reader would match to `word` of a term by their first letters
    ("dev": "development", "admin": "Administration", "misc": "Miscellaneous"; abbreviated
    names are the rule in real data): those beginning with its first four letters, or all of
    it when shorter. A word under three letters matches only itself (`mentions`)."""
    if len(word) < 3:
        return []
    key = stem(word)
    return [w for w in dict.fromkeys(words_of(text)) if w.startswith(key)]


def stem(word: str) -> str:
    """What `pointed_at` matches `word` by, and the key `Distractors` index clue words under."""
    return word[:4]


_WORD = re.compile(r"[^\W_]+")


def term_words(term: str) -> list[str]:
    """The words of `term` that can point at a choice which repeats them (function words and
    single letters aside), lower case, in order."""
    return list(dict.fromkeys(w for w in words_of(term) if len(w) > 1 and w not in FUNCTION_WORDS))


def words_of(text: str) -> list[str]:
    """`text`'s words, lower case (letters and digits of any script)."""
    return _WORD.findall(text.lower())


def informative(text: str) -> bool:
    """Whether a clue says anything besides the masked names: "___." (a definition that only
    restates its name, "Processing.") tells no concept from another."""
    return any(ch.isalnum() for ch in text.replace(MASK, ""))


_VERSION = re.compile(r"\d+(?:\.\d+)+")


@lru_cache(maxsize=1024)
def _version_pattern(version: str) -> re.Pattern:
    """`version` as a whole number: not inside another ("13.11", "3.11.2"), letters around it
    allowed ("v3.11")."""
    return re.compile(r"(?<![\d.])" + re.escape(version) + r"(?!\d|\.\d)")


def clue(definition: str, names: tuple[str, ...], hidden=()) -> str:
    """The definition as a clue to its concept: without a leading "<term> is", and with the
    concept's names (and `hidden` ones: the names a question shows) masked, and so is each
    dotted version number in those names ("python3.11": 3.11, "tk8.6-dev": 8.6) wherever the
    text has it whole ("version 3.11", "v8.6"): among the choices of "python3.11 is defined
    as", only the answer would say 3.11."""
    text = mask(definition[restates(definition, names):], (*names, *hidden))
    for version in dict.fromkeys(v for name in (*names, *hidden) for v in _VERSION.findall(name)):
        text = _version_pattern(version).sub(MASK, text)
    return text


_SENTENCE_END = re.compile(r"[.!?][\"')\]]*\s*$")


def sentence(text: str) -> str:
    """`text` ending as a sentence does: a period added unless it already ends in . ! or ?
    (closing quotes and brackets after them aside). A definition is often a noun phrase with no
    final period ("Shared library - runtime"); a text that goes on after it ("By contrast, ...")
    would otherwise run on from it."""
    return text if _SENTENCE_END.search(text) else text.rstrip() + "."


def define(term: str, definition: str, names: tuple[str, ...]) -> str:
    """l1.define's answer, one `sentence`: "<term> is defined as <definition>", or the definition
    alone when it already says what the term is ("Abu Dhabi is a city.", not "Abu Dhabi is defined
    as Abu Dhabi is a city.")."""
    if restates(definition, names):
        return sentence(RESTATED_DEFINITION.format(definition=definition))
    return sentence(TRAIN_L1["l1.define"][1].format(term=term, definition=definition))


# --- where a generated question quotes the KB ------------------------------------------------

@cache
def _question_pattern(template: str) -> re.Pattern:
    """BENCH[template] as a regex with one group per QUOTED part; a field of the template's own
    wording (chain.l3.hops's `{ending}`) matches one of its wordings and is not quoted."""
    text, quoted = BENCH[template], QUOTED[template]
    own = {"ending": "(?:" + "|".join(map(re.escape, L3_ENDINGS.values())) + ")"}

    def fields(segment: str) -> str:
        return re.sub(r"\\\{(\w+)\\\}", lambda m: own.get(m.group(1), ".+"), re.escape(segment))

    pattern, at = "", 0
    for part in quoted:
        start = text.index(part, at)
        pattern += fields(text[at:start]) + "(" + fields(part) + ")"
        at = start + len(part)
    return re.compile(pattern + fields(text[at:]), re.DOTALL)


def quoted_spans(template: str, question: str) -> list[tuple[int, int]]:
    """Character spans of `question` that quote the KB (QUOTED); none for a hand-written item,
    or for a question that does not have its template's shape."""
    if template not in QUOTED:
        return []
    match = _question_pattern(template).fullmatch(question)
    return [match.span(g) for g in range(1, len(QUOTED[template]) + 1)] if match else []
