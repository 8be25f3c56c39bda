"""The lock file is what installs: it pins every dependency pyproject.toml declares, the code
declares every third-party module it imports, and the pre-commit ruff is the locked ruff."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
from pathlib import Path

import yaml

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]


def _name(requirement: str) -> str:
    return re.split(r"[\s<>=!~;\[]", requirement, maxsplit=1)[0].lower().replace("_", "-").replace(".", "-")


#: Extras the lock holds (scripts/lock.sh); qlora is CUDA-only and installed by hand.
LOCKED_EXTRAS = ("train", "extract")


def _declared(extras_wanted: tuple[str, ...] | None = LOCKED_EXTRAS) -> set[str]:
    """The core dependencies plus `extras_wanted` (None: every extra but test)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    names = [n for n in extras if n != "test"] if extras_wanted is None else extras_wanted
    return {_name(r) for r in project["dependencies"] + [r for n in names for r in extras[n]]}


def _locked() -> dict[str, set[str]]:
    pins: dict[str, set[str]] = {}
    for line in (ROOT / "requirements" / "lock.txt").read_text().splitlines():
        match = re.match(r"([a-z0-9][a-z0-9._-]*)==([^\s;\\]+)", line)
        if match:
            pins.setdefault(_name(match[1]), set()).add(match[2])
    return pins


def test_every_declared_dependency_is_locked_with_hashes():
    locked = _locked()
    missing = sorted(_declared() - set(locked) - {"torch"})
    assert not missing, f"not in requirements/lock.txt (run scripts/lock.sh): {missing}"
    text = (ROOT / "requirements" / "lock.txt").read_text()
    body = "\n".join(line for line in text.splitlines() if not line.startswith("#"))
    blocks = re.split(r"\n(?=[a-z0-9])", body)
    assert all("--hash=sha256:" in block for block in blocks if block.strip()), "a pin without hashes"
    assert re.search(r"^torch==\d", (ROOT / "requirements" / "torch.txt").read_text(), re.M)


def test_the_code_declares_every_third_party_module_it_imports():
    imported: set[str] = set()
    for path in (ROOT / "pwd_git").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                imported.add(node.module.split(".")[0])
    third_party = imported - set(sys.stdlib_module_names) - {"pwd_git"}
    providers = importlib.metadata.packages_distributions()
    # a module of an extra not installed here (bitsandbytes: CUDA only) is known by its own name
    declared = _declared(None)
    undeclared = {m: providers.get(m) for m in third_party if not {_name(d) for d in providers.get(m, [m])} & declared}
    assert not undeclared, f"imported but not declared in pyproject.toml: {undeclared}"


def test_pre_commit_runs_the_locked_ruff():
    config = yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text())
    rev = next(r["rev"] for r in config["repos"] if r["repo"].endswith("/ruff-pre-commit"))
    assert _locked()["ruff"] == {rev.removeprefix("v")}


def test_the_lock_was_compiled_from_todays_pyproject():
    """A dependency added to pyproject.toml (or lock.in, or the torch pin) without running
    scripts/lock.sh would install from a lock that does not know it."""
    import subprocess

    fingerprint = subprocess.run([sys.executable, str(ROOT / "scripts" / "lock_inputs.py")], capture_output=True,
                                 text=True, check=True).stdout.strip()
    header = re.search(r"^# inputs: (\w+)$", (ROOT / "requirements" / "lock.txt").read_text(), re.M)
    assert header and header[1] == fingerprint, "run scripts/lock.sh"
