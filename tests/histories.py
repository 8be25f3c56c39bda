"""Scripted domain histories with one known regression, for bisect tests and benchmarks.

The domain is small and quick to train: a 1-layer tiny model memorises it in a few seconds
on one CPU thread. Its test chains carry hand-written items worded like the training
prompts, so a trained model passes them and an undertrained one does not: a reliable
regression signal. The regression is a pwd.yaml commit that cuts the training budget
(`train.epochs`); every other commit touches only README.md or concepts no test uses.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

MACHINES = {"bicycle": "wheel", "tricycle": "drivetrain", "scooter": "deck", "unicycle": "seat"}
PARTS = {"wheel": "spoke", "drivetrain": "chain-ring", "deck": "grip-tape", "seat": "saddle"}
ACCESSORIES = ["bell", "basket", "mudguard", "reflector", "kickstand", "lamp", "pump", "lock", "mirror", "rack",
               "horn", "flag", "helmet", "glove", "trailer", "crate"]

MODEL = "{base: tiny, tiny: {n_layer: 1, n_embd: 128, n_head: 2, vocab_size: 512}}"
GOOD_EPOCHS = 40
BAD_EPOCHS = 1


def config(epochs: int = GOOD_EPOCHS) -> str:
    return (f"name: bikes\nmodel: {MODEL}\n"
            f"train: {{epochs: {epochs}, batch_size: 16, lr: 0.003, threads: 1}}\ntest: {{}}\n")


def _term(cid: str) -> str:
    return cid.replace("-", " ")


def _hand_items(subject: str, obj: str, pool: list[str]) -> list[str]:
    """Items worded like the l2.qa and l2.fact training prompts (different words, so no leak)."""
    wrong = [o for o in pool if o != obj][:3]
    choices = [_term(obj), *(_term(w) for w in wrong)]
    s = _term(subject)
    out = []
    for question in (f"{s} is part of what?\\n{s} is part of", f"Tell me a fact about {s}.\\n{s} is part of"):
        out.append(f'  - question: "{question}"\n    choices: [{", ".join(choices)}]\n    answer: 0\n')
    return out


def base_files(epochs: int = GOOD_EPOCHS) -> dict[str, str]:
    files = {"pwd.yaml": config(epochs), "README.md": "# bikes\n"}
    assemblies = list(MACHINES.values())
    machines = list(MACHINES)
    for machine, assembly in MACHINES.items():
        part = PARTS[assembly]
        files[f"concepts/machines/{machine}.yaml"] = (
            f"id: {machine}\nterm: {machine}\ntype: machine\ndefinition: A {machine} is a human-powered vehicle.\n")
        files[f"concepts/assemblies/{assembly}.yaml"] = (
            f"id: {assembly}\nterm: {_term(assembly)}\ntype: assembly\n"
            f"definition: The {_term(assembly)} is a major assembly of a {machine}.\n"
            f"relations:\n  - predicate: is part of\n    object: {machine}\n")
        files[f"concepts/parts/{part}.yaml"] = (
            f"id: {part}\nterm: {_term(part)}\ntype: part\n"
            f"definition: The {_term(part)} is a component of the {_term(assembly)}.\n"
            f"relations:\n  - predicate: is part of\n    object: {assembly}\n")
        items = (_hand_items(part, assembly, [assembly, *assemblies])
                 + _hand_items(assembly, machine, [machine, *machines]))
        files[f"chains/{part}-to-{machine}.yaml"] = (
            f"id: {part}-to-{machine}\ntitle: a {_term(part)} ends up in a {machine}\nsplit: test\n"
            f"steps: [{part}.is-part-of.{assembly}, {assembly}.is-part-of.{machine}]\nitems:\n" + "".join(items))
    return files


def accessory(name: str, variant: int = 0) -> str:
    definition = f"A {name} is an optional accessory for riders." if not variant else \
        f"A {name} is an accessory some riders fit (revision {variant})."
    return f"id: {name}\nterm: {name}\ntype: accessory\ndefinition: {definition}\n"


def git(root: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=root, check=True, capture_output=True, text=True).stdout.strip()


def write(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


@dataclass
class History:
    root: Path
    commits: list[str] = field(default_factory=list)  # first-parent order, oldest first; [0] is GOOD
    subjects: list[str] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list)
    regression: str = ""  # the commit that cuts the training budget
    side: list[str] = field(default_factory=list)  # commits on a merged side branch (never first-parent)

    @property
    def good(self) -> str:
        return self.commits[0]

    @property
    def bad(self) -> str:
        return self.commits[-1]


# The edit pattern, cycled: mostly README-only and provenance commits (the KB tree changes,
# the training data does not), now and then a new or edited accessory concept (new data).
PATTERN = ["readme", "accessory", "readme", "provenance", "readme", "readme", "definition", "provenance"]


def make_history(root: Path, n_commits: int, regression_at: int | None, *, merge_at: int | None = None,
                 side_regression: bool = False, build_shards: bool = False, pattern: list[str] | None = None,
                 kinds: dict[int, str] | None = None) -> History:
    """A first-parent history of `n_commits` commits (index 0 is the base KB); commit
    `regression_at` cuts train.epochs. `merge_at` merges a two-commit side branch there
    (README-only, or carrying the budget cut when `side_regression`). `kinds` overrides the
    edit of single commits ("invalid" breaks a chain, "fix" repairs it). `build_shards`
    commits fresh shards/ too (for tools that read the working tree)."""
    pattern = pattern or PATTERN
    kinds = kinds or {}
    root.mkdir(parents=True)
    git(root, "init", "-q", "-b", "main")
    history = History(root)
    write(root, base_files())
    epochs = GOOD_EPOCHS
    added: list[str] = []
    for i in range(n_commits):
        if i == 0:
            kind, subject = "base", "bikes KB"
        elif i == regression_at:
            kind, subject = "regression", f"Cut the training budget to {BAD_EPOCHS} epoch"
            epochs = BAD_EPOCHS
            (root / "pwd.yaml").write_text(config(epochs))
            _edit(root, "fix", i, added)  # a no-op unless an earlier commit broke the chain
        elif merge_at is not None and i == merge_at:
            kind, subject = "merge", "Merge branch 'side'"
            git(root, "checkout", "-q", "-b", "side", "HEAD")
            for j in range(2):
                if side_regression and j == 1:
                    epochs = BAD_EPOCHS
                    (root / "pwd.yaml").write_text(config(epochs))
                    subject = f"Cut the training budget to {BAD_EPOCHS} epoch (on a branch)"
                else:
                    (root / f"notes-{j}.md").write_text(f"side note {j}\n")
                    subject = f"side commit {j}"
                _commit(root, build_shards, subject)
                history.side.append(git(root, "rev-parse", "HEAD"))
            subject = "Merge branch 'side'"
            git(root, "checkout", "-q", "main")
            git(root, "merge", "-q", "--no-ff", "-m", subject, "side")
            git(root, "branch", "-q", "-D", "side")
            history.commits.append(git(root, "rev-parse", "HEAD"))
            history.subjects.append(subject)
            history.kinds.append(kind)
            continue
        else:
            kind = kinds.get(i) or pattern[(i - 1) % len(pattern)]
            subject = _edit(root, kind, i, added)
        _commit(root, build_shards, subject)
        history.commits.append(git(root, "rev-parse", "HEAD"))
        history.subjects.append(subject)
        history.kinds.append(kind)
        if kind == "regression":
            history.regression = history.commits[-1]
    if side_regression:
        history.regression = history.commits[merge_at]
    return history


def _edit(root: Path, kind: str, i: int, added: list[str]) -> str:
    if kind == "readme":
        with open(root / "README.md", "a") as fh:
            fh.write(f"Change {i}.\n")
        return f"README: change {i}"
    if kind == "accessory" or (kind == "definition" and not added):
        name = ACCESSORIES[len(added) % len(ACCESSORIES)]
        if name in added:
            name = f"{name}-{i}"
        added.append(name)
        write(root, {f"concepts/accessories/{name}.yaml": accessory(name)})
        return f"Add the {name} accessory"
    if kind == "definition":
        name = added[i % len(added)]
        write(root, {f"concepts/accessories/{name}.yaml": accessory(name, i)})
        return f"Reword the {name} definition"
    if kind == "invalid":  # a test chain step that names a statement nobody states
        path = root / "chains/spoke-to-bicycle.yaml"
        path.write_text(path.read_text().replace("wheel.is-part-of.bicycle", "wheel.is-part-of.bycicle"))
        return "Typo in the spoke chain"
    if kind == "fix":
        path = root / "chains/spoke-to-bicycle.yaml"
        path.write_text(path.read_text().replace("wheel.is-part-of.bycicle", "wheel.is-part-of.bicycle"))
        return "Fix the spoke chain"
    if kind == "provenance":
        machine = list(MACHINES)[i % len(MACHINES)]
        path = root / f"concepts/machines/{machine}.yaml"
        text = path.read_text().split("source:")[0]
        path.write_text(text + f"source:\n  doc: Bicycle handbook, edition {i}\n")
        return f"Cite the handbook for {machine} (edition {i})"
    raise ValueError(kind)


def _commit(root: Path, build_shards: bool, subject: str) -> None:
    if build_shards:
        from pwd_git.build.shards import build
        from pwd_git.kb.loader import Domain

        build(Domain.find(root))
    git(root, "add", "-A")
    git(root, "commit", "-qm", subject)


def record_results(root: Path, commits: list[str], fails: Callable[[str, dict], bool],
                   fails_norm: Callable[[str, dict], bool] | None = None,
                   control_fails: Callable[[str], int] | None = None) -> None:
    """Write result notes for `commits` the way `git pwd test` would, without training: an
    item fails when `fails(commit, item)` (its acc_norm flag: `fails_norm`, default the same);
    with `control_fails`, a 10-item control set of which that many fail. For tests of
    everything around the model."""
    from pwd_git import notes
    from pwd_git.evaluate.run import summarize
    from pwd_git.kb.loader import Domain
    from pwd_git.model.settings import run_key, train_settings
    from pwd_git.train.pipeline import plan, shards_for

    domain = Domain.find(root)
    for commit in commits:
        shards = shards_for(domain, commit)
        items = shards.records("bench")
        correct = {i["id"]: not fails(commit, i) for i in items}
        norm = {i["id"]: not (fails_norm or fails)(commit, i) for i in items}
        settings = train_settings(shards.config, domain.root)
        entry = {
            "time": "2026-01-01T00:00:00+00:00", "run_key": run_key(settings), "base": settings.base,
            "kb_tree": shards.manifest["kb_tree"], "shards_hash": shards.manifest["shards_hash"],
            "model_key": plan(domain, commit)[3],  # what continue mode matches notes on
            "build_key": shards.manifest["build_key"], "commit": commit, "verdict": "pass",
            "metrics": summarize(items, correct, norm), "failed": sorted(k for k, ok in correct.items() if not ok),
            "failed_norm": sorted(k for k, ok in norm.items() if not ok)}
        if control_fails:
            control = [f"control-{n}" for n in range(1, 11)]
            entry["control_items"], entry["control_failed"] = control, control[:control_fails(commit)]
            entry["metrics"]["control"] = {"acc": 1 - control_fails(commit) / 10, "acc_norm": 0.0, "n": 10}
        notes.append(domain.repo, commit, entry)
