"""L3 chains proposed from the extracted statement graph: paths of 2-3 hops whose object is
the next step's subject (within a document or across documents), with a deterministic split.

Split: chains are grouped by answer type (the type of the last object); in each group, in the
order of a hash of the chain id, the first is `train` and every second one after it `test`, so
every test chain's answer type is represented in training. A chain becomes `test` only when
the KB holds at least three concepts of its answer type that are not true answers of the path
(the distractors the benchmark needs); otherwise it stays `train`.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict

from pwd_git.kb.model import slug

N_DISTRACTORS = 3  # build.generate.N_CHOICES - 1


def propose(steps: dict[str, tuple[str, str, str]], all_targets: dict[tuple[str, str], set[str]],
            types: dict[str, str], terms: dict[str, str], taken: set[str], limit: int) -> list[dict]:
    """Chains over `steps` ({statement id: (subject, predicate, object id)}, the extracted ones),
    at most `limit`, longest first. `all_targets`: (subject, predicate) -> objects over the whole KB,
    to know every true answer of a path; `types`/`terms`: per concept id."""
    if limit <= 0:
        return []
    by_subject: dict[str, list[str]] = defaultdict(list)
    for sid in sorted(steps):
        by_subject[steps[sid][0]].append(sid)
    paths: list[tuple[str, ...]] = []
    budget = limit * 20  # bounded search on a dense graph: deterministic, in sorted order
    for first in sorted(steps):
        for path in _extend((first,), steps, by_subject, 3):
            paths.append(path)
            if len(paths) >= budget:
                break
        if len(paths) >= budget:
            break
    longest = {p for p in paths if len(p) == 3}
    inside = {q for p in longest for q in (p[:2], p[1:])}
    chosen = sorted([p for p in paths if len(p) == 3] + [p for p in paths if len(p) == 2 and p not in inside],
                    key=lambda p: (-len(p), p))[:limit]
    chains = []
    for path in chosen:
        start, end = steps[path[0]][0], steps[path[-1]][2]
        base = f"{start}-to-{end}"[:100].strip("-")
        cid = base if base not in taken else f"{base[:92]}-{hashlib.sha1('|'.join(path).encode()).hexdigest()[:6]}"
        taken.add(cid)
        predicates = ", then ".join(steps[s][1] for s in path)
        chains.append({"id": slug(cid), "title": f"From {terms.get(start, start)} to {terms.get(end, end)}: {predicates}",
                       "steps": list(path), "answer_type": types.get(end, ""),
                       "frontier": _frontier(start, [steps[s][1] for s in path], all_targets)})
    _split(chains, types)
    for c in chains:
        del c["answer_type"], c["frontier"]
    return chains


def _extend(path: tuple[str, ...], steps: dict, by_subject: dict, hops: int):
    """Every path of 2..hops steps starting with `path`, visiting no concept twice."""
    seen = {steps[path[0]][0], *(steps[s][2] for s in path)}
    if len(path) >= 2:
        yield path
    if len(path) == hops:
        return
    for nxt in by_subject.get(steps[path[-1]][2], ()):
        if steps[nxt][2] not in seen:
            yield from _extend((*path, nxt), steps, by_subject, hops)


def _frontier(start: str, predicates: list[str], targets: dict[tuple[str, str], set[str]]) -> set[str]:
    """Every end reachable from `start` by the same predicates: all true answers of the chain."""
    frontier = {start}
    for p in predicates:
        frontier = {t for s in frontier for t in targets.get((s, p), ())}
    return frontier


def _split(chains: list[dict], types: dict[str, str]) -> None:
    per_type: dict[str, int] = defaultdict(int)
    for t in types.values():
        per_type[t] += 1
    groups: dict[str, list[dict]] = defaultdict(list)
    for c in chains:
        groups[c["answer_type"]].append(c)
    for kind, group in groups.items():
        group.sort(key=lambda c: hashlib.sha1(c["id"].encode()).hexdigest())
        for i, c in enumerate(group):
            wrong = per_type[kind] - len({x for x in c["frontier"] if types.get(x) == kind}) - 1  # - 1: the start, maybe
            c["split"] = "test" if i % 2 == 1 and wrong >= N_DISTRACTORS else "train"
