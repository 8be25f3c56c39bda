"""One revision object (pwd_git/revision.py): a command loads a revision's KB once, and every
verb sees the same result for a commit through the one results store."""

from __future__ import annotations

import pytest

from pwd_git.kb import assemble
from tests.conftest import run_cli, small_domain


@pytest.fixture
def loads(monkeypatch):
    """Counts KB assemblies (the expensive part of a load: every load goes through it)."""
    counted = []
    real = assemble.assemble

    def counting(records, *args, **kwargs):
        counted.append(len(records))
        return real(records, *args, **kwargs)

    monkeypatch.setattr(assemble, "assemble", counting)
    return counted


@pytest.mark.parametrize("warm", [False, True], ids=["training", "model-cache-hit"])
def test_one_test_of_a_commit_loads_its_kb_once(tmp_path, monkeypatch, loads, warm):
    monkeypatch.setenv("PWD_GIT_CACHE", str(tmp_path / "cache"))
    root = small_domain(tmp_path / "d", train="{epochs: 1}")
    if warm:
        assert run_cli("test", "--rev", "HEAD", "--no-record", cwd=root).code in (0, 1)
    loads.clear()
    result = run_cli("test", "--rev", "HEAD", cwd=root)
    assert result.code in (0, 1), result.output
    assert len(loads) == 1, loads
