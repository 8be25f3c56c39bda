"""The model cache's edges: corrupt entries, a full disk, diverging training, what a base
model is (its content, not its spelling) and when a working-tree result is recorded on HEAD."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pwd_git import notes
from pwd_git.git import Repo
from pwd_git.model import base as model_base
from pwd_git.model import cache
from pwd_git.train import pipeline
from tests.conftest import PARTS, git, run_cli, small_domain


@pytest.fixture
def model_cache(tmp_path, monkeypatch) -> Path:
    path = tmp_path / "model-cache"
    monkeypatch.setenv("PWD_GIT_CACHE", str(path))
    return path


def _entries(model_cache: Path) -> list[str]:
    models = model_cache / "models"
    return sorted(p.name for p in models.iterdir()) if models.exists() else []


def _train(root: Path, *args: str) -> dict:
    result = run_cli(*args, "train", "--format", "json", cwd=root)
    assert result.code == 0, result.output
    return json.loads(result.out)


# --- corrupt entries are retrained -------------------------------------------------------------

def _artifact(model_cache: Path) -> Path:
    (entry,) = _entries(model_cache)
    return model_cache / "models" / entry / cache.ARTIFACT


def test_artifact_json_of_the_wrong_shape_is_retrained(tmp_path, model_cache):
    root = small_domain(tmp_path / "d", train="{epochs: 1}")
    key = _train(root)["model_key"]
    good = json.loads(_artifact(model_cache).read_text())
    wrong = {"a list": [1, 2],
             "no file hashes": {k: v for k, v in good.items() if k != "files"},
             "no base": {k: v for k, v in good.items() if k != "base"},
             "weights not listed": {**good, "files": {"config.json": good["files"]["config.json"]}}}
    for case, meta in wrong.items():
        _artifact(model_cache).write_text(json.dumps(meta))
        result = run_cli("test", "--no-record", "--format", "json", cwd=root)
        assert result.code == 0, (case, result.output)
        assert f"corrupt model cache entry {key[:12]}" in result.err and "retraining" in result.err, case
        assert json.loads(result.out)["model_key"] == key
        assert json.loads(_artifact(model_cache).read_text())["files"] == good["files"], case


def test_truncated_weights_are_retrained_even_when_their_hash_was_rewritten(tmp_path, model_cache):
    root = small_domain(tmp_path / "d", train="{epochs: 1}")
    key = _train(root)["model_key"]
    artifact = _artifact(model_cache)
    weights = artifact.parent / "model.safetensors"
    digest = hashlib.sha256(weights.read_bytes()).hexdigest()
    weights.write_bytes(weights.read_bytes()[:4])  # a truncated safetensors header
    meta = json.loads(artifact.read_text())
    meta["files"]["model.safetensors"] = hashlib.sha256(weights.read_bytes()).hexdigest()
    artifact.write_text(json.dumps(meta))
    result = run_cli("test", "--no-record", cwd=root)
    assert result.code == 0 and f"corrupt model cache entry {key[:12]}" in result.err, result.output
    assert hashlib.sha256(weights.read_bytes()).hexdigest() == digest


# --- a full disk ---------------------------------------------------------------------------------

def test_disk_full_in_the_weights_writer_is_one_clear_error_and_leaves_nothing(tmp_path, model_cache, monkeypatch):
    """safetensors reports a full disk as its own exception type, not as OSError."""
    from safetensors import SafetensorError

    root = small_domain(tmp_path / "d", train="{epochs: 1}")

    def full_disk(domain, shards, settings, records, parent, out, *_rest):
        (out / "config.json").write_text("{}")
        (out / "model.safetensors").write_bytes(b"half")
        raise SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)")

    monkeypatch.setattr(pipeline, "_fit", full_disk)
    result = run_cli("test", cwd=root)
    assert result.code == 2 and "internal error" not in result.err and "Traceback" not in result.output, result.output
    assert str(model_cache / "models") in result.err and "PWD_GIT_CACHE" in result.err
    assert _entries(model_cache) == []
    assert notes.read(Repo.discover(root), "HEAD") == []


def _can_mount_tmpfs() -> bool:
    if not shutil.which("unshare") or os.geteuid() != 0:
        return False
    probe = subprocess.run(["unshare", "-m", "sh", "-c", "mount -t tmpfs -o size=64k tmpfs /mnt"], capture_output=True)
    return probe.returncode == 0


@pytest.mark.skipif(not _can_mount_tmpfs(), reason="needs a private mount namespace to mount a tiny tmpfs")
def test_a_really_full_cache_disk_while_saving(tmp_path):
    """The real thing: the cache dir is a 128 KiB tmpfs, too small for the weights."""
    root = small_domain(tmp_path / "d", train="{epochs: 1}")
    mount = tmp_path / "tiny-disk"
    mount.mkdir()
    script = ('mount -t tmpfs -o size=128k tmpfs "$1" || exit 99; shift; "$@"; rc=$?; '
              'echo "left:"; find "$PWD_GIT_CACHE/models" -mindepth 1; exit $rc')
    env = {**os.environ, "PWD_GIT_CACHE": str(mount / "cache")}
    proc = subprocess.run(["unshare", "-m", "sh", "-c", script, "sh", str(mount), sys.executable, "-m", "pwd_git",
                           "train", "-q"], cwd=root, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert str(mount / "cache" / "models") in proc.stderr and "PWD_GIT_CACHE" in proc.stderr
    assert "Traceback" not in proc.stderr and "internal error" not in proc.stderr
    assert proc.stdout.split("left:")[1].strip() == ""


# --- diverging training ----------------------------------------------------------------------------

def test_a_diverging_training_fails_and_caches_nothing(tmp_path, model_cache):
    root = small_domain(tmp_path / "d", train="{epochs: 1, lr: 1.0e+9}")
    result = run_cli("test", cwd=root)
    assert result.code == 1, result.output
    assert "train.lr" in result.err and re.search(r"step \d+ of \d+", result.err) and "Traceback" not in result.output
    assert _entries(model_cache) == []
    assert notes.read(Repo.discover(root), "HEAD") == []


# --- what a base model is ---------------------------------------------------------------------------

def _save_hf_base(path: Path, seed: int) -> None:
    from pwd_git.model.tiny import build_model, train_tokenizer

    tokenizer = train_tokenizer(["a small vehicle has a wheel and a frame"] * 20 + list(PARTS), 300)
    build_model(tokenizer, {"n_layer": 1, "n_embd": 32, "n_head": 2}, seed=seed).save_pretrained(path)
    tokenizer.save_pretrained(path)


def test_a_local_base_is_keyed_by_its_content_and_resolved_against_the_domain_root(tmp_path, model_cache):
    root = small_domain(tmp_path / "d", train="{epochs: 1, batch_size: 16}", base="mdl/llama")
    _save_hf_base(root / "mdl" / "llama", seed=0)
    first = _train(root)
    assert not first["cached"]

    from_subdir = _train(root, "-C", "concepts")
    assert from_subdir["cached"] and from_subdir["model_key"] == first["model_key"]

    config = (root / "pwd.yaml").read_text()
    (root / "pwd.yaml").write_text(config.replace("base: mdl/llama", f"base: {root / 'mdl' / 'llama'}"))
    absolute = _train(root)
    assert absolute["cached"] and absolute["model_key"] == first["model_key"]
    (root / "pwd.yaml").write_text(config)

    tested = run_cli("test", "--format", "json", cwd=root)
    assert tested.code in (0, 1), tested.output
    _save_hf_base(root / "mdl" / "llama", seed=1)  # other random weights, same path
    retrained = _train(root)
    assert not retrained["cached"] and retrained["model_key"] != first["model_key"]
    again = run_cli("test", "--format", "json", cwd=root)
    assert "reusing" not in again.err
    assert json.loads(again.out)["run_key"] != json.loads(tested.out)["run_key"]


def test_base_file_hashes_are_remembered_by_stat(tmp_path, model_cache, monkeypatch):
    folder = tmp_path / "dom" / "m"
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    (folder / "model.safetensors").write_bytes(b"weights-1")
    for path in folder.iterdir():  # written a while ago: a fresh file is hashed on every call (racy stat)
        os.utime(path, ns=(1_000_000_000, 1_000_000_000))
    first = model_base.identity("m", tmp_path / "dom")
    assert first == model_base.identity(str(folder), tmp_path / "other")

    def no_reads(path):
        raise AssertionError(f"{path} was hashed again although its stat is unchanged")

    real = cache._sha256
    monkeypatch.setattr(cache, "_sha256", no_reads)
    assert model_base.identity("./m", tmp_path / "dom") == first
    monkeypatch.setattr(cache, "_sha256", real)
    (folder / "model.safetensors").write_bytes(b"weights-2")
    assert model_base.identity("m", tmp_path / "dom") != first


def test_a_hub_id_is_keyed_by_its_cached_snapshot(tmp_path, monkeypatch):
    import huggingface_hub.constants

    hub = tmp_path / "hub"
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(hub))
    assert model_base.identity("example-org/tiny-lm", tmp_path) == "hub:example-org/tiny-lm"
    repo = hub / "models--example-org--tiny-lm"
    for commit in ("a" * 40, "b" * 40):
        (repo / "snapshots" / commit).mkdir(parents=True)
        (repo / "snapshots" / commit / "config.json").write_text("{}")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("a" * 40)
    assert model_base.identity("example-org/tiny-lm", tmp_path) == f"hub:example-org/tiny-lm@{'a' * 40}"
    (repo / "refs" / "main").write_text("b" * 40)
    assert model_base.identity("example-org/tiny-lm", tmp_path) == f"hub:example-org/tiny-lm@{'b' * 40}"


# --- recording a working-tree result on HEAD ------------------------------------------------------

def test_an_uncommitted_train_change_is_not_recorded_on_head(tmp_path, model_cache):
    root = small_domain(tmp_path / "d", train="{epochs: 1}")
    committed = run_cli("test", "--format", "json", cwd=root)
    assert committed.code in (0, 1), committed.output
    head_run_key = json.loads(committed.out)["run_key"]
    (root / "pwd.yaml").write_text((root / "pwd.yaml").read_text().replace("epochs: 1", "epochs: 2"))
    result = run_cli("test", cwd=root)
    assert result.code in (0, 1), result.output
    assert "not recorded" in result.out and "train.epochs" in result.out
    entries = notes.read(Repo.discover(root), "HEAD")
    assert [e["run_key"] for e in entries] == [head_run_key]
    rows = json.loads(run_cli("log", "--format", "json", cwd=root).out)
    assert rows[0]["commit"] == git(root, "rev-parse", "HEAD") and rows[0]["result"]["run_key"] == head_run_key


# --- one training per key, across processes ------------------------------------------------------

def test_a_second_process_training_the_same_key_waits_and_reuses_the_model(tmp_path, model_cache):
    """Two real `git pwd train` processes of one model key (a diagnose's implicit training and a
    `train`, in the QA sweep): the second waits on the first's per-key lock, then uses its
    model; one training, one cache entry."""
    import time

    from pwd_git.kb.loader import Domain
    from pwd_git.lock import holder

    root = small_domain(tmp_path / "d", train="{epochs: 60}")  # a few seconds: long enough to overlap
    key = pipeline.plan(Domain.find(root), None)[3]
    lock = model_cache / "locks" / f"{key}.lock"
    command = [sys.executable, "-m", "pwd_git", "train", "--format", "json"]
    first = subprocess.Popen(command, cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while first.poll() is None and holder(lock) != first.pid and time.monotonic() < deadline:
        time.sleep(0.05)
    assert holder(lock) == first.pid, first.communicate()  # the first one is training
    second = subprocess.Popen(command[:-2], cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    (out1, err1), (out2, err2) = first.communicate(timeout=300), second.communicate(timeout=300)
    assert first.returncode == 0 and second.returncode == 0, err1 + err2
    assert json.loads(out1)["cached"] is False and f"model {key[:12]} (tiny, cache hit)" in out2, out2
    assert f"waiting for pid {first.pid}, which is training model {key[:12]}" in err2, err2
    assert "trained meanwhile by another process" in err2
    assert _entries(model_cache) == [key]  # one model, no second training's temporary folder
    assert holder(lock) is None  # released
