"""`train`, `test`, `run`, `log`, `show`: the tiny model, the cache, scoring, verdicts, notes."""

from __future__ import annotations

import errno
import hashlib
import json
import re
import shutil
import threading
from pathlib import Path

import pytest

from pwd_git import notes
from pwd_git.evaluate.verdict import judge, mcnemar_p
from pwd_git.git import Repo
from pwd_git.kb.loader import Domain
from pwd_git.model import cache
from pwd_git.train import pipeline
from tests.conftest import PARTS, git, run_cli, small_domain


@pytest.fixture
def model_cache(tmp_path, monkeypatch) -> Path:
    path = tmp_path / "model-cache"
    monkeypatch.setenv("PWD_GIT_CACHE", str(path))
    return path


def _weights_digest(result: pipeline.TrainResult) -> str:
    return hashlib.sha256((result.path / "model.safetensors").read_bytes()).hexdigest()


# --- the example domain: the tiny model really learns --------------------------------------

def test_example_run_records_a_note_with_the_contract_fields(trained_example):
    root, _ = trained_example
    raw = git(root, "notes", "--ref", notes.NOTES_REF, "show", "HEAD")
    entry = json.loads(raw.splitlines()[-1])
    for field in ("schema", "time", "run_key", "kb_tree", "shards_hash", "metrics", "failed", "verdict"):
        assert field in entry
    assert entry["commit"] == git(root, "rev-parse", "HEAD")
    assert set(entry["metrics"]["levels"]) == {"L1", "L2", "L3"}
    # the template's shipped control set is scored on every run (issue 16)
    assert entry["metrics"]["control"]["n"] == len(entry["control_items"]) >= 40


def test_tiny_model_learns_the_training_facts(trained_example, monkeypatch):
    """L2 probe accuracy after training is well above chance (0.25) and above an untrained model's."""
    root, model_cache_dir = trained_example
    monkeypatch.setenv("PWD_GIT_CACHE", str(model_cache_dir))
    entry = notes.read(Repo.discover(root), "HEAD")[-1]
    probe_acc = entry["metrics"]["levels"]["L2"]["acc"]
    assert probe_acc >= 0.5, entry["metrics"]["levels"]

    from pwd_git.evaluate.score import score_items
    from pwd_git.model.tiny import build_model

    domain = Domain.find(root)
    trained = pipeline.train(domain)
    assert trained.cached
    _, tokenizer = pipeline.load_model(trained.path, trained.meta, domain)
    untrained = build_model(tokenizer, {}, seed=1)
    probes = [i for i in pipeline.shards_for(domain, None).records("bench") if i["level"] == "L2"]
    untrained_acc = sum(s.correct for s in score_items(untrained, tokenizer, probes)) / len(probes)
    assert probe_acc >= untrained_acc + 0.2, (probe_acc, untrained_acc)


def test_log_and_show_read_the_notes(trained_example, monkeypatch):
    root, model_cache_dir = trained_example
    monkeypatch.setenv("PWD_GIT_CACHE", str(model_cache_dir))
    shown = run_cli("show", cwd=root)
    assert shown.code == 0 and "L2:" in shown.out and "failed items" in shown.out
    table = run_cli("log", "--format", "json", cwd=root)
    rows = json.loads(table.out)
    assert rows[0]["commit"] == git(root, "rev-parse", "HEAD") and rows[0]["result"]["metrics"]["n"] > 50


# --- training: determinism, cache, interruption ----------------------------------------------

def test_two_trainings_give_identical_weights(tmp_path, monkeypatch):
    root = small_domain(tmp_path / "d")
    digests = []
    for name in ("c1", "c2"):
        monkeypatch.setenv("PWD_GIT_CACHE", str(tmp_path / name))
        digests.append(_weights_digest(pipeline.train(Domain.find(root))))
    assert digests[0] == digests[1]


def _trained_order(encoded, texts, seed=0, epoch=0) -> list[int]:
    """The records (encoded as [i, i, i]) in the order one epoch trains them."""
    from pwd_git.train.loop import batches

    return [row[0] for ids, _, _ in batches(encoded, texts, 4, 0, seed, epoch) for row in ids.tolist()]


def test_removing_a_record_keeps_the_training_order_of_the_others():
    """A one-statement edit removes a few records: the rest must be trained in the same order
    (one shared shuffle re-rolled the whole epoch, so an unrelated item's verdict flipped by chance)."""
    encoded = [([i] * 3, [i] * 3) for i in range(1, 101)]
    texts = [f"record {i}" for i in range(1, 101)]
    order = _trained_order(encoded, texts)
    assert sorted(order) == list(range(1, 101)) and order != sorted(order)
    for gone in (0, 37, 99):
        rest = _trained_order(encoded[:gone] + encoded[gone + 1:], texts[:gone] + texts[gone + 1:])
        assert rest == [i for i in order if i != gone + 1]
    assert _trained_order(encoded, texts, epoch=1) != order and _trained_order(encoded, texts, seed=1) != order


def test_a_token_keeps_its_initial_embedding_when_the_vocabulary_shifts():
    """Removing text changes the BPE merges, so a token's id moves: its initial embedding, and
    every other initial weight, must not (drawn from one stream, all of them were re-rolled)."""
    from pwd_git.model.tiny import build_model, train_tokenizer

    texts = [f"the {p} is part of the bike" for p in PARTS] * 3 + ["a tandem has two saddles and a chain"] * 2
    before, after = train_tokenizer(texts, 400), train_tokenizer(texts[:-2], 400)
    shared = sorted(set(before.get_vocab()) & set(after.get_vocab()))
    moved = [t for t in shared if before.get_vocab()[t] != after.get_vocab()[t]]
    assert moved and len(before) != len(after)  # the edit really shifts ids and the vocabulary size
    arch = {"n_layer": 1, "n_embd": 32, "n_head": 2}
    one, two = build_model(before, arch, seed=3), build_model(after, arch, seed=3)
    rows_one, rows_two = one.get_input_embeddings().weight, two.get_input_embeddings().weight
    for token in shared:
        assert rows_one[before.get_vocab()[token]].equal(rows_two[after.get_vocab()[token]]), token
    layers = {n: p for n, p in one.named_parameters() if "embed" not in n}
    assert all(p.equal(layers[n]) for n, p in two.named_parameters() if "embed" not in n)
    other = build_model(before, arch, seed=4).get_input_embeddings().weight
    assert not other.equal(rows_one)


def test_prefix_noise_goes_before_the_prompt_and_is_never_learned():
    from pwd_git.train.loop import IGNORE, NOISE_TOKENS, with_prefix_noise

    encoded = [([1, 2, 3, 4], [IGNORE, IGNORE, 3, 4]) for _ in range(400)]
    texts = [f"record {i}" for i in range(400)]
    pool = [50, 51, 52]
    noised = with_prefix_noise(encoded, texts, 0.5, pool, seed=0, epoch=0, max_length=64)
    grown = [(ids, labels) for ids, labels in noised if len(ids) > 4]
    assert 150 < len(grown) < 250
    for ids, labels in grown:
        k = len(ids) - 4
        assert 1 <= k <= NOISE_TOKENS and set(ids[:k]) <= set(pool) and ids[k:] == [1, 2, 3, 4]
        assert labels == [IGNORE] * k + [IGNORE, IGNORE, 3, 4]
    # a record's noise is its own: the same without its neighbours, new in the next epoch
    assert with_prefix_noise(encoded[7:9], texts[7:9], 0.5, pool, 0, 0, 64) == noised[7:9]
    assert with_prefix_noise(encoded, texts, 0.5, pool, 0, 1, 64) != noised
    assert with_prefix_noise(encoded, texts, 0.5, pool, 0, 0, 4) == encoded  # never past max_length


def test_a_new_training_recipe_gets_new_model_and_run_keys(tmp_path, monkeypatch):
    """Models and results trained by an older loop or init are not reused for equal settings."""
    from pwd_git.model import settings as settings_module

    config = {"model": {"base": "tiny"}, "train": {"epochs": 2}}
    settings = settings_module.train_settings(config, tmp_path)
    shards = pipeline.Shards(tmp_path, {"files": {}}, config, None)
    before = settings_module.run_key(settings), pipeline.model_key(shards, settings)
    monkeypatch.setattr(settings_module, "TRAINING_RECIPE", settings_module.TRAINING_RECIPE + 1)
    after = settings_module.run_key(settings), pipeline.model_key(shards, settings)
    assert after[0] != before[0] and after[1] != before[1]


def test_the_tiny_models_default_epochs_follow_the_training_set_and_keep_the_run_key(tmp_path, model_cache):
    """40 passes over a small KB, about 80k records seen over a large one (6k records: 14
    passes, which recalled more than 40 did), never under 12; continue mode a quarter of
    that. pwd.yaml's own `epochs` is kept. The run key holds "auto", so it does not move as the
    KB grows; the trained model says how many passes it made."""
    from pwd_git.model import settings as settings_module

    auto = settings_module.train_settings({"model": {"base": "tiny"}}, tmp_path)
    assert auto.epochs is None
    assert [(s.epochs, s.continue_epochs) for s in map(auto.for_records, (40, 822, 2000, 5917, 10431, 10**6))] == [
        (40, 10), (40, 10), (40, 10), (14, 4), (12, 3), (12, 3)]
    fixed = settings_module.train_settings({"train": {"epochs": 7, "continue_epochs": 5}}, tmp_path)
    assert (fixed.for_records(5917).epochs, fixed.for_records(5917).continue_epochs) == (7, 5)
    assert settings_module.train_settings({"train": {"epochs": 7}}, tmp_path).for_records(10**6).continue_epochs == 2
    assert settings_module.run_key(auto) != settings_module.run_key(auto.for_records(822)), "the key says auto"
    spelled = settings_module.train_settings({"model": {"base": "tiny"}, "train": {"epochs": "auto"}}, tmp_path)
    assert settings_module.run_key(spelled) == settings_module.run_key(auto)
    for config in ({"model": {"base": "Qwen/Qwen2-0.5B"}}, {"model": {"base": "Qwen/Qwen2-0.5B"}, "train": {"epochs": "auto"}}):
        hf = settings_module.train_settings(config, tmp_path)
        assert hf.for_records(10**6).epochs == 3  # a Hugging Face base keeps its fixed default
    domain = Domain.find(small_domain(tmp_path / "d", train="{epochs: auto}"))
    result = pipeline.train(domain)
    assert result.meta["stats"]["epochs"] == 40, result.meta
    (domain.root / "pwd.yaml").write_text((domain.root / "pwd.yaml").read_text().replace("epochs: auto", "epochs: many"))
    bad = run_cli("validate", cwd=domain.root)
    assert bad.code == 1 and "pwd.yaml:3:" in bad.out, bad.out


def test_cache_hit_then_corruption_is_detected_and_retrained(tmp_path, model_cache):
    domain = Domain.find(small_domain(tmp_path / "d"))
    first = pipeline.train(domain)
    assert not first.cached
    second = run_cli("train", "--format", "json", cwd=domain.root)
    assert json.loads(second.out)["cached"] is True
    weights = first.path / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-8] + b"corrupt!")
    again = run_cli("train", "--format", "json", cwd=domain.root)
    assert json.loads(again.out)["cached"] is False
    assert "corrupt model cache entry" in again.err
    assert _weights_digest(pipeline.train(domain)) == json.loads((first.path / "ARTIFACT.json").read_text())["files"][
        "model.safetensors"]


def test_ctrl_c_during_training_leaves_no_artifact(tmp_path, model_cache):
    domain = Domain.find(small_domain(tmp_path / "d"))

    def interrupt(step, total, loss):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        pipeline.train(domain, on_step=interrupt)
    assert not any((model_cache / "models").iterdir())


def test_disk_full_while_saving_leaves_no_cache_entry(tmp_path, model_cache, monkeypatch):
    domain = Domain.find(small_domain(tmp_path / "d"))

    def full_disk(domain, shards, settings, records, parent, out, *_rest):
        (out / "model.safetensors").write_bytes(b"half")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(pipeline, "_fit", full_disk)
    result = run_cli("train", cwd=domain.root)
    assert result.code == 2 and "disk full" in result.err and "Traceback" not in result.output
    assert not any((model_cache / "models").iterdir())


def test_stale_shards_are_refused_with_the_fix(tmp_path, model_cache):
    root = small_domain(tmp_path / "d")
    path = root / "concepts/machines/wagon.yaml"
    path.write_text(path.read_text().replace("human-powered", "four-wheeled"))
    result = run_cli("train", cwd=root)
    assert result.code == 1 and "git pwd build" in result.err
    assert not (model_cache / "models").exists() or not any((model_cache / "models").iterdir())


def test_missing_model_path_is_a_clear_error(tmp_path, model_cache):
    root = small_domain(tmp_path / "d", base="./no-such-model")
    result = run_cli("train", cwd=root)
    assert result.code == 2 and "does not exist" in result.err and "Traceback" not in result.output


def test_uncached_hub_id_says_what_to_download(tmp_path, model_cache):
    root = small_domain(tmp_path / "d", base="example-org/not-a-cached-model")
    result = run_cli("train", cwd=root)
    assert result.code == 2
    assert "never downloads" in result.err and "`hf download example-org/not-a-cached-model`" in result.err


def test_hugging_face_base_is_trained_with_lora(tmp_path, model_cache):
    """A local HF model folder as model.base: peft LoRA adapters are trained and scored."""
    from pwd_git.model.tiny import build_model, train_tokenizer

    base_dir = tmp_path / "d" / "base-model"
    tokenizer = train_tokenizer(["a small vehicle has a wheel and a frame"] * 20 + [p for p in PARTS], 300)
    model = build_model(tokenizer, {"n_layer": 1, "n_embd": 32, "n_head": 2})
    root = small_domain(tmp_path / "d", train="{epochs: 1, batch_size: 16}", base="./base-model")
    model.save_pretrained(base_dir)
    tokenizer.save_pretrained(base_dir)
    result = run_cli("run", "-q", "--format", "json", cwd=root)
    assert result.code in (0, 1), result.output
    entry = json.loads(result.out)
    assert entry["base"] == "./base-model" and entry["metrics"]["n"] > 0
    artifact = cache.model_dir(entry["model_key"])
    assert (artifact / "adapter_config.json").is_file()
    assert json.loads((artifact / "adapter_config.json").read_text())["r"] == 16


def test_a_continue_mode_fine_tune_is_averaged_with_its_parent_in_weight_space(tmp_path, model_cache):
    """train.continue_mix w: the published weights are parent + w * (fine-tune - parent), the
    same fine-tune a continue_mix of 1 publishes as it is (train/mix.py)."""
    import torch
    from safetensors.torch import load_file

    root = small_domain(tmp_path / "bikes")
    domain = Domain.find(root)
    parent = pipeline.train(domain, "HEAD")

    def fine_tune(mix: str) -> pipeline.TrainResult:
        git(root, "checkout", "-q", "-B", f"mix-{mix}", "main")
        config = (root / "pwd.yaml").read_text()
        (root / "pwd.yaml").write_text(config.replace("train: {epochs: 2}",
                                                      f"train: {{epochs: 2, mode: continue, continue_mix: {mix}}}"))
        git(root, "commit", "-qam", f"continue, mix {mix}")
        return pipeline.train(domain, "HEAD")

    whole, half = fine_tune("1"), fine_tune("0.5")
    assert whole.meta["parent"] == half.meta["parent"] == parent.key and whole.key != half.key
    start, end, mixed = (load_file(str(r.path / "model.safetensors")) for r in (parent, whole, half))
    floats = [n for n, t in start.items() if t.is_floating_point()]
    assert half.meta["stats"]["mixed_tensors"] == len(floats) and "mixed_tensors" not in whole.meta["stats"]
    assert any(not torch.equal(start[n], end[n]) for n in floats)  # the fine-tune moved the weights
    for name in floats:
        assert torch.allclose(mixed[name], (start[name] + end[name]) / 2, atol=1e-6), name


# --- test: verdicts, reuse, notes --------------------------------------------------------------

def test_thresholds_decide_the_exit_code(tmp_path, model_cache):
    root = small_domain(tmp_path / "d", test="{thresholds: {acc: 1.0, L1: 1.0}}")
    result = run_cli("run", cwd=root)
    metrics = notes.read(Repo.discover(root), "HEAD")[-1]["metrics"]
    below = metrics["acc"] < 1.0 or metrics["levels"]["L1"]["acc"] < 1.0
    assert result.code == (1 if below else 0), result.output
    assert ("below the threshold" in result.out) == below and ("FAIL" in result.out) == below
    config = (root / "pwd.yaml").read_text()
    (root / "pwd.yaml").write_text(config.replace("{acc: 1.0, L1: 1.0}", '{acc: 0.0, "concept:wheel": 0.0}'))
    assert run_cli("test", "--no-record", cwd=root).code == 0


def test_a_threshold_that_measures_nothing_fails(tmp_path, model_cache):
    """A misspelt concept id must not make a threshold pass silently."""
    root = small_domain(tmp_path / "d", test='{thresholds: {acc: 0.0, "concept:wheeel": 0.5}}')
    result = run_cli("run", cwd=root)
    assert result.code == 1 and "concept:wheeel measures no benchmark items" in result.out, result.output


def test_a_threshold_on_an_unknown_metric_is_a_config_error(tmp_path, model_cache):
    root = small_domain(tmp_path / "d")
    config = (root / "pwd.yaml").read_text().replace("test: {}", "test: {thresholds: {accuracy: 0.5}}")
    (root / "pwd.yaml").write_text(config)
    before = git(root, "status", "--porcelain")
    result = run_cli("test", cwd=root)
    assert result.code == 1 and "pwd.yaml:4" in result.err and "accuracy" in result.err, result.output
    assert "Traceback" not in result.output and git(root, "status", "--porcelain") == before


def test_result_is_reused_for_a_commit_with_the_same_kb_tree(tmp_path, model_cache):
    root = small_domain(tmp_path / "d")
    assert run_cli("run", "-q", cwd=root).code in (0, 1)
    first = git(root, "rev-parse", "HEAD")
    (root / "README.md").write_text("docs only\n")
    git(root, "add", "README.md")
    git(root, "commit", "-qm", "docs")
    result = run_cli("test", cwd=root)
    assert "reusing the result recorded on" in result.err
    entry = notes.read(Repo.discover(root), "HEAD")[-1]
    assert entry["reused_from"] == first
    rows = json.loads(run_cli("log", "--format", "json", cwd=root).out)
    assert [r["result"] is not None for r in rows] == [True, True]
    # the baseline's result read back is said to be the baseline's, not this commit's
    (root / "README.md").write_text("docs again\n")
    git(root, "commit", "-qam", "docs again")
    result = run_cli("test", "--baseline", first, cwd=root)
    assert f"baseline: reusing the result recorded on {first[:10]}" in result.err, result.output


def test_note_from_a_newer_schema_is_read_with_a_warning(tmp_path, model_cache):
    root = small_domain(tmp_path / "d")
    line = json.dumps({"schema": 99, "run_key": "future", "metrics": {"acc": 0.5, "levels": {}}, "verdict": "pass",
                       "hologram": True})
    git(root, "notes", "--ref", notes.NOTES_REF, "add", "-m", line, "HEAD")
    result = run_cli("show", cwd=root)
    assert result.code == 0 and "newer pwd-git" in result.err and "future" in result.out


def test_control_set_is_scored_separately(tmp_path, model_cache):
    root = small_domain(tmp_path / "d", test="{control: control.jsonl}")
    (root / "control.jsonl").write_text(
        json.dumps({"question": "The sky on a clear day is", "choices": ["blue", "green"], "answer": 0}) + "\n")
    result = run_cli("test", "--format", "json", "--no-record", cwd=root)
    control = json.loads(result.out)["metrics"]["control"]
    assert control["n"] == 1 and control["acc"] in (0.0, 1.0)
    (root / "control.jsonl").write_text("{not json\n")
    bad = run_cli("test", "--no-record", cwd=root)
    assert bad.code == 1 and "control.jsonl:1" in bad.err


def test_mcnemar_separates_noise_from_regression():
    assert mcnemar_p(0, 0) == 1.0
    assert mcnemar_p(1, 0) == 0.5
    assert mcnemar_p(6, 0) == pytest.approx(1 / 64)
    before = {f"i{k}": True for k in range(40)}
    one_wobble = {**before, "i0": False}
    assert judge({"acc": 0.97}, {}, passed_now=one_wobble, passed_before=before).ok
    many_broken = {**before, **{f"i{k}": False for k in range(8)}}
    verdict = judge({"acc": 0.8}, {}, passed_now=many_broken, passed_before=before)
    assert not verdict.ok and len(verdict.regressed_items) == 8 and verdict.p_value < 0.05
    swapped = {**many_broken, **{f"j{k}": True for k in range(8)}}
    balanced_before = {**before, **{f"j{k}": False for k in range(8)}}
    assert judge({"acc": 0.8}, {}, passed_now=swapped, passed_before=balanced_before).ok


def test_two_clones_push_results_for_one_commit_concurrently_without_loss(tmp_path):
    origin = tmp_path / "origin.git"
    seed = small_domain(tmp_path / "seed", train="{epochs: 1}")
    git(tmp_path, "clone", "-q", "--bare", str(seed), str(origin))
    clones = []
    for name in ("a", "b"):
        git(tmp_path, "clone", "-q", str(origin), str(tmp_path / name))
        repo = Repo.discover(tmp_path / name)
        notes.setup(repo)
        clones.append(repo)
    commit = git(tmp_path / "a", "rev-parse", "HEAD")
    for i, repo in enumerate(clones):
        notes.append(repo, commit, {"run_key": f"clone-{i}", "metrics": {"acc": i / 2}})
    errors = []

    def push(repo):
        try:
            notes.push(repo, retries=10)
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=push, args=(repo,)) for repo in clones]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    final = git(tmp_path, "--git-dir", str(origin), "notes", "--ref", notes.NOTES_REF, "show", commit)
    keys = sorted(json.loads(line)["run_key"] for line in final.splitlines())
    assert keys == ["clone-0", "clone-1"]
    notes.pull(clones[0])
    assert sorted(e["run_key"] for e in notes.read(clones[0], commit)) == ["clone-0", "clone-1"]


def test_notes_push_without_remote_is_a_clear_error(tmp_path):
    root = small_domain(tmp_path / "d")
    result = run_cli("notes", "push", cwd=root)
    assert result.code == 2 and "no remote named 'origin'" in result.err
    shutil.rmtree(root)


def test_diagnose_of_an_untested_commit_shows_the_training_progress(tmp_path, model_cache):
    """diagnose runs the tests first when REV has no result: it trains with the progress lines
    `train` and `test` show (stderr), and none with --format json."""
    root = small_domain(tmp_path / "d")
    res = run_cli("diagnose", cwd=root)
    assert res.code in (0, 1), res.output
    assert "running the tests first" in res.err and "train: step 1/" in res.err, res.err
    assert re.search(r"^train: step (\d+)/\1 \(100%\)", res.err, re.M), res.err
    (root / "pwd.yaml").write_text((root / "pwd.yaml").read_text().replace("epochs: 2", "epochs: 1"))
    git(root, "commit", "-qam", "one epoch")  # a new model key: trains again
    quiet = run_cli("diagnose", "--format", "json", cwd=root)
    assert quiet.code in (0, 1) and json.loads(quiet.out)["commit"], quiet.output
    assert "train:" not in quiet.err and len(list((model_cache / "models").iterdir())) == 2, quiet.err


def test_patch_of_an_untested_commit_shows_the_training_progress(tmp_path, model_cache):
    """patch diagnoses first, and the diagnosis of an untested commit trains: with the same
    progress lines as `diagnose`, not minutes of silence."""
    root = small_domain(tmp_path / "d")
    (root / "pwd.yaml").write_text((root / "pwd.yaml").read_text().replace("epochs: 2", "epochs: 3"))
    git(root, "commit", "-qam", "three epochs")  # a model key no other test trains
    res = run_cli("patch", "--dry-run", cwd=root)
    assert res.code in (0, 1) and "Traceback" not in res.err, res.output
    assert "running the tests first" in res.err and "train: step 1/" in res.err, res.err
    assert re.search(r"^train: step (\d+)/\1 \(100%\)", res.err, re.M), res.err
