"""The CI templates (`git pwd hooks ci github|gitlab`): where the tool is installed from, the model
caches, the diagnosis as SARIF, and every `git pwd` command in them existing in the CLI."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import click
import pytest
import yaml

from pwd_git import __version__
from pwd_git.cli import cli
from pwd_git.resources import templates_dir
from tests.conftest import git, small_domain
from tests.histories import record_results

SHELL_OPERATORS = {"||", "&&", ";", ";;", "|", "&", ">", ">>", "<", "<<", "2>", "(", ")"}


def _github() -> dict:
    return yaml.safe_load((templates_dir() / "ci" / "github-workflow.yml").read_text())


def _gitlab() -> dict:
    return yaml.safe_load((templates_dir() / "ci" / "gitlab-ci.yml").read_text())


def _steps() -> list[dict]:
    return _github()["jobs"]["test-data"]["steps"]


def _step(name: str) -> dict:
    return next(s for s in _steps() if s.get("name") == name)


def _uses(prefix: str) -> list[dict]:
    return [s for s in _steps() if str(s.get("uses", "")).startswith(prefix)]


def _shell_texts() -> list[str]:
    """Every shell script in both templates: GitHub's `run:` and GitLab's `script:` entries."""
    texts = [str(s["run"]) for job in _github()["jobs"].values() for s in job.get("steps", []) if "run" in s]
    for job in _gitlab().values():
        if isinstance(job, dict):
            texts += [str(line) for key in ("before_script", "script", "after_script") for line in job.get(key, [])]
    return texts


def _bash(script: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    """Run a template's script as the runner would (bash -e), with this environment's `git pwd`."""
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    return subprocess.run(["bash", "-e", "-c", script], cwd=cwd, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PATH": path, **env})


@pytest.mark.parametrize(("name", "schema"), [("github-workflow.yml", "vendor.github-workflows"),
                                            ("gitlab-ci.yml", "vendor.gitlab-ci")])
def test_the_templates_are_valid_for_their_forge(name, schema):
    """Against the forges' published schemas (vendored in check-jsonschema: no network)."""
    proc = subprocess.run([sys.executable, "-m", "check_jsonschema", "--builtin-schema", schema,
                           str(templates_dir() / "ci" / name)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


# --- where pwd-git comes from --------------------------------------------------------------------

def test_both_templates_install_pwd_git_from_one_overridable_spec():
    spec = _github()["env"]["PWD_GIT_SPEC"]
    default = re.fullmatch(r"\$\{\{ vars\.PWD_GIT_SPEC \|\| '(?P<default>[^']+)' \}\}", spec)
    assert default, spec  # a repository variable overrides the default
    assert _gitlab()["pwd-git"]["variables"]["PWD_GIT_SPEC"] == default["default"]  # one placeholder, both forges
    assert default["default"].startswith("pwd-git[train] @ git+") and default["default"].endswith(f"@v{__version__}")
    install = _step("Install pwd-git")["run"]
    gitlab_script = "\n".join(_gitlab()["pwd-git"]["script"])
    for script in (install, gitlab_script):
        assert 'pip install "$PWD_GIT_SPEC"' in script
        assert not re.search(r"pip install \S*pwd-git\[", script)  # on no registry: never installed by name


@pytest.mark.parametrize("forge", ["github", "gitlab"])
def test_the_placeholder_spec_stops_the_job_with_a_clear_message(tmp_path, forge):
    if forge == "github":
        script, default = _step("Install pwd-git")["run"], _github()["env"]["PWD_GIT_SPEC"].split("'")[1]
    else:
        script, default = _gitlab()["pwd-git"]["script"][0], _gitlab()["pwd-git"]["variables"]["PWD_GIT_SPEC"]
    guard = script[:script.index("esac") + len("esac")]  # the check before any pip install
    stopped = _bash(guard, tmp_path, {"PWD_GIT_SPEC": default})
    assert stopped.returncode == 1 and "set the" in stopped.stdout and "PWD_GIT_SPEC" in stopped.stdout
    assert _bash(guard, tmp_path, {"PWD_GIT_SPEC": "pwd-git[train] @ git+https://github.com/lab/pwd-git@v1"}).returncode == 0


# --- caches ----------------------------------------------------------------------------------------

def test_github_caches_hugging_face_downloads_keyed_by_the_base_model(tmp_path):
    cache = next(s for s in _uses("actions/cache@") if s["with"]["path"] == "~/.cache/huggingface")
    assert "${{ steps.base.outputs.base }}" in cache["with"]["key"] and cache["if"] == "steps.base.outputs.base != 'tiny'"
    base_step = next(s for s in _steps() if s.get("id") == "base")
    assert _steps().index(base_step) < _steps().index(cache)
    for pwd_yaml, expected in [("name: x\nmodel: {base: Qwen/Qwen2.5-0.5B, lora: true}\n", "Qwen/Qwen2.5-0.5B"),
                               ("name: x\n", "tiny")]:
        (tmp_path / "pwd.yaml").write_text(pwd_yaml)
        output = tmp_path / "github-output"
        output.write_text("")
        proc = _bash(base_step["run"], tmp_path, {"GITHUB_OUTPUT": str(output)})
        assert proc.returncode == 0, proc.stderr
        assert output.read_text().splitlines() == [f"base={expected}"]
    assert any(s["with"]["path"] == "~/.cache/pwd-git" for s in _uses("actions/cache@"))  # trained models, as before


def test_gitlab_caches_hugging_face_downloads_inside_the_project():
    job = _gitlab()["pwd-git"]
    hf = next(c for c in job["cache"] if c["paths"] == [".cache/huggingface/"])
    assert job["variables"]["HF_HOME"] == "$CI_PROJECT_DIR/.cache/huggingface" and hf["key"]
    assert any(c["paths"] == [".pwd-git-cache/"] for c in job["cache"])


# --- the diagnosis as SARIF --------------------------------------------------------------------------

def test_github_uploads_the_diagnosis_to_code_scanning():
    assert _github()["permissions"]["security-events"] == "write"
    assert _github()["permissions"]["contents"] == "write"  # still pushes the notes
    diagnose = _step("Diagnose the tip commit")
    assert "git pwd diagnose" in diagnose["run"] and "--format sarif" in diagnose["run"]
    assert "> pwd-git.sarif" in diagnose["run"] and diagnose["if"] == "always()"
    [upload] = _uses("github/codeql-action/upload-sarif@")
    assert upload["with"]["sarif_file"] == "pwd-git.sarif" and "hashFiles('pwd-git.sarif')" in upload["if"]
    assert _steps().index(diagnose) < _steps().index(upload)


def test_gitlab_keeps_the_diagnosis_as_an_exposed_artifact():
    job = _gitlab()["pwd-git"]
    script = "\n".join(job["script"])
    assert re.search(r"git pwd diagnose .*--format sarif .*> pwd-git\.sarif", script)
    assert script.index("git pwd diagnose") < script.index("exit $status")
    assert "pwd-git.sarif" in job["artifacts"]["paths"] and job["artifacts"]["expose_as"]
    assert job["artifacts"]["when"] == "always"


@pytest.mark.parametrize("forge", ["github", "gitlab"])
def test_the_diagnose_step_writes_sarif_and_leaves_no_file_without_a_result(tmp_path, monkeypatch, forge):
    """The templates' own shell lines, run against a real repo: findings (exit 1) keep a SARIF file,
    a tip without a result (exit 2) leaves none to upload, and neither fails the step."""
    if forge == "github":
        script, sha_var = _step("Diagnose the tip commit")["run"], "AFTER"
    else:
        lines = _gitlab()["pwd-git"]["script"][-1].splitlines()
        script, sha_var = "\n".join(line for line in lines if line.startswith(("rc=", "git pwd diagnose", "if [ \"$rc\""))), \
            "CI_COMMIT_SHA"
    monkeypatch.setenv("PWD_GIT_CACHE", str(tmp_path / "cache"))
    root = small_domain(tmp_path / "d")
    head = git(root, "rev-parse", "HEAD")
    env = {sha_var: head, "PWD_GIT_CACHE": str(tmp_path / "cache")}
    none = _bash(script, root, env)
    assert none.returncode == 0 and not (root / "pwd-git.sarif").exists(), none.stderr
    record_results(root, [head], lambda c, item: "spoke" in item["traces"]["concepts"])
    found = _bash(script, root, env)
    assert found.returncode == 0, found.stderr
    sarif = json.loads((root / "pwd-git.sarif").read_text())
    assert sarif["version"] == "2.1.0" and sarif["runs"][0]["results"]


# --- no drift from the CLI -------------------------------------------------------------------------

def _invocations(text: str) -> list[list[str]]:
    """The words of each `git pwd ...` command in a shell script, up to the next shell operator."""
    found = []
    for line in text.replace("\\\n", " ").splitlines():
        lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
        lexer.whitespace_split, lexer.commenters = True, "#"
        words = list(lexer)
        for i in range(len(words) - 1):
            if words[i] == "git" and words[i + 1] == "pwd":
                command = []
                for word in words[i + 2:]:
                    if word in SHELL_OPERATORS:
                        break
                    command.append(word)
                found.append(command)
    return found


def _check(command: list[str]) -> str:
    """The verb path of one `git pwd` command, after click has parsed it as the CLI would (verbs,
    options, choices, argument counts), without running it."""
    ctx = click.Context(cli, info_name="git pwd")
    verb: click.Command = cli
    path, words = [], list(command)
    while isinstance(verb, click.Group):
        assert words, f"`git pwd {' '.join(path)}` needs a verb"
        sub = verb.get_command(ctx, words[0])
        assert sub is not None, f"`git pwd {' '.join([*path, words[0]])}`: no such verb"
        path.append(words.pop(0))
        verb, ctx = sub, click.Context(sub, info_name=path[-1], parent=ctx)
    try:
        verb.make_context(path[-1], words, parent=ctx.parent)
    except click.UsageError as exc:
        raise AssertionError(f"`git pwd {' '.join(command)}`: {exc.format_message()}") from None
    return " ".join(path)


def test_every_git_pwd_command_in_the_templates_exists():
    commands = [command for text in _shell_texts() for command in _invocations(text)]
    verbs = {_check(command) for command in commands}
    assert {"notes setup", "notes pull", "notes push", "run", "report", "diagnose"} <= verbs, verbs


@pytest.mark.parametrize("command", [["diagnose", "--formatt", "sarif"], ["diagnose", "--format", "sarf"],
                                     ["notes", "shove"], ["notes"], ["report", "-o"]])
def test_the_drift_check_catches_a_wrong_verb_or_option(command):
    with pytest.raises(AssertionError):
        _check(command)
