"""One metrics grammar (pwd_git/metrics.py) for thresholds, bisect --metric and the schema."""

from __future__ import annotations

import json

import pytest

from pwd_git.errors import PwdError
from pwd_git.evaluate.verdict import judge
from pwd_git.metrics import PATTERN, Flags, Metric
from tests.conftest import run_cli
from tests.histories import make_history, record_results
from tests.test_bisect import hand_items_fail_from

ITEMS = [
    {"id": "aaaaaa111111", "level": "L1", "traces": {"concepts": ["wheel"], "statements": [], "chain": None}},
    {"id": "aaaaaa222222", "level": "L2", "traces": {"concepts": ["wheel", "bike"], "statements": ["s"], "chain": None}},
    {"id": "bbbbbb333333", "level": "L3", "traces": {"concepts": ["bike"], "statements": ["s"], "chain": "c1"}},
]
FLAGS = Flags({"aaaaaa111111": True, "aaaaaa222222": False, "bbbbbb333333": True},
              {"aaaaaa111111": False, "aaaaaa222222": False, "bbbbbb333333": True},
              {"control-1": True, "control-2": False})


def test_the_config_schema_uses_the_grammar():
    from pathlib import Path

    import pwd_git

    schema = json.loads((Path(pwd_git.__file__).parent / "schemas" / "config.schema.json").read_text())
    assert schema["properties"]["test"]["properties"]["thresholds"]["propertyNames"]["pattern"] == PATTERN


@pytest.mark.parametrize("name", ["acc", "acc_norm", "L1", "L3", "control", "concept:wheel", "chain:c1", "item:aaaaaa"])
def test_names_that_parse(name):
    assert Metric.parse(name).name == name


@pytest.mark.parametrize("name", ["accuracy", "L4", "concept:", "item:-x", "acc\n", "chain:a/b", "x" * 10_000])
def test_names_that_do_not(name):
    with pytest.raises(PwdError) as err:
        Metric.parse(name)
    assert len(err.value.message) < 200


def test_which_items_each_metric_counts():
    assert Metric("acc").flags(ITEMS, FLAGS) == dict(FLAGS.acc)
    assert Metric("acc_norm").flags(ITEMS, FLAGS) == dict(FLAGS.acc_norm)
    assert Metric("L2").flags(ITEMS, FLAGS) == {"aaaaaa222222": False}
    assert Metric("concept:wheel").flags(ITEMS, FLAGS) == {"aaaaaa111111": True, "aaaaaa222222": False}
    assert Metric("chain:c1").flags(ITEMS, FLAGS) == {"bbbbbb333333": True}
    assert Metric("item:bbbbbb").flags(ITEMS, FLAGS) == {"bbbbbb333333": True}
    assert Metric("item:bbbbb").flags(ITEMS, FLAGS) == {}  # a prefix needs six characters
    assert Metric("control").flags(ITEMS, FLAGS) == {"control-1": True, "control-2": False}
    assert Metric("acc_norm").flags(ITEMS, Flags(FLAGS.acc)) is None  # a line that did not keep them


def test_thresholds_on_item_acc_norm_and_control():
    metrics = {"acc": 0.67, "acc_norm": 0.33, "levels": {"L1": {"acc": 1.0, "n": 1}},
               "control": {"acc": 0.5, "n": 2}, "concepts": {}, "chains": {}}
    ok = judge(metrics, {"item:aaaaaa111111": 1.0, "acc_norm": 0.3, "control": 0.5}, passed_now=dict(FLAGS.acc))
    assert ok.ok, ok.threshold_failures
    bad = judge(metrics, {"item:aaaaaa222222": 1.0, "acc_norm": 0.5, "control": 0.6, "item:ffffff": 1.0},
                passed_now=dict(FLAGS.acc))
    assert sorted(f.split(" ")[0] for f in bad.threshold_failures) == ["acc_norm", "control", "item:aaaaaa222222",
                                                                        "item:ffffff"]


def test_bisect_judges_acc_norm_and_control_by_their_own_flags(tmp_path, monkeypatch):
    """acc_norm and control regress from commit 5 while acc never moves: bisect on acc_norm or
    control names commit 5; bisect on acc finds BAD no worse than GOOD."""
    monkeypatch.setenv("PWD_GIT_CACHE", str(tmp_path / "cache"))
    history = make_history(tmp_path / "d", 8, 5)
    hand = hand_items_fail_from(history, 5)
    record_results(history.root, history.commits, lambda c, i: False, fails_norm=hand,
                   control_fails=lambda c: 6 if c in history.commits[5:] else 0)
    for metric in ("acc_norm", "control"):
        res = run_cli("bisect", history.good, "main", "--metric", metric, "--threshold", "0.9", "--no-train",
                      "--format", "json", cwd=history.root)
        assert res.code == 0, res.output
        assert json.loads(res.out)["first_bad"]["commit"] == history.regression, metric
    res = run_cli("bisect", history.good, "main", "--metric", "acc", "--no-train", cwd=history.root)
    assert res.code != 0 and "first bad" not in res.out.lower(), res.output


def test_every_benchmark_template_has_a_family():
    """The record types name each benchmark template's family, so no code matches template
    prefixes: a new template without one fails here."""
    from pwd_git.build.templates import BENCH
    from pwd_git.records import FAMILIES

    assert set(FAMILIES) == set(BENCH)
