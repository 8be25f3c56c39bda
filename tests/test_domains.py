"""The generated geography (benchmarks/domains.py) is a valid domain of real-world shape: the
diagnosis benchmark's second domain must validate and build with the default settings."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from benchmarks.domains import write_geography
from pwd_git.kb.loader import Domain, load_worktree
from tests.conftest import git, run_cli


@pytest.fixture(scope="module")
def geography(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("geo") / "geo"
    git(root.parent, "init", "-q", str(root))
    write_geography(root, seed=3)
    return root


def test_same_seed_same_bytes_other_seed_other_kb(geography, tmp_path):
    write_geography(tmp_path / "again", seed=3)
    write_geography(tmp_path / "other", seed=4)
    mine = {p.relative_to(geography): p.read_bytes() for p in geography.rglob("*.yaml")}
    assert mine == {p.relative_to(tmp_path / "again"): p.read_bytes() for p in (tmp_path / "again").rglob("*.yaml")}
    assert mine != {p.relative_to(tmp_path / "other"): p.read_bytes() for p in (tmp_path / "other").rglob("*.yaml")}


def test_validates_and_builds_with_default_settings(geography):
    assert run_cli("validate", cwd=geography).code == 0
    built = run_cli("build", "-q", cwd=geography)
    assert built.code == 0, built.output
    assert (geography / "shards" / "bench" / "items.jsonl").stat().st_size > 0


def test_real_world_shape(geography):
    kb, _ = load_worktree(Domain.find(geography))
    assert len(kb.concepts) >= 300
    types = Counter(c.type for c in kb.concepts.values())
    assert set(types) == {"continent", "country", "city", "language"}
    per_subject = Counter((s.subject, s.predicate) for s in kb.statements.values())
    functional = {p for p in {s.predicate for s in kb.statements.values()} if kb.predicate_is_functional(p)}
    assert functional == {"is located in", "has capital", "belongs to family"}
    assert all(n == 1 for (_, p), n in per_subject.items() if p in functional)
    assert any(n > 1 for (_, p), n in per_subject.items() if p == "has official language")  # many-to-many
    borders = {(s.subject, s.object) for s in kb.statements.values() if s.predicate == "borders"}
    assert borders and all((b, a) in borders for a, b in borders)  # symmetric
    hops = Counter((c.split, len(c.steps)) for c in kb.chains.values())
    assert hops[("test", 2)] and hops[("test", 3)] and hops[("train", 2)] + hops[("train", 3)]
