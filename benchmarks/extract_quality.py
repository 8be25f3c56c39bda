"""How well `git pwd extract` reads a corpus back: a generated KB rendered into varied prose.

A synthetic KB (pseudo-word terms, so no sentence is true by accident) is written out as a
corpus of Markdown and text documents: each concept's definition in one of several sentence
shapes, each statement in one of several shapes per predicate, interleaved with distractor
sentences that state nothing extract may take (questions, negations, hedges, conditionals,
pronoun subjects, comparisons, chatter; every one names concepts of the KB, and the hedged
ones name pairs that are false). Some facts are written in shapes the patterns backend does
not claim ("We call ... X"), to show what it misses. Then the real `extract` (dry run) reads the
committed corpus, and its plan is scored against the KB:

  statement precision   extracted statements that are in the KB
  statement recall      KB statements extracted, over those written in claimed shapes whose two
                        concepts are defined in claimed shapes (and over all)
  concept recall        KB concepts extracted (claimed shapes / all); type = the KB's type
  quotes verified       written nodes whose quote is in their document (whitespace-normalised)

    python benchmarks/extract_quality.py [--concepts 300] [--docs 12] [--seeds 0,1,2]
    python benchmarks/extract_quality.py --llm [--chunks 64] [--latency 0.05]

--llm times the llm backend against a loopback chat-completions server that answers every
request after a fixed latency, at concurrency 1, 4 and 16 (target: within 20% of
chunks x latency / concurrency), then once more with the answers cached (no request).

Targets for the patterns backend: precision >= 0.95, recall >= 0.6 on the claimed shapes,
quotes verified 100%.
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pwd_git.extract.chunks import normalise_ws
from pwd_git.extract.run import extract
from pwd_git.kb.loader import Domain
from pwd_git.kb.model import slug, statement_id

TYPES = ["organelle", "enzyme", "protein", "molecule", "structure", "compartment", "pathway", "receptor"]
PREDICATES = ["is part of", "is located in", "consists of", "occurs in", "produces", "binds"]  # last three declared
SYLLABLES = ["zor", "vel", "ka", "min", "tor", "lu", "pha", "ren", "dri", "mo", "gal", "ne", "quil", "bar", "tek", "ur",
             "fen", "op", "ti", "ga", "rol", "wen", "chi", "dax"]
DEFINE = {  # claimed definition shapes
    "copula": "{A} {term} is {a} {type} that {does}.",
    "copula-the": "The {term} is {a} {type} which {does}.",
    "kind-of": "{A} {term} is a kind of {type} that {does}.",
    "also-called": "The {term}, also called the {alias}, is {a} {type} that {does}.",
    "abbreviation": "{Term} ({abbr}) is {a} {type} that {does}.",
    "emphasis": "**{Term}** is {a} {type} with a role in {other}.",
}
DEFINE_UNCLAIMED = {
    "we-call": "We call {a} {type} that {does} the {term}.",
    "known-as": "Known as the {term}, this {type} {does}.",
}
RELATE = {  # claimed statement shapes per predicate
    "is part of": ["The {s} is part of the {o}.", "{S} is a part of the {o}.", "{S}s are part of the {o}."],
    "is located in": ["The {s} is located in the {o}.", "{S}s are located in the {o}, where they work.",
                      "- The {s} is located in the {o}."],
    "consists of": ["The {s} consists of the {o}.", "{S}s consist of {o}."],
    "occurs in": ["{S} occurs in the {o}.", "{S}s occur in the {o}."],
    "produces": ["The {s} produces {o}.", "{S}s produce the {o}."],
    "binds": ["The {s} binds the {o}.", "{S} binds {o}; this was shown early."],
}
RELATE_UNCLAIMED = ["In the {o}, one finds the {s} ({p}).", "The {o} is where the {s} turns up ({p})."]
DISTRACT = [
    "Is the {s} part of the {o}?", "The {s} is not part of the {o}.", "The {s} may be located in the {o}.",
    "The {s} probably produces {o}.", "If the {s} is {a} {type}, it binds the {o}.", "It is {a} {type} that binds the {o}.",
    "This is {a} {type} of note for the {o}.", "The {s} is a bigger {type} than the {o}.",
    "Researchers have long studied the {s} and the {o}.", "The {s} often occurs in the {o}.",
    "There is {a} {type} near the {o}.", "Some say the {s} consists of the {o}.", "The {s} was never part of the {o}.",
    "Nobody knows whether the {s} binds the {o}.", "The result is {a} {type} without the {o}.",
]
CONFIG = """name: synthetic
predicates:
  occurs in: {functional: false}
  produces: {functional: false}
  binds: {functional: false}
extract:
  backend: patterns
"""


def article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def make_kb(n: int, rng: random.Random) -> tuple[dict, list[tuple[str, str, str]]]:
    """{id: {term, type, alias}} and (subject, predicate, object) triples, all ids slugs of terms."""
    terms: dict[str, dict] = {}
    while len(terms) < n:
        word = "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 3)))
        if word.endswith(("s", "x")):
            continue
        term = word if rng.random() < 0.7 else f"{word} {rng.choice(['kinase', 'factor', 'body', 'complex', 'channel'])}"
        if slug(term) in terms or any(slug(term).startswith(t) or t.startswith(slug(term)) for t in terms):
            continue
        terms[slug(term)] = {"term": term, "type": rng.choice(TYPES)}
    ids = sorted(terms)
    for cid in ids:
        if rng.random() < 0.15:
            terms[cid]["alias"] = "".join(rng.choice(SYLLABLES) for _ in range(3)) + "ine"
    triples = set()
    for cid in ids:
        for _ in range(rng.randint(1, 2)):
            other = rng.choice(ids)
            if other != cid:
                triples.add((cid, rng.choice(PREDICATES), other))
    return terms, sorted(triples)


def _abbreviation(term: str, taken: set[str]) -> str:
    """An upper-case short form no other concept uses (a shared one is a clash extract refuses)."""
    letters = term.replace(" ", "").upper()
    for n in range(2, len(letters) + 1):
        if letters[:n] not in taken:
            taken.add(letters[:n])
            return letters[:n]
    return letters


def cap(text: str) -> str:
    return text[0].upper() + text[1:]


def render(terms: dict, triples: list, docs: int, rng: random.Random) -> tuple[dict[str, str], dict]:
    """{path: text} and which facts went into claimed shapes."""
    ids = sorted(terms)
    claimed = {"concepts": set(), "statements": set()}
    sentences: list[str] = []
    abbreviations: set[str] = set()
    for cid in ids:
        c = terms[cid]
        other = terms[rng.choice(ids)]["term"]
        fill = {"term": c["term"], "Term": cap(c["term"]), "type": c["type"], "a": article(c["type"]),
                "A": cap(article(c["term"])), "does": f"acts on the {other}", "other": f"the {other}",
                "alias": c.get("alias", ""), "abbr": _abbreviation(c["term"], abbreviations)}
        if rng.random() < 0.12:
            sentences.append(rng.choice(list(DEFINE_UNCLAIMED.values())).format(**fill))
            continue
        shapes = [k for k in DEFINE if (k != "also-called" or c.get("alias"))]
        sentences.append(DEFINE[rng.choice(shapes)].format(**fill))
        claimed["concepts"].add(cid)
    for s, p, o in triples:
        fill = {"s": terms[s]["term"], "S": cap(terms[s]["term"]), "o": terms[o]["term"], "p": p}
        if rng.random() < 0.12:
            sentences.append(rng.choice(RELATE_UNCLAIMED).format(**fill))
            continue
        sentences.append(rng.choice(RELATE[p]).format(**fill))
        if s in claimed["concepts"] and o in claimed["concepts"]:  # both ends named in shapes it reads
            claimed["statements"].add(statement_id(s, p, o))
    true_pairs = {(s, o) for s, _, o in triples}
    for _ in range(len(sentences) // 2):
        s, o = rng.choice(ids), rng.choice(ids)
        if (s, o) in true_pairs or s == o:
            continue
        t = terms[s]["type"]
        sentences.append(rng.choice(DISTRACT).format(s=terms[s]["term"], o=terms[o]["term"], type=t, a=article(t)))
    rng.shuffle(sentences)
    files: dict[str, str] = {}
    per = max(1, len(sentences) // docs)
    for d in range(docs):
        part = sentences[d * per:(d + 1) * per] if d < docs - 1 else sentences[d * per:]
        paragraphs = [" ".join(part[i:i + 4]) for i in range(0, len(part), 4)]
        fixed = []
        for para in paragraphs:  # a list item must start its own line
            fixed.append(para.replace(" - ", "\n- ") if " - " in para else para)
        ext = "md" if d % 2 == 0 else "txt"
        head = f"# Notes {d}\n\n" if ext == "md" else ""
        files[f"corpus/doc-{d:02d}.{ext}"] = head + "\n\n".join(fixed) + "\n"
    return files, claimed


def run(n: int, docs: int, seed: int) -> dict:
    rng = random.Random(seed)
    terms, triples = make_kb(n, rng)
    files, claimed = render(terms, triples, docs, rng)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        env = {**os.environ, "GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@b", "GIT_COMMITTER_NAME": "b",
               "GIT_COMMITTER_EMAIL": "b@b"}
        subprocess.run(["git", "init", "-q", "-b", "main"], cwd=root, check=True)
        (root / "pwd.yaml").write_text(CONFIG)
        for rel, text in files.items():
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_text(text)
        subprocess.run(["git", "add", "-A"], cwd=root, check=True)
        subprocess.run(["git", "commit", "-qm", "corpus"], cwd=root, check=True, env=env)
        start = time.perf_counter()
        result = extract(Domain.find(root), dry_run=True)
        seconds = time.perf_counter() - start
        import yaml

        texts = {rel: normalise_ws(text) for rel, text in files.items()}
        quotes = verified = 0
        types_right = 0
        got_concepts = {c["id"] for c in result.plan.concepts}
        for path, data in result.plan.files.items():
            if not path.startswith("concepts/"):
                continue  # the chains proposed over the extracted statements cite no quote
            node = yaml.safe_load(data)
            if node["id"] in terms and node["type"] == terms[node["id"]]["type"]:
                types_right += 1
            for src in [node["source"], *(r["source"] for r in node.get("relations", []))]:
                quotes += 1
                verified += src["quote"] in texts.get(src["doc"], "")
    truth = {statement_id(s, p, o) for s, p, o in triples}
    got = {s["id"] for s in result.plan.statements}
    tp = got & truth
    return {
        "concepts": n, "statements": len(truth), "documents": docs, "sentences": sum(t.count(".") for t in files.values()),
        "precision": len(tp) / len(got) if got else 1.0,
        "recall_claimed": len(tp & claimed["statements"]) / max(1, len(claimed["statements"])),
        "recall_all": len(tp) / max(1, len(truth)),
        "concept_precision": len(got_concepts & set(terms)) / max(1, len(got_concepts)),
        "concept_recall_claimed": len(got_concepts & claimed["concepts"]) / max(1, len(claimed["concepts"])),
        "concept_recall_all": len(got_concepts & set(terms)) / max(1, len(terms)),
        "type_accuracy": types_right / max(1, len(got_concepts & set(terms))),
        "quotes": quotes, "quotes_verified": verified / max(1, quotes),
        "dropped": result.drop_counts(), "false_statements": sorted(got - truth)[:5], "seconds": seconds,
    }


def _serve(port_out, latency: float) -> None:
    """The loopback chat-completions server, in a process of its own (not sharing our GIL)."""
    import json
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            time.sleep(latency)
            data = json.dumps({"choices": [{"message": {"content": '{"concepts": [], "statements": []}'}}]}).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.request_queue_size = 64
    port_out.put(server.server_port)
    server.serve_forever()


def llm_timing(chunks: int, latency: float) -> None:
    import multiprocessing

    ports = multiprocessing.Queue()
    proc = multiprocessing.Process(target=_serve, args=(ports, latency), daemon=True)
    proc.start()
    port = ports.get(timeout=30)
    print("| concurrency | chunks | latency | wall | ideal (chunks x latency / concurrency) | ratio |\n|---|---|---|---|---|---|")
    ok = True
    for concurrency in (1, 4, 16):
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            env = {**os.environ, "GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@b", "GIT_COMMITTER_NAME": "b",
                   "GIT_COMMITTER_EMAIL": "b@b"}
            subprocess.run(["git", "init", "-q", "-b", "main"], cwd=root, check=True)
            (root / "pwd.yaml").write_text(f"name: timing\nextract:\n  backend: llm\n  chunk_chars: 200\n  llm:\n"
                                           f"    base_url: http://127.0.0.1:{port}/v1\n    model: m\n"
                                           f"    concurrency: {concurrency}\n")
            (root / "corpus").mkdir()
            (root / "corpus/doc.md").write_text("\n\n".join(f"Paragraph {i} of the timing corpus, long enough to fill "
                                                              f"most of one chunk of two hundred characters by itself; "
                                                              f"it states nothing at all. {'x' * 40}"
                                                              for i in range(chunks)) + "\n")
            subprocess.run(["git", "add", "-A"], cwd=root, check=True)
            subprocess.run(["git", "commit", "-qm", "corpus"], cwd=root, check=True, env=env)
            start = time.perf_counter()
            result = extract(Domain.find(root), dry_run=True)
            wall = time.perf_counter() - start
            n = sum(d.chunks for d in result.documents)
            ideal = n * latency / concurrency
            ok &= wall <= 1.2 * ideal + 0.5  # + start-up: git, reading, the merge
            print(f"| {concurrency} | {n} | {latency * 1000:.0f} ms | {wall:.2f} s | {ideal:.2f} s | {wall / ideal:.2f} |")
            start = time.perf_counter()
            extract(Domain.find(root), dry_run=True)
            cached = time.perf_counter() - start
    print(f"re-run with every answer cached: {cached:.2f} s, no request")
    proc.terminate()
    proc.join()
    print("target (within 20% of ideal, plus 0.5 s start-up):", "met" if ok else "NOT met")
    sys.exit(0 if ok else 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--concepts", type=int, default=300)
    parser.add_argument("--docs", type=int, default=12)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--llm", action="store_true", help="time the llm backend against a loopback server instead")
    parser.add_argument("--chunks", type=int, default=64)
    parser.add_argument("--latency", type=float, default=0.05)
    args = parser.parse_args()
    if args.llm:
        llm_timing(args.chunks, args.latency)
    rows = [run(args.concepts, args.docs, int(s)) for s in args.seeds.split(",")]
    print("| seed | concepts | statements | stmt precision | stmt recall (claimed / all) | concept recall (claimed / all) "
          "| type acc | quotes verified | time |")
    print("|---|---|---|---|---|---|---|---|---|")
    for seed, r in zip(args.seeds.split(","), rows, strict=True):
        print(f"| {seed} | {r['concepts']} | {r['statements']} | {r['precision']:.3f} | {r['recall_claimed']:.3f} / "
              f"{r['recall_all']:.3f} | {r['concept_recall_claimed']:.3f} / {r['concept_recall_all']:.3f} | "
              f"{r['type_accuracy']:.3f} | {r['quotes_verified']:.1%} of {r['quotes']} | {r['seconds']:.2f} s |")
    for seed, r in zip(args.seeds.split(","), rows, strict=True):
        print(f"seed {seed}: dropped {r['dropped']}; false statements (first 5): {r['false_statements']}")
    ok = all(r["precision"] >= 0.95 and r["recall_claimed"] >= 0.6 and r["quotes_verified"] == 1.0 for r in rows)
    print("targets (precision >= 0.95, claimed recall >= 0.6, quotes 100%):", "met" if ok else "NOT met")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
