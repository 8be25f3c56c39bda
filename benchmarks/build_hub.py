"""Does planning the statements' records stay linear when one subject holds most of a predicate's
objects (a hub: "stdlib includes m0 ... mN", every country "located in" one continent)?

Times `Generator.statement_unit` and `statement_probe` (their distractor and l2.false draws) over
N statements in two KBs of the same size: a hub (one subject, N objects of one predicate) and the
baseline, N subjects with one object each. The ratio hub / spread should stay near 1 as N grows;
before the draws kept what a hub's targets leave in each ring, it grew with N (quadratic).

    python benchmarks/build_hub.py --sizes 1000,2000,4000
"""

from __future__ import annotations

import argparse
import time

from pwd_git.build.generate import Generator
from pwd_git.kb.model import KB, Concept, Loc, Statement, statement_id


def _kb(n: int, hub: bool) -> KB:
    kb = KB(config={})

    def concept(cid: str, ctype: str) -> None:
        kb.concepts[cid] = Concept(cid, cid.replace("-", " "), ctype, f"A thing called {cid}.", [],
                                   Loc(f"concepts/{cid}.yaml", 1))

    for i in range(n):
        concept(f"module-{i}", "module")
        concept(f"library-{i}", "library")
    for i in range(n):
        subject = "library-0" if hub else f"library-{i}"
        sid = statement_id(subject, "includes", f"module-{i}")
        kb.statements[sid] = Statement(sid, subject, "includes", f"module-{i}", None, None,
                                       Loc(f"concepts/{subject}.yaml", i + 2))
        kb.concepts[subject].statements.append(sid)
    return kb


def _seconds(kb: KB) -> float:
    generator = Generator(kb)
    generator.prepare()
    began = time.perf_counter()
    for st in kb.statements.values():
        generator.statement_unit(st)
        generator.statement_probe(st)
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,2000,4000", help="statements per KB, comma-separated")
    args = parser.parse_args()
    print("| statements | spread (baseline) s | hub s | hub / spread |")
    print("|---:|---:|---:|---:|")
    for n in (int(x) for x in args.sizes.split(",")):
        spread, hub = _seconds(_kb(n, hub=False)), _seconds(_kb(n, hub=True))
        print(f"| {n} | {spread:.3f} | {hub:.3f} | {hub / spread:.2f} |")


if __name__ == "__main__":
    main()
