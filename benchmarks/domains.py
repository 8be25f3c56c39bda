"""Generated domains shaped like real data, for benchmarks that need more than the example KB.

`write_geography(root, seed)` writes a synthetic geography as KB YAML (the format of
templates/example, docs/kb-format.md): continents, countries, their capital cities and
languages, with pronounceable names made from syllables (nothing is downloaded, nothing is
real). Its shape is the one real country data has and the example domain lacks:

  is located in          functional: city -> country, country -> continent
  has capital            functional: country -> city
  has official language  many-to-many: country -> language (one to three each, shared)
  borders                many-to-many and symmetric (both directions are statements); mostly
                         within a continent, a few across, some islands with none
  belongs to family      functional, a literal value: language -> language family

and 2- and 3-hop test and train chains over them (city -> country -> continent, city ->
country -> borders -> continent, city -> country -> language -> family, ...). The same seed
writes the same bytes.

    python benchmarks/domains.py DIR [--seed 0] [--countries 110] [--languages 80]
"""

from __future__ import annotations

import argparse
import itertools
import random
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

ONSETS = ["b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "br", "dr", "kr", "tr", "st", "th",
          "sh", "gl", "pl", "vel", "mor", "tal", "ser", "kal"]
VOWELS = ["a", "e", "i", "o", "u", "ai", "ei", "ou", "ae"]
CODAS = ["", "", "", "n", "r", "l", "s", "m", "th", "nd", "sk"]
COUNTRY_ENDS = ["ia", "land", "stan", "ora", "avia", "esh", "ania", "ad", "onia", "ar"]
CITY_ENDS = ["burg", "ville", "opolis", "grad", "mar", "haven", "port", "dun", "ford", "abad"]
LANGUAGE_ENDS = ["ish", "ese", "ic", "i", "an", "ol", "ec"]
CONTINENT_ENDS = ["ica", "asia", "ea", "aria", "opa", "undra"]
FAMILIES = ["Aldic", "Borean", "Cerulic", "Dravanic", "Eskaran", "Fennic", "Goric", "Halvic"]
TERRAINS = ["mountainous", "coastal", "landlocked", "forested", "arid", "low-lying", "volcanic", "river-crossed"]
ECONOMIES = ["farming", "fishing", "mining", "textile trade", "shipbuilding", "timber", "spice trade", "banking"]
CITY_SITES = ["on a wide river delta", "at the foot of a mountain range", "around a natural harbour",
              "on a high plateau", "beside a great lake", "at the crossing of two old trade roads",
              "on a chain of hills", "in a fertile valley"]
CLIMATES = ["a cold northern", "a hot dry", "a wet tropical", "a mild temperate", "a windswept southern", "a monsoon"]
FEATURES = ["many vowels", "long compound words", "tonal accents", "strict word order", "rich case system",
            "clicked consonants", "borrowed sea words", "two grammatical genders"]
LANDMARKS = ["its oldest university", "the national archive", "a famous market", "the royal palace", "a large port",
             "a domed cathedral", "the central bank"]
SCRIPTS = ["an alphabet of its own", "a syllabic script", "an adapted foreign alphabet", "a script of carved signs"]
FOLDERS = {"continent": "continents", "country": "countries", "city": "cities", "language": "languages"}
PLACES = ["north", "south", "east", "west", "in the middle", "far south"]
SCHEMA = "# yaml-language-server: $schema=https://pwd-git.dev/schemas/{kind}.schema.json\n"
PREDICATES = {
    "is located in": {"functional": True, "description": "a city lies in one country, a country on one continent"},
    "has capital": {"functional": True, "description": "the seat of a country's government"},
    "has official language": {"functional": False, "description": "a language with legal status in a country"},
    "borders": {"functional": False, "description": "two countries share a land border (both directions are stated)"},
    "belongs to family": {"functional": True, "description": "the language family of a language"},
}


@dataclass
class Concept:
    id: str
    term: str
    type: str
    definition: str
    aliases: list[str] = field(default_factory=list)
    relations: list[dict] = field(default_factory=list)


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


class Names:
    """Unique pronounceable names: 1-2 syllables and an ending; no stem and no name is used twice."""

    def __init__(self, rng: random.Random):
        self.rng, self.used = rng, set()

    def name(self, endings: list[str]) -> str:
        while True:
            parts = [self.rng.choice(ONSETS) + self.rng.choice(VOWELS) for _ in range(self.rng.choice((1, 2)))]
            stem = "".join(parts) + self.rng.choice(CODAS)
            end = self.rng.choice(endings)
            name = (stem.rstrip("aeiou") + end if end[0] in "aeiou" else stem + end).capitalize()
            if len(stem) >= 3 and stem not in self.used and slug(name) not in self.used:
                self.used.update((stem, slug(name)))
                return name


def article(word: str) -> str:
    return "An" if word[0].lower() in "aeiou" else "A"


def with_article(word: str) -> str:
    return f"{article(word)} {word}"


def statement_id(subject: str, predicate: str, obj: str) -> str:
    return f"{subject}.{slug(predicate)}.{slug(obj)}"


def geography(seed: int = 0, countries: int = 110, languages: int = 80, continents: int = 6,
              ) -> tuple[dict, list[Concept], list[dict]]:
    """(pwd.yaml, concepts, chains) of a synthetic geography: `continents` + `countries` +
    one capital per country + `languages` concepts."""
    rng = random.Random(seed)
    names = Names(rng)
    seen: set[str] = set()

    def unique(make) -> str:
        """A definition no other concept has (a probe's distractors must differ from its answer)."""
        for _ in range(1000):
            text = make()
            if text not in seen:
                seen.add(text)
                return text
        raise ValueError("too few definition templates for this many concepts")

    conts = [Concept(slug(n), n, "continent", "") for n in (names.name(CONTINENT_ENDS) for _ in range(continents))]
    for i, c in enumerate(conts):
        size = rng.choice(["the largest", "one of the middle-sized", "among the smallest"])
        c.definition = (f"A landmass with {rng.choice(CLIMATES)} climate, {size} of the {continents} continents, "
                        f"lying {PLACES[i % len(PLACES)]} of the others.")
    langs = []
    for _ in range(languages):
        n = names.name(LANGUAGE_ENDS)
        fam = rng.choice(FAMILIES)
        lang = Concept(slug(n), n, "language", unique(lambda fam=fam: (
            f"{article(fam)} {fam} tongue written in {rng.choice(SCRIPTS)}, known for its {rng.choice(FEATURES)}.")))
        lang.relations.append({"predicate": "belongs to family", "value": f"the {fam} family"})
        langs.append(lang)
    continent_of: dict[str, Concept] = {}
    nations, cities = [], []
    by_continent: dict[str, list[Concept]] = {c.id: [] for c in conts}
    # each continent has its own pool of languages; a few spoken widely (a Zipf-like draw)
    pools = {c.id: langs[i::continents] for i, c in enumerate(conts)}
    capital_of: dict[str, Concept] = {}
    languages_of: dict[str, list[Concept]] = {}
    for i in range(countries):
        cont = conts[i % continents] if i < continents else rng.choice(conts)
        n = names.name(COUNTRY_ENDS)
        city_name = names.name(CITY_ENDS)
        city = Concept(slug(city_name), city_name, "city", "")
        country = Concept(slug(n), n, "country", unique(lambda cont=cont: (
            f"{with_article(rng.choice(TERRAINS))} state in {cont.term} whose economy rests on {rng.choice(ECONOMIES)}.")))
        if rng.random() < 0.2:
            country.aliases.append(f"Republic of {n}")
        city.definition = (f"The seat of government of {n}, built {rng.choice(CITY_SITES)} and home to "
                           f"{rng.choice(LANDMARKS)}.")
        pool = pools[cont.id]
        weights = [1 / (k + 1) for k in range(len(pool))]
        spoken = []
        for _ in range(rng.choices((1, 2, 3), (0.55, 0.35, 0.1))[0]):
            lang = rng.choices(pool, weights)[0]
            if lang not in spoken:
                spoken.append(lang)
        languages_of[country.id] = spoken
        city.relations.append({"predicate": "is located in", "object": country.id})
        country.relations.append({"predicate": "is located in", "object": cont.id})
        country.relations.append({"predicate": "has capital", "object": city.id})
        for lang in spoken:
            country.relations.append({"predicate": "has official language", "object": lang.id})
        if rng.random() < 0.3:
            city.relations[0]["text"] = f"{city_name} is the capital of {n}."
        continent_of[country.id], capital_of[country.id] = cont, city
        by_continent[cont.id].append(country)
        nations.append(country)
        cities.append(city)
    neighbours: dict[str, set[str]] = {c.id: set() for c in nations}

    def join(a: Concept, b: Concept) -> None:
        neighbours[a.id].add(b.id)
        neighbours[b.id].add(a.id)

    for members in by_continent.values():  # countries on a line with a few cross links: a planar-ish map
        mainland = [c for c in members if rng.random() > 0.1]  # the rest are islands
        for a, b in itertools.pairwise(mainland):
            join(a, b)
        for a in mainland:
            if rng.random() < 0.5:
                b = rng.choice(mainland)
                if b is not a:
                    join(a, b)
    for _ in range(max(1, countries // 25)):  # a few borders across continents
        a, b = rng.sample([c for c in nations if neighbours[c.id]], 2)
        if continent_of[a.id] is not continent_of[b.id]:
            join(a, b)
    by_id = {c.id: c for c in nations}
    for country in nations:
        for other in sorted(neighbours[country.id]):
            country.relations.append({"predicate": "borders", "object": other})
    concepts = conts + nations + cities + langs

    def first(c: Concept, predicate: str) -> str:
        return next(r["object"] for r in c.relations if r["predicate"] == predicate)

    titles = {  # chain patterns, each starting at a capital city: 2 hops (continent, language), else 3
        "continent": "On which continent a capital lies",
        "language": "A language spoken where a capital lies",
        "family": "The language family spoken where a capital lies",
        "neighbour-continent": "The continent of a capital's neighbour country",
        "neighbour-capital": "The capital of a capital's neighbour country",
    }
    chains = []
    order = list(range(countries))
    rng.shuffle(order)
    per_kind: dict[str, int] = dict.fromkeys(titles, 0)
    for i in order[: max(10, countries * 2 // 3)]:
        country, city = nations[i], cities[i]
        options = [k for k in titles if neighbours[country.id] or not k.startswith("neighbour")]
        kind = min(options, key=lambda k: (per_kind[k], rng.random()))  # every pattern about equally often
        per_kind[kind] += 1
        steps = [statement_id(city.id, "is located in", country.id)]
        lang = languages_of[country.id][0]
        if kind == "continent":
            steps.append(statement_id(country.id, "is located in", continent_of[country.id].id))
        elif kind in ("language", "family"):
            steps.append(statement_id(country.id, "has official language", lang.id))
            if kind == "family":
                steps.append(statement_id(lang.id, "belongs to family", lang.relations[0]["value"]))
        else:
            other = by_id[rng.choice(sorted(neighbours[country.id]))]
            steps.append(statement_id(country.id, "borders", other.id))
            steps.append(statement_id(other.id, "is located in", continent_of[other.id].id) if kind == "neighbour-continent"
                         else statement_id(other.id, "has capital", capital_of[other.id].id))
        chains.append({"id": f"{kind}-from-{city.id}", "title": f"{titles[kind]}: {city.term}",
                       "split": "test" if per_kind[kind] % 5 in (1, 2, 4) else "train", "steps": steps})
    config = {"name": "synthetic-geography",
              "description": (f"A synthetic geography (generated, seed {seed}): {continents} continents, {countries} "
                              f"countries with their capitals, {languages} languages; borders and official languages "
                              "are many-to-many."),
              "predicates": PREDICATES, "model": {"base": "tiny"}, "build": {"ngram": 8, "seed": 0}, "train": {},
              "test": {}}
    return config, concepts, chains


def dump(doc: dict, kind: str) -> str:
    return SCHEMA.format(kind=kind) + yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=110)


def write_geography(root: Path, seed: int = 0, **sizes: int) -> dict[str, int]:
    """Write the geography's pwd.yaml, concepts/<type>/ and chains/<split>/ under `root`
    (created if missing; a domain needs a git repo: `git init` or `git pwd init` it); returns its counts."""
    config, concepts, chains = geography(seed, **sizes)
    root.mkdir(parents=True, exist_ok=True)
    (root / "pwd.yaml").write_text(dump(config, "config"))
    for c in concepts:
        folder = root / "concepts" / FOLDERS[c.type]
        folder.mkdir(parents=True, exist_ok=True)
        doc = {"id": c.id, "term": c.term, "type": c.type, "aliases": c.aliases, "definition": c.definition,
               "source": {"doc": f"synthetic geography, seed {seed}"}, "relations": c.relations}
        (folder / f"{c.id}.yaml").write_text(dump(doc, "concept"))
    for ch in chains:
        folder = root / "chains" / ch["split"]
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{ch['id']}.yaml").write_text(dump(ch, "chain"))
    return {"concepts": len(concepts), "statements": sum(len(c.relations) for c in concepts), "chains": len(chains),
            "test_chains": sum(ch["split"] == "test" for ch in chains)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("directory", type=Path)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--countries", type=int, default=110)
    parser.add_argument("--languages", type=int, default=80)
    args = parser.parse_args()
    counts = write_geography(args.directory, args.seed, countries=args.countries, languages=args.languages)
    print(", ".join(f"{v} {k.replace('_', ' ')}" for k, v in counts.items()))


if __name__ == "__main__":
    main()
