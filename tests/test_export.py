"""Prefix-shared batched scoring, `export model` and `export lm-eval` (run in lm-evaluation-harness)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from pwd_git.evaluate.score import encode_items, loglik_batched, loglik_one_by_one, score_items, split_request
from pwd_git.model.text import rendering as text_rendering
from tests.conftest import PARTS, git, run_cli, small_domain, snapshot

# --- scoring: batched and prefix-shared equals one at a time ------------------------------------------


def _random_models(vocab: int) -> dict:
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

    from pwd_git.model import quiet_transformers

    quiet_transformers()
    torch.manual_seed(0)
    return {"gpt2": GPT2LMHeadModel(GPT2Config(vocab_size=vocab, n_positions=128, n_embd=32, n_layer=2, n_head=2,
                                               bos_token_id=0, eos_token_id=0)),
            "llama": LlamaForCausalLM(LlamaConfig(vocab_size=vocab, hidden_size=32, intermediate_size=64,
                                                  num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                                                  max_position_embeddings=128, bos_token_id=0, eos_token_id=0))}


def _close(a: list[float], b: list[float]) -> bool:
    return len(a) == len(b) and all(abs(x - y) <= 1e-5 * max(1.0, abs(x)) for x, y in zip(a, b, strict=True))


def _edge_case_requests(vocab: int) -> list[tuple[list[int], list[int]]]:
    """Prompts of many lengths (heads of 0 tokens included), 1 to 9 choices of 1 to 12 tokens,
    choices that repeat or share all but their last token, and cuts to max_length that leave a
    single token of context or none."""
    rng = random.Random(0)
    out = []
    for n in range(70):
        ctx = [rng.randrange(vocab) for _ in range(rng.choice([0, 1, 2, 5, 17, 30]))]
        conts = [[rng.randrange(vocab) for _ in range(rng.choice([1, 1, 2, 3, 12]))] for _ in range(rng.randrange(1, 10))]
        conts += [conts[0], [*conts[0][:-1], (conts[0][-1] + 1) % vocab]]
        limit = [512, 12, 3, 2, 1][n % 5]
        out.extend(split_request(ctx, cont, limit) for cont in conts)
    return out


@pytest.mark.parametrize("arch", ["gpt2", "llama"])
def test_batched_prefix_shared_scores_equal_one_at_a_time(arch):
    """Padding (right, in heads and rows), the shared cache, shared rows and batch limits change
    no score: every batch size gives the one-at-a-time LLs within 1e-5 (relative)."""
    model = _random_models(64)[arch]
    requests = _edge_case_requests(64)
    assert any(not cont for _, cont in requests) and any(len(prefix) == 1 for prefix, _ in requests)
    reference = loglik_one_by_one(model, requests)
    for batch_size in (1, 3, 64, 1000):
        assert _close(reference, loglik_batched(model, requests, batch_size=batch_size, pad_id=5)), batch_size


def test_tiny_model_item_scores_equal_one_at_a_time():
    """The tiny model and its tokenizer on benchmark-shaped items: the same LLs as scoring each
    choice on its own, hence the same acc and acc_norm verdicts."""
    from pwd_git.model.tiny import build_model, train_tokenizer

    words = [p.replace("-", " ") for p in PARTS]
    tokenizer = train_tokenizer([f"the {w} is part of a small vehicle" for w in words] * 5, 200)
    model = build_model(tokenizer, {"n_layer": 1, "n_embd": 32, "n_head": 2})
    choices = ["a bicycle", "a wagon with a long frame and four wheels", "x"]
    items = [{"id": str(n), "question": f"Quiz. The {w} is part of", "answer": n % 3,
              "choices": [*choices, words[(n + 1) % len(words)]][: 2 + n % 3]} for n, w in enumerate(words)]
    requests = [req for reqs in encode_items(text_rendering(tokenizer, tiny=True), items, 512) for req in reqs]
    reference = loglik_one_by_one(model, requests)
    scores = score_items(model, tokenizer, items, batch_size=4)
    assert _close(reference, [ll for s in scores for ll in s.loglik])


# --- export model ------------------------------------------------------------------------------------


@pytest.fixture
def model_cache(tmp_path, monkeypatch) -> Path:
    path = tmp_path / "model-cache"
    monkeypatch.setenv("PWD_GIT_CACHE", str(path))
    return path


def test_export_of_a_commit_without_a_model_names_the_command_that_trains_it(tmp_path, model_cache):
    root = small_domain(tmp_path / "d")
    before = snapshot(root)
    result = run_cli("export", "model", str(tmp_path / "out"), "HEAD", cwd=root)
    assert result.code == 2, result.output
    assert "git pwd train --rev HEAD" in result.err and "Traceback" not in result.output
    assert not (tmp_path / "out").exists() and snapshot(root) == before
    assert not list(tmp_path.glob(".out.tmp-*"))


def test_export_refuses_a_folder_that_is_not_empty(tmp_path, model_cache):
    root = small_domain(tmp_path / "d")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("mine")
    for what in ("model", "lm-eval"):
        result = run_cli("export", what, str(tmp_path / "out"), cwd=root)
        assert result.code == 2 and "not an empty folder" in result.err, result.output
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["keep.txt"]


def test_a_lora_model_is_exported_merged_and_loads_as_a_plain_causal_lm(tmp_path, model_cache):
    """A LoRA adapter on a local HF base: the export is one standard folder (no adapter, no
    custom code) whose logits are the tool's base + adapter logits."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from pwd_git.kb.loader import Domain
    from pwd_git.model.tiny import build_model, train_tokenizer
    from pwd_git.train.pipeline import load_model, train

    root = small_domain(tmp_path / "d", train="{epochs: 1, batch_size: 16}", base="./base-model")
    tokenizer = train_tokenizer(["a small vehicle has a wheel and a frame"] * 20 + list(PARTS), 300)
    build_model(tokenizer, {"n_layer": 1, "n_embd": 32, "n_head": 2}).save_pretrained(root / "base-model")
    tokenizer.save_pretrained(root / "base-model")
    trained = train(Domain.find(root), "HEAD")
    result = run_cli("export", "model", str(tmp_path / "out"), "HEAD", "--format", "json", cwd=root)
    assert result.code == 0, result.output
    info = json.loads(result.out)
    assert info["merged"] is True and info["model_key"] == trained.key
    out = tmp_path / "out"
    assert (out / "model.safetensors").is_file() and not (out / "adapter_config.json").exists()
    assert "auto_map" not in json.loads((out / "config.json").read_text())
    exported = AutoModelForCausalLM.from_pretrained(out, local_files_only=True).eval()
    tool_model, _ = load_model(trained.path, trained.meta, Domain.find(root))
    ids = AutoTokenizer.from_pretrained(out)("Quiz. The spoke is part of the wheel", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        base_only = AutoModelForCausalLM.from_pretrained(root / "base-model")(input_ids=ids).logits
        assert torch.allclose(exported(input_ids=ids).logits, tool_model(input_ids=ids).logits, atol=1e-5)
        assert not torch.allclose(exported(input_ids=ids).logits, base_only, atol=1e-5)  # the adapter did something


def test_a_full_fine_tune_is_exported_as_it_is(tmp_path, model_cache):
    """`model.lora: false` trains every weight: there is no adapter to merge."""
    import torch
    from transformers import AutoModelForCausalLM

    from pwd_git.kb.loader import Domain
    from pwd_git.model.tiny import build_model, train_tokenizer
    from pwd_git.train.pipeline import load_model, train

    root = small_domain(tmp_path / "d", train="{epochs: 1, batch_size: 16}", base="./base-model, lora: false")
    tokenizer = train_tokenizer(["a small vehicle has a wheel and a frame"] * 20 + list(PARTS), 300)
    build_model(tokenizer, {"n_layer": 1, "n_embd": 32, "n_head": 2}).save_pretrained(root / "base-model")
    tokenizer.save_pretrained(root / "base-model")
    trained = train(Domain.find(root), "HEAD")
    assert trained.meta["adapter"] is False
    result = run_cli("export", "model", str(tmp_path / "out"), "HEAD", "--format", "json", cwd=root)
    assert result.code == 0, result.output
    assert json.loads(result.out)["merged"] is False
    exported = AutoModelForCausalLM.from_pretrained(tmp_path / "out", local_files_only=True).eval()
    tool_model, _ = load_model(trained.path, trained.meta, Domain.find(root))
    ids = torch.tensor([[1, 2, 3, 4]])
    with torch.no_grad():
        assert torch.allclose(exported(input_ids=ids).logits, tool_model(input_ids=ids).logits, atol=1e-5)


# --- export lm-eval: lm-evaluation-harness scores the exported tiny model as the tool does -------------


def test_lm_eval_on_the_exported_tiny_model_gets_the_tools_acc_and_acc_norm(trained_example, tmp_path, monkeypatch):
    lm_eval = pytest.importorskip("lm_eval")
    from lm_eval.tasks import TaskManager

    root, cache_dir = trained_example
    monkeypatch.setenv("PWD_GIT_CACHE", str(cache_dir))
    models, tasks = tmp_path / "model", tmp_path / "tasks"
    assert run_cli("export", "model", str(models), "HEAD", cwd=root).code == 0
    result = run_cli("export", "lm-eval", str(tasks), "HEAD", "--format", "json", cwd=root)
    assert result.code == 0, result.output
    info = json.loads(result.out)
    assert info["group"] == "pwd_cell_biology" and set(info["tasks"]) == {f"pwd_cell_biology_l{n}" for n in (1, 2, 3)}

    note = json.loads(git(root, "notes", "--ref", "refs/notes/pwd/results", "show", "HEAD").splitlines()[-1])
    items = [json.loads(line) for f in sorted((root / "shards" / "bench").glob("*.jsonl"))
             for line in f.read_text().splitlines()]
    expected = {}
    for level in ("L1", "L2", "L3"):
        ids = [i["id"] for i in items if i["level"] == level]
        expected[level] = (note["metrics"]["levels"][level]["acc"],
                           round(sum(i not in set(note["failed_norm"]) for i in ids) / len(ids), 4))

    out = lm_eval.simple_evaluate(model="hf", model_args={"pretrained": str(models)}, tasks=[info["group"]],
                                  task_manager=TaskManager(include_path=str(tasks)), device="cpu", batch_size=32)
    got = {level: (round(out["results"][f"pwd_cell_biology_{level.lower()}"]["acc,none"], 4),
                   round(out["results"][f"pwd_cell_biology_{level.lower()}"]["acc_norm,none"], 4))
           for level in ("L1", "L2", "L3")}
    assert got == expected
    assert round(out["results"]["pwd_cell_biology"]["acc,none"], 4) == note["metrics"]["acc"]
    assert round(out["results"]["pwd_cell_biology"]["acc_norm,none"], 4) == note["metrics"]["acc_norm"]
