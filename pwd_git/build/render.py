"""Render a unit's spec to its shard lines: canonical JSON written by hand (the same bytes as
`ENCODER.encode` of each record dict, checked by the tests), with content-hash ids. A pure
function of the spec, so unchanged units can be copied from the last build instead."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pwd_git.build.decontam import Probe, node_keys, probe
from pwd_git.build.draws import rank
from pwd_git.build.templates import TRAIN_L1, TRAIN_L2, TRAIN_L3, article, define, flat, informative

if TYPE_CHECKING:
    from pwd_git.build.generate import Unit

#: The one JSON serialisation of records: sorted keys, compact, UTF-8 (also what `id` hashes).
ENCODER = json.JSONEncoder(sort_keys=True, ensure_ascii=False, separators=(",", ":"))
_STR = json.encoder.encode_basestring  # how ENCODER writes a str (the same C function)


def content_id(payload: object) -> str:
    """A record's `id`: sha256 of its canonical JSON without the id, 16 hex digits."""
    return hashlib.sha256(ENCODER.encode(payload).encode()).hexdigest()[:16]


def _with_id(body: str, rid: str) -> str:
    """The shard line of a record whose canonical JSON without `id` is `body`: the id goes in
    at its sorted place, before "level" (every record has one; no string value can contain
    `,"level":` since JSON escapes quotes inside strings)."""
    if body.startswith('{"level":'):
        return '{"id":"' + rid + '",' + body[1:] + "\n"
    at = body.index(',"level":')
    return body[:at] + ',"id":"' + rid + '"' + body[at:] + "\n"


def traces_json(concepts: list[str], statements: list[str], chain: str = "") -> str:
    """The `traces` object as canonical JSON (= ENCODER.encode of the dict). No chain is "",
    never null: every record of a split has the same keys with the same JSON types (see
    `pwd_git.build.card`), so a column never changes type from one shard file to the next."""
    return ('{"chain":' + _STR(chain) + ',"concepts":[' + ",".join(map(_STR, concepts))
            + '],"statements":[' + ",".join(map(_STR, statements)) + "]}")


@dataclass
class Rendered:
    lines: str  # the unit's shard lines, each ending in "\n"
    ids: list[str]  # record ids, in order
    texts: list[tuple[str, ...]] = field(default_factory=list)  # training records: message contents, per record


_TRAIN_HEAD = {level: '{"level":' + _STR(level) + ',"messages":[{"content":' for level in ("L1", "L2", "L3")}
_TRAIN_MID = ',"role":"user"},{"content":'
_TRAIN_TAIL = ',"role":"assistant"}],"source":'


def _render_train(level: str, pairs: list[tuple[str, str, str]], traces: str, source: str) -> Rendered:
    """Records of (template, user, assistant) sharing traces and source, written directly as
    canonical JSON (the same bytes as ENCODER.encode of the record dict), each text `flat`."""
    head, src, sha256 = _TRAIN_HEAD[level], _TRAIN_TAIL + _STR(source), hashlib.sha256
    lines, ids, texts = [], [], []
    for template, user, assistant in pairs:
        user, assistant = flat(user), flat(assistant)
        body = (head + _STR(user) + _TRAIN_MID + _STR(assistant) + src + ',"template":' + _STR(template)
                + ',"traces":' + traces + "}")
        rid = sha256(body.encode()).hexdigest()[:16]
        lines.append('{"id":"' + rid + '",' + body[1:] + "\n")
        ids.append(rid)
        texts.append((user, assistant))
    return Rendered("".join(lines), ids, texts)


def train_templates(spec: tuple) -> tuple[str, ...]:
    """The templates of a training unit's records, in order, from its spec alone: one list for
    what `render` writes and what the build counts (`Unit.templates`). A concept whose clue (in
    its spec: masking is the costly part of planning) says nothing but its name, or is another
    concept's clue too ("" in the spec: the question would have several answers), gets no l1.name;
    a statement gets l2.cloze only when its subject is the blank's one true answer (the spec's
    flag), l2.text with a `text`, l2.false with a wrong target."""
    if spec[0] == "L1":
        _, _, _, _, _, aliases, the_clue, _ = spec
        return ("l1.define",) + ("l1.name",) * informative(the_clue) + ("l1.type",) + ("l1.alias",) * len(aliases)
    if spec[0] == "L2":
        _, _, _, _, _, _, text, wrong, cloze, _ = spec
        return ("l2.fact", "l2.qa") + ("l2.cloze",) * cloze + ("l2.true",) + ("l2.text",) * bool(text) \
            + ("l2.false",) * (wrong is not None)
    return ("l3.demo",)


def _render_l1(spec: tuple) -> Rendered:
    _, cid, term, definition, ctype, aliases, the_clue, source = spec
    names = (term, *aliases)
    fields = {"term": term, "definition": definition, "type": ctype, "a": article(ctype), "clue": the_clue}
    templates = train_templates(spec)
    pairs = []
    for name, alias in zip(templates, (None,) * (len(templates) - len(aliases)) + aliases, strict=True):  # aliases last
        user, assistant = TRAIN_L1[name]
        answer = define(term, definition, names) if name == "l1.define" else assistant.format(alias=alias, **fields)
        pairs.append((name, user.format(**fields), answer))
    return _render_train("L1", pairs, traces_json([cid], []), source)


def _render_l2(spec: tuple) -> Rendered:
    _, sid, concepts, subject, predicate, target, text, wrong, _, source = spec
    fields = {"subject": subject, "predicate": predicate, "object": target, "text": text, "wrong": wrong}
    pairs = []
    for name in train_templates(spec):
        user, assistant = TRAIN_L2[name]
        pairs.append((name, user.format(**fields), assistant.format(**fields)))
    return _render_train("L2", pairs, traces_json(list(concepts), [sid]), source)


def _render_l3(spec: tuple) -> Rendered:
    _, chain_id, concepts, steps, start, path, sentences, answer, source = spec
    user, assistant = TRAIN_L3["l3.demo"]
    fields = {"start": start, "path": path, "steps": sentences, "answer": answer}
    return _render_train("L3", [("l3.demo", user.format(**fields), assistant.format(**fields))],
                         traces_json(list(concepts), list(steps), chain_id), source)


def _render_patch(spec: tuple) -> Rendered:
    _, template, messages, traces, source = spec
    body = ENCODER.encode({"level": "patch", "template": template, "messages": messages, "traces": traces,
                           "source": source})
    rid = hashlib.sha256(body.encode()).hexdigest()[:16]
    texts = tuple(m["content"] for m in messages)
    return Rendered(_with_id(body, rid), [rid], [texts])


def _bench_line(level: str, template: str, item: tuple, traces: str, seed: int) -> tuple[str, str]:
    """A generated benchmark item's id and line, its question and choices `flat`."""
    question, answer, wrong, source, fallback = item
    question, answer = flat(question), flat(answer)
    choices = rank(seed, question, [answer, *map(flat, wrong)])
    body = ('{"answer":' + str(choices.index(answer)) + ',"choices":' + ENCODER.encode(choices)
            + ',"distractor_fallback":' + ("true" if fallback else "false") + ',"hand_index":-1,"level":' + _STR(level)
            + ',"question":' + _STR(question) + ',"source":' + _STR(source) + ',"template":' + _STR(template)
            + ',"traces":' + traces + "}")
    rid = hashlib.sha256(body.encode()).hexdigest()[:16]
    return rid, _with_id(body, rid)


def _hand_line(hand: tuple, index: int, traces: str) -> tuple[str, str]:
    question, choices, answer, source = hand
    body = ('{"answer":' + ENCODER.encode(answer) + ',"choices":' + ENCODER.encode(list(choices))
            + ',"distractor_fallback":false,"hand_index":' + str(index) + ',"level":"L3","question":' + _STR(question)
            + ',"source":' + _STR(source) + ',"template":"hand","traces":' + traces + "}")
    rid = hashlib.sha256(body.encode()).hexdigest()[:16]
    return rid, _with_id(body, rid)


def _render_bench(spec: tuple) -> Rendered:
    kind, traces = spec[0], spec[1]
    out = []
    if kind == "B1":
        _, _, describe, kinds, seed = spec
        if describe:
            out.append(_bench_line("L1", "probe.l1.describe", describe, traces, seed))
        if kinds:
            out.append(_bench_line("L1", "probe.l1.kind", kinds, traces, seed))
    elif kind == "B2":
        out.append(_bench_line("L2", "probe.l2.complete", spec[2], traces, spec[3]))
    else:
        _, _, hops, hand, seed = spec
        if hops:
            out.append(_bench_line("L3", "chain.l3.hops", hops, traces, seed))
        out.extend(_hand_line(h, i, traces) for i, h in enumerate(hand))
    return Rendered("".join(line for _, line in out), [rid for rid, _ in out])


_RENDER = {"L1": _render_l1, "L2": _render_l2, "L3": _render_l3, "patch": _render_patch,
           "B1": _render_bench, "B2": _render_bench, "B3": _render_bench}


def render(spec: tuple) -> Rendered:
    """The shard lines of a unit, from its spec alone."""
    return _RENDER[spec[0]](spec)


def _bench_items(unit: Unit) -> list[tuple]:
    """The item tuples of a benchmark unit, in order: (question, answer, wrong answers, source,
    fallback) generated, (question, choices, answer index, source) hand-written."""
    kind, spec = unit.spec[0], unit.spec
    if kind == "B1":
        return [item for item in spec[2:4] if item]
    if kind == "B2":
        return [spec[2]]
    return ([spec[2]] if spec[2] else []) + list(spec[3])


def _bench_field(unit: Unit, field: int) -> list:
    """One field of each benchmark item a unit holds, in order (item tuples: question .. source)."""
    return [item[field] for item in _bench_items(unit)]


def bench_answers(unit: Unit) -> list[tuple[str, list[str]]]:
    """(answer, choices) of each benchmark item a unit holds, in order, as its record shows them."""
    out = []
    for template, item in zip(unit.templates, _bench_items(unit), strict=True):
        if template == "hand":
            out.append((item[1][item[2]], list(item[1])))
        else:
            out.append((flat(item[1]), [flat(item[1]), *map(flat, item[2])]))
    return out


def bench_questions(unit: Unit) -> list[str]:
    """The questions of a benchmark unit's items, in order (what decontamination indexes)."""
    return _bench_field(unit, 0)


def bench_sources(unit: Unit) -> list[str]:
    """The `source` of a benchmark unit's items, in order."""
    return _bench_field(unit, 3)


def bench_probes(unit: Unit) -> list[Probe | None]:
    """What decontamination needs to know of a benchmark unit's items, in order (None: hand-written)."""
    traces = json.loads(unit.spec[1])
    return [probe(template, question, answer if isinstance(answer, str) else "", traces)
            for template, question, answer in zip(unit.templates, bench_questions(unit), _bench_field(unit, 1),
                                                   strict=True)]


def train_keys(spec: tuple) -> frozenset[str]:
    """The node keys (`decontam.node_keys`) a training unit's records trace, from its spec."""
    kind = spec[0]
    if kind == "L1":
        return node_keys([spec[1]])
    if kind == "L2":
        return node_keys(spec[2], [spec[1]])
    if kind == "L3":
        return node_keys(spec[2], spec[3], spec[1])
    traces = spec[3]
    return node_keys(traces.get("concepts") or (), traces.get("statements") or (), traces.get("chain"))
