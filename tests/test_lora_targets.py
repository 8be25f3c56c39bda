"""A LoRA target that matches nothing in the base model is a pwd.yaml error, not an internal one."""

from __future__ import annotations

from tests.conftest import PARTS, git, run_cli, small_domain


def test_a_lora_target_matching_no_module_is_a_config_error_listing_candidates(tmp_path, monkeypatch):
    from pwd_git.model.tiny import build_model, train_tokenizer

    cache_dir = tmp_path / "model-cache"
    monkeypatch.setenv("PWD_GIT_CACHE", str(cache_dir))
    root = small_domain(tmp_path / "d", train="{epochs: 1}", base="./base-model, lora: {target_modules: [no_such_proj]}")
    tokenizer = train_tokenizer(["a small vehicle has a wheel and a frame"] * 20 + PARTS, 300)
    build_model(tokenizer, {"n_layer": 1, "n_embd": 32, "n_head": 2}).save_pretrained(root / "base-model")
    tokenizer.save_pretrained(root / "base-model")
    before = git(root, "status", "--porcelain")
    result = run_cli("train", cwd=root)
    assert result.code == 2, result.output
    assert "pwd.yaml" in result.err and "model.lora.target_modules" in result.err and "no_such_proj" in result.err
    assert "q_proj" in result.err and "down_proj" in result.err  # the base model's own module names
    assert "internal error" not in result.err and "Traceback" not in result.output
    assert git(root, "status", "--porcelain") == before
    assert not (cache_dir / "models").exists() or not any((cache_dir / "models").iterdir())


def test_a_lora_target_regex_matching_no_module_is_refused_too(tmp_path):
    from pwd_git.errors import PwdError
    from pwd_git.model.base import check_lora_targets
    from pwd_git.model.tiny import build_model, train_tokenizer

    model = build_model(train_tokenizer(["a wheel and a frame"] * 20, 300), {"n_layer": 1, "n_embd": 32, "n_head": 2})
    check_lora_targets(model, r".*\.(q_proj|v_proj)")  # matches: no error
    check_lora_targets(model, ["q_proj", "not_there"])  # one matches: peft accepts it, so do we
    try:
        check_lora_targets(model, r".*\.qkv")
    except PwdError as exc:
        assert "model.lora.target_modules" in exc.message and "o_proj" in (exc.hint or "")
    else:
        raise AssertionError("a regex matching nothing was accepted")
