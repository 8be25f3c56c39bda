"""Benchmark templates that a question-blind guess passes: a build warning, not an error.

Real data is skewed: most dependencies of Debian packages are libraries, so most multi-hop
items end in the section `libs`, and most probed concepts are packages. A guess that never
reads the question, "the choice that is most often the answer elsewhere", then passes the
level, and its score measures that prior, not whether the model learned the KB. The data is
not wrong, so the build goes on; it says so, per template, in the manifest's `warnings` (and as
a warning on stderr each time `build` or `test` reports on it, `shards.warn_about`).

The other question-blind guess reads the question's words but not the KB: the choice whose
words the question's words begin (`templates.pointed_at`: "libx11-dev depends on" and
libx11-6). The generator draws distractors that echo those words too; what it cannot (a
hand-written item, a type whose names all differ) is warned about as `word-match`.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable

from pwd_git.build.generate import Unit
from pwd_git.build.render import bench_answers, bench_questions
from pwd_git.build.templates import BENCH, FUNCTION_WORDS, mentions, pointed_at, words_of
from pwd_git.kb.checks import reads_as

CODE = "blind-prior"
WORD_CODE = "word-match"
WORD_BOUND = 0.4  # warn above this word-match score, and 0.15 above chance
WORD_HINTS = {
    "hand": "reword the hand-written items so that no choice alone repeats the question's words",
    "probe.l1.describe": "definitions that spell out the term's abbreviations point at themselves; say what the "
                         "concept is in other words",
}
MIN_ITEMS = 20  # fewer items of a template: too few to tell a prior from chance
BOUND = 0.5  # warn above this blind score, and above twice chance (0.25 with four choices)
HINTS = {
    "chain.l3.hops": "add test chains that end at other answers (other endpoints, predicates or types)",
    "probe.l2.complete": "add test chains through statements whose targets differ",
    "probe.l1.kind": "add test chains through concepts of other types",
    "hand": "vary the answers of the hand-written items",
}


def blind_score(items: list[tuple[str, list[str]]]) -> float:
    """The expected accuracy of picking, in each item, the choice that is the answer of the most
    *other* items (leave-one-out, so an answer that occurs once is no prior; ties split evenly):
    `items` are (answer, choices) as `reads_as` reads them. O(items x choices)."""
    answers = Counter(answer for answer, _ in items)
    score = 0.0
    for answer, choices in items:
        seen = [answers[c] - (c == answer) for c in choices]
        top = max(seen)
        if seen[choices.index(answer)] == top:
            score += 1 / seen.count(top)
    return score / len(items) if items else 0.0


def guesses(units: Iterable[Unit]) -> list[dict]:
    """Every warning of this module: the answer prior's, then the word match's."""
    templates = _templates(units)
    return blind_prior(templates) + word_match(templates)


Template = tuple[str, str, list[tuple[str, str, list[str]]], float]  # name, level, (question, answer, choices), chance


def _templates(units: Iterable[Unit]) -> list[Template]:
    """The benchmark's templates of at least MIN_ITEMS items, in the order they first occur:
    each with its level, its items as their records show them, and what guessing gets."""
    per: dict[str, list[tuple[str, str, list[str]]]] = defaultdict(list)
    level: dict[str, str] = {}
    for unit in units:
        for template, question, (answer, choices) in zip(unit.templates, bench_questions(unit), bench_answers(unit),
                                                         strict=True):
            per[template].append((question, answer, choices))
            level.setdefault(template, unit.level)
    return [(template, level[template], items, sum(1 / len(c) for _, _, c in items) / len(items))
            for template, items in per.items() if len(items) >= MIN_ITEMS]


_OWN_WORDS = frozenset(w for text in BENCH.values() for w in words_of(text))


def word_match_score(items: list[tuple[str, str, list[str]]]) -> float:
    """The expected accuracy of picking, in each (question, answer, choices) item, the choice
    that the most of the question's words point at (whole, or by their first letters; the
    templates' own words and function words aside), ties split evenly."""
    score = 0.0
    for question, answer, choices in items:
        words = [w for w in dict.fromkeys(words_of(question)) if len(w) > 2 and w not in FUNCTION_WORDS
                 and w not in _OWN_WORDS]
        hits = [sum(bool(pointed_at(c, w)) or mentions(c, w) for w in words) for c in choices]
        top = max(hits)
        best = [c for c, h in zip(choices, hits, strict=True) if h == top]
        score += 1 / len(best) if answer in best else 0.0
    return score / len(items) if items else 0.0


def word_match(templates: list[Template]) -> list[dict]:
    """A warning per template (`_templates`) that matching the question's words against the
    choices answers (`word_match_score` above WORD_BOUND and chance + 0.15)."""
    out = []
    for template, level, items, chance in templates:
        score = word_match_score(items)
        if score <= max(WORD_BOUND, chance + 0.15):
            continue
        hint = WORD_HINTS.get(template, "the names of the choices echo the question's; add concepts whose names "
                                        "share those words, so they point at no one choice")
        out.append({"code": WORD_CODE, "template": template, "level": level, "items": len(items),
                    "blind": round(score, 2), "chance": round(chance, 2),
                    "message": f"benchmark template {template} ({level}, {len(items)} items): picking the "
                               f"choice that the question's words point at (whole or by their first letters), "
                               f"without the KB, scores {score:.2f} (chance {chance:.2f}); {hint} [{WORD_CODE}]"})
    return out


def blind_prior(templates: list[Template]) -> list[dict]:
    """A warning per template (`_templates`) that a question-blind guess answers (`blind_score`
    above BOUND and twice chance)."""
    out = []
    for template, level, raw, chance in templates:
        items = [(reads_as(answer), [reads_as(c) for c in choices]) for _q, answer, choices in raw]
        blind = blind_score(items)
        if blind <= max(BOUND, 2 * chance):
            continue
        (top, k), = Counter(answer for answer, _ in items).most_common(1)
        answer = next(a for _q, a, _c in raw if reads_as(a) == top)  # the first text that reads so
        hint = HINTS.get(template, "vary the test chains")
        out.append({"code": CODE, "template": template, "level": level, "items": len(items),
                    "answer": answer, "answer_items": k, "blind": round(blind, 2), "chance": round(chance, 2),
                    "message": f"benchmark template {template} ({level}, {len(items)} items): a guess "
                               f"that never reads the question scores {blind:.2f} (chance {chance:.2f}): {answer!r} "
                               f"is the answer of {k} of them, and the guess picks the choice most often the answer "
                               f"of the other items, so the score measures that prior, not the KB; {hint} [{CODE}]"})
    return out
