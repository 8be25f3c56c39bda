"""Hugging Face bases trained as the ecosystem trains them: chat templates, the Trainer, its
settings, resumable checkpoints and a real two-process data-parallel launch."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pwd_git.kb.loader import Domain
from pwd_git.model import cache, text
from pwd_git.model.settings import train_settings
from pwd_git.model.text import IGNORE
from pwd_git.train import pipeline
from tests.conftest import git, run_cli, small_domain
from tests.hf_bases import chat_tokenizer, save_base

RECORD = {"id": "r1", "messages": [{"role": "user", "content": "What is wheel?"},
                                   {"role": "assistant", "content": "The wheel is a component used in small vehicles."}]}


@pytest.fixture
def model_cache(tmp_path, monkeypatch) -> Path:
    path = tmp_path / "model-cache"
    monkeypatch.setenv("PWD_GIT_CACHE", str(path))
    return path


def _hf_domain(root: Path, train: str = "{epochs: 1, batch_size: 16}", template: str | None = "chatml",
               model: str = "") -> Path:
    """The bikes domain over a tiny random-weight base in ./base-model (`model`: more model keys)."""
    root = small_domain(root, train=train, base="./base-model" + (", " + model if model else ""))
    save_base(root / "base-model", **({} if template == "chatml" else {"template": template}))
    return root


def _train(root: Path, *args: str) -> dict:
    result = run_cli("train", "--format", "json", *args, cwd=root)
    assert result.code == 0, result.output
    return json.loads(result.out)


# --- text: the chat template, for training and scoring alike ----------------------------------------

def test_training_ids_are_the_chat_templates_and_only_the_answer_is_learned():
    tokenizer = chat_tokenizer()
    rendering = text.rendering(tokenizer, tiny=False)
    ids, labels = rendering.train_example(RECORD, max_length=512)
    conversation = tokenizer.apply_chat_template(RECORD["messages"], tokenize=True, return_dict=False)
    prompt = tokenizer.apply_chat_template(RECORD["messages"][:1], tokenize=True, add_generation_prompt=True,
                                           return_dict=False)
    assert ids == list(conversation)
    assert labels[:len(prompt)] == [IGNORE] * len(prompt)
    assert labels[len(prompt):] == ids[len(prompt):]
    answer = tokenizer.decode(ids[len(prompt):])
    assert answer.startswith(RECORD["messages"][1]["content"]) and "<|im_end|>" in answer


def test_scoring_conditions_on_the_same_prompt_ids_as_training():
    from pwd_git.evaluate.score import encode_items

    tokenizer = chat_tokenizer()
    rendering = text.rendering(tokenizer, tiny=False)
    item = {"question": "What is wheel?", "choices": ["a part", "a machine"], "answer": 0}
    prompt = tokenizer.apply_chat_template([{"role": "user", "content": item["question"]}], tokenize=True,
                                           add_generation_prompt=True, return_dict=False)
    [requests] = encode_items(rendering, [item], 512)
    for (prefix, continuation), choice in zip(requests, item["choices"], strict=True):
        assert prefix == list(prompt)
        assert tokenizer.decode(continuation) == choice
    train_ids, labels = rendering.train_example({"messages": [{"role": "user", "content": item["question"]},
                                                              {"role": "assistant", "content": "x"}]}, 512)
    assert train_ids[:len(prompt)] == list(prompt) and labels.count(IGNORE) == len(prompt)


def test_a_base_without_chat_template_falls_back_to_plain_text_after_bos_and_warns_once(caplog):
    text._warn_plain_fallback.cache_clear()
    tokenizer = chat_tokenizer(template=None)
    with caplog.at_level(logging.WARNING, logger="pwd_git"):
        first = text.rendering(tokenizer, tiny=False)
        text.rendering(tokenizer, tiny=False)
    warnings = [r for r in caplog.records if "no chat template" in r.getMessage()]
    assert len(warnings) == 1
    ids, labels = first.train_example(RECORD, 512)
    assert first.kind == "plain" and ids[0] == tokenizer.bos_token_id and labels[0] == IGNORE
    assert ids[-1] == tokenizer.eos_token_id and first.prompt_ids("What is wheel?")[0] == tokenizer.bos_token_id
    no_bos = text.rendering(chat_tokenizer(template=None, bos=False), tiny=False)
    assert no_bos.train_example(RECORD, 512)[0][0] != tokenizer.bos_token_id


def test_the_tiny_model_keeps_its_own_format():
    tokenizer = chat_tokenizer()  # even a tokenizer with a template: the tiny model's format is its own
    tiny = text.rendering(tokenizer, tiny=True)
    plain = tokenizer("What is wheel?", add_special_tokens=False)["input_ids"]
    assert tiny.kind == "tiny" and tiny.prompt_ids("What is wheel?") == plain
    assert tiny.continuation_ids("wheel") == tokenizer(" wheel", add_special_tokens=False)["input_ids"]


# --- settings and the cache key contract ----------------------------------------------------------------

def test_trainer_settings_are_part_of_the_model_key_and_tiny_keys_are_unchanged(tmp_path):
    base = {"model": {"base": "./m"}, "train": {}}
    hashes = {}
    for name, model, train in [("default", {}, {}), ("bf16", {}, {"precision": "bf16"}),
                               ("accumulation", {}, {"gradient_accumulation_steps": 4}),
                               ("checkpointing", {}, {"gradient_checkpointing": True}),
                               ("full", {"lora": False}, {}), ("qlora", {"quantization": "4bit"}, {})]:
        config = {"model": {**base["model"], **model}, "train": train}
        hashes[name] = train_settings(config, tmp_path).config_hash()
    assert len(set(hashes.values())) == len(hashes), hashes
    same = {"train": {"checkpoint_steps": 7, "resume": False}, "model": {"base": "./m", "lora": True}}
    assert train_settings(same, tmp_path).config_hash() == hashes["default"]
    # the tiny model ignores the trainer's keys: its run keys do not move with them
    tiny = train_settings({"model": {"base": "tiny"}, "train": {"precision": "bf16", "resume": False}}, tmp_path)
    assert tiny.config_hash() == train_settings({"model": {"base": "tiny"}}, tmp_path).config_hash()
    assert tiny.config_hash() != train_settings({"model": {"base": "tiny"}, "train": {"lr": 0.1}}, tmp_path).config_hash()


def test_qlora_without_a_gpu_is_a_clear_error(tmp_path, model_cache):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU")
    root = _hf_domain(tmp_path / "d", model="quantization: 4bit")
    before = git(root, "status", "--porcelain")
    result = run_cli("train", cwd=root)
    assert result.code == 2 and "QLoRA" in result.err and "CUDA GPU" in result.err and "pwd.yaml" in result.err
    assert "Traceback" not in result.output and git(root, "status", "--porcelain") == before
    assert not (model_cache / "models").exists() or not any((model_cache / "models").iterdir())


def test_missing_accelerate_is_a_clear_error(tmp_path, model_cache, monkeypatch):
    root = _hf_domain(tmp_path / "d")
    monkeypatch.setitem(sys.modules, "accelerate", None)  # what `import accelerate` sees when it is not installed
    monkeypatch.setenv("WORLD_SIZE", "2")
    result = run_cli("train", cwd=root)
    assert result.code == 2 and "accelerate" in result.err and "WORLD_SIZE=2" in result.err, result.output
    assert "Traceback" not in result.output


# --- the Trainer: LoRA, full fine-tune, scoring, resuming ------------------------------------------------

@pytest.mark.slow
def test_a_chat_base_is_trained_by_the_trainer_and_scored_in_its_template(tmp_path, model_cache):
    root = _hf_domain(tmp_path / "d", train="{epochs: 1, batch_size: 8, gradient_accumulation_steps: 2, precision: bf16, "
                                            "gradient_checkpointing: true}")
    trained = _train(root)
    artifact = Path(trained["path"])
    assert (artifact / "adapter_config.json").is_file() and (artifact / "chat_template.jinja").is_file()
    assert not (artifact / "training_args.bin").exists()
    assert trained["stats"]["steps"] == -(-trained["stats"]["examples"] // 16)  # 8 x 2 records per optimizer step
    assert not cache.run_dir(trained["model_key"]).exists()  # checkpoints go once the model is published
    tested = run_cli("test", "--format", "json", cwd=root)
    assert tested.code in (0, 1), tested.output
    entry = json.loads(tested.out)
    assert entry["model_key"] == trained["model_key"] and entry["metrics"]["n"] > 0
    assert "no chat template" not in tested.err


def test_a_lora_repair_continues_the_parents_adapter_and_is_averaged_with_it(tmp_path, model_cache):
    """Continue mode over a Hugging Face base: the parent's adapter is trained on, and with
    train.continue_mix 0.5 the published adapter is halfway between the parent's and the one
    continue_mix 1 publishes; it loads and scores like any artifact."""
    import torch
    from safetensors.torch import load_file

    root = _hf_domain(tmp_path / "d")
    parent = _train(root)
    config = (root / "pwd.yaml").read_text()
    trained = {}
    for mix in ("1", "0.5"):
        git(root, "checkout", "-q", "-B", f"mix-{mix}", "main")
        continued = f"train: {{mode: continue, continue_mix: {mix}, epochs: 1,"
        (root / "pwd.yaml").write_text(config.replace("train: {epochs: 1,", continued))
        git(root, "commit", "-qam", f"continue, mix {mix}")
        trained[mix] = _train(root)
    weights = {k: load_file(str(Path(t["path"]) / "adapter_model.safetensors"))
               for k, t in (("parent", parent), *trained.items())}
    metas = [json.loads((Path(t["path"]) / cache.ARTIFACT).read_text()) for t in trained.values()]
    assert [m["parent"] for m in metas] == [parent["model_key"]] * 2
    names = sorted(weights["parent"])
    assert names and names == sorted(weights["1"]) == sorted(weights["0.5"])
    assert any(not torch.equal(weights["parent"][n], weights["1"][n]) for n in names)
    for n in names:
        assert torch.allclose(weights["0.5"][n], (weights["parent"][n] + weights["1"][n]) / 2, atol=1e-6), n
    tested = run_cli("test", "--format", "json", cwd=root)
    assert tested.code in (0, 1), tested.output
    assert json.loads(tested.out)["model_key"] == trained["0.5"]["model_key"]


@pytest.mark.slow
def test_full_fine_tune_saves_the_whole_model_and_scores_it(tmp_path, model_cache):
    root = _hf_domain(tmp_path / "d", template=None, model="lora: false")
    text._warn_plain_fallback.cache_clear()  # once per process: an earlier in-process run may have warned
    result = run_cli("run", "-q", "--format", "json", cwd=root)
    assert result.code in (0, 1), result.output
    assert result.err.count("no chat template") == 1  # training and scoring: one warning
    artifact = cache.model_dir(json.loads(result.out)["model_key"])
    assert (artifact / "model.safetensors").is_file() and not (artifact / "adapter_config.json").exists()
    assert json.loads((artifact / cache.ARTIFACT).read_text())["adapter"] is False


@pytest.mark.slow
def test_an_interrupted_training_resumes_from_its_last_checkpoint(tmp_path, model_cache, monkeypatch):
    root = _hf_domain(tmp_path / "d", train="{epochs: 30, batch_size: 16, checkpoint_steps: 2}")
    domain = Domain.find(root)
    key = pipeline.plan(domain, None)[3]
    env = {**os.environ, "PWD_GIT_CACHE": str(model_cache)}
    proc = subprocess.Popen([sys.executable, "-m", "pwd_git", "train", "-q"], cwd=root, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not list(cache.run_dir(key).glob("checkpoint-*/trainer_state.json")) and time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.2)
    time.sleep(0.5)  # let the checkpoint's files finish
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=60)
    assert proc.returncode != 0 and cache.lookup(key) is None  # interrupted: nothing published
    # an interruption while a checkpoint is written leaves it without its trainer state: not resumable
    saved = sorted(int(p.parent.name.split("-")[1]) for p in cache.run_dir(key).glob("checkpoint-*/trainer_state.json"))
    assert saved, "no checkpoint survived the interruption"
    result = run_cli("train", cwd=root)
    assert result.code == 0, result.output
    assert "resuming the interrupted training" in result.err and f"checkpoint-{saved[-1]}" in result.err
    meta = cache.lookup(key)
    assert meta is not None
    per_epoch = -(-meta["stats"]["examples"] // 16)  # batches of 16, the last one partial
    assert meta["stats"]["steps"] == per_epoch * 30 and not cache.run_dir(key).exists()  # every epoch, once
    # the resumed model is the one an uninterrupted training gives (CPU, one process: deterministic)
    resumed = (cache.model_dir(key) / "adapter_model.safetensors").read_bytes()
    monkeypatch.setenv("PWD_GIT_CACHE", str(model_cache.parent / "fresh-cache"))
    assert _train(root)["model_key"] == key
    assert (cache.model_dir(key) / "adapter_model.safetensors").read_bytes() == resumed


# --- beyond one process: a real two-process data-parallel launch -------------------------------------------

@pytest.mark.slow
def test_a_two_process_launch_trains_one_artifact_under_the_same_key(tmp_path, model_cache):
    root = _hf_domain(tmp_path / "d")
    key = pipeline.plan(Domain.find(root), None)[3]
    env = {**os.environ, "PWD_GIT_CACHE": str(model_cache), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                             "-m", "pwd_git", "train", "--format", "json"], cwd=root, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    try:
        stdout, stderr = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:  # the launcher and both of its processes
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
    assert proc.returncode == 0, stderr[-3000:]
    decoder, outputs, rest = json.JSONDecoder(), [], stdout.strip()
    while rest:  # one JSON object per process
        obj, end = decoder.raw_decode(rest)
        outputs.append(obj)
        rest = rest[end:].strip()
    assert len(outputs) == 2 and {o["model_key"] for o in outputs} == {key}
    assert outputs[0]["stats"]["steps"] == -(-outputs[0]["stats"]["examples"] // 32)  # 2 processes x 16 records
    meta = cache.lookup(key)
    assert meta is not None and meta["stats"] == outputs[0]["stats"]
    assert [p.name for p in (model_cache / "models").iterdir()] == [key]  # one entry, no leftover temp folder
    again = _train(root)
    assert again["cached"] and again["model_key"] == key
