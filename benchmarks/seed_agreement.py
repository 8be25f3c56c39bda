"""How much a from-scratch training of the tiny model depends on its seed, and on an edit
elsewhere in the KB: the noise every per-item judgement (diagnose, test --baseline, bisect)
inherits. The baseline is the previous default recipe, trained in the same run.

    python benchmarks/seed_agreement.py [--seeds 0,1,2] [--only NAME,...] [--no-edit]
                                        [--config 'NAME={"train": {...}, "tiny": {...}, "noise": 0.5}'] [--save FILE]

On the example domain (init, build, commit), for each config and seed (train.seed): train
from scratch the way the pipeline does (BPE tokenizer, model, loop; one thread), score the
benchmark. Then, with the same seed, on a commit that holds out one probed statement
(build.holdout), train and score again. Per config it prints accuracy per level; agreement,
the share of benchmark items with the same pass/fail, for each pair of seeds (all items and
L1+L2 only); agreement after the one-statement edit, on the items that do not trace that
statement; and wall and CPU seconds per training (wall is inflated by whatever else runs).

Configs: "old default" is the previous recipe verbatim (one shuffled stream for the data
order, transformers' own init, 20 epochs at lr 5e-3, no prefix noise); "keyed draws" is the
current loop and init with the old settings; "no noise" the current settings without prefix
noise; "default" the current default, pwd.yaml untouched. --config adds candidates: `train`
and `tiny` are pwd.yaml's train and model.tiny, `noise` the prefix-noise share.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pwd_git.evaluate.score import score_items  # noqa: E402
from pwd_git.kb.loader import Domain  # noqa: E402
from pwd_git.model import quiet_transformers  # noqa: E402
from pwd_git.model.settings import TrainSettings, train_settings  # noqa: E402
from pwd_git.model.text import turns_of  # noqa: E402
from pwd_git.model.tiny import DEFAULT_ARCH, PREFIX_NOISE, build_model, train_tokenizer  # noqa: E402
from pwd_git.train.loop import encode_records, pad_batch, set_determinism, train_model  # noqa: E402
from pwd_git.train.pipeline import shards_for  # noqa: E402

ENV = {**os.environ, "GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "b@e.x", "GIT_COMMITTER_NAME": "bench",
       "GIT_COMMITTER_EMAIL": "b@e.x"}
OLD_SETTINGS = {"epochs": 20, "lr": 5e-3, "batch_size": 16}
CONFIGS = {
    "old default": {"train": OLD_SETTINGS, "old": True},
    "keyed draws": {"train": OLD_SETTINGS, "noise": 0.0},
    "no noise": {"noise": 0.0},
    "default": {},
}


def sh(*args: str, cwd: Path) -> str:
    return subprocess.run(args, cwd=cwd, env=ENV, check=True, capture_output=True, text=True).stdout


def old_fit(model, tokenizer, records: list[dict], settings: TrainSettings) -> None:
    """The previous loop, verbatim but for progress and divergence checks: one generator for the
    data order of every epoch, linear warmup and decay, no noise."""
    import torch

    encoded = encode_records(tokenizer, records, settings.max_length)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=settings.lr, weight_decay=0.0)
    total = math.ceil(len(encoded) / settings.batch_size) * settings.epochs
    warm = max(1, int(total * 0.05))
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min(1.0, (s + 1) / warm) * max(0.0, (total - s) / max(1, total - warm)) if s >= warm
        else (s + 1) / warm)
    generator = torch.Generator().manual_seed(settings.seed)
    batch_size, window = settings.batch_size, settings.batch_size * 8
    for _epoch in range(settings.epochs):
        order = torch.randperm(len(encoded), generator=generator).tolist()
        groups = []
        for start in range(0, len(order), window):
            chunk = sorted(order[start:start + window], key=lambda i: len(encoded[i][0]))
            groups.extend(chunk[k:k + batch_size] for k in range(0, len(chunk), batch_size))
        for g in torch.randperm(len(groups), generator=generator).tolist():
            input_ids, labels, mask = pad_batch([encoded[i] for i in groups[g]], tokenizer.pad_token_id)
            model(input_ids=input_ids, attention_mask=mask, labels=labels).loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
            schedule.step()
            optimizer.zero_grad(set_to_none=True)
    model.eval()


def train_and_score(records: list[dict], items: list[dict], settings: TrainSettings, config: dict) -> dict:
    """One from-scratch training (pipeline._fit's tiny branch) and its per-item pass/fail."""
    import torch
    from transformers import LlamaForCausalLM

    start, cpu = time.perf_counter(), time.process_time()
    settings = settings.for_records(len(records))
    set_determinism(settings.seed, settings.threads)
    arch = {**DEFAULT_ARCH, **settings.arch}
    tokenizer = train_tokenizer((t for r in records for t in turns_of(r)), int(arch["vocab_size"]))
    model = build_model(tokenizer, arch, settings.seed)
    if config.get("old"):
        torch.manual_seed(settings.seed)
        model = LlamaForCausalLM(model.config)  # transformers' init, drawn from the global stream
        old_fit(model, tokenizer, records, settings)
    else:
        train_model(model, tokenizer, records, epochs=settings.epochs, lr=settings.lr, batch_size=settings.batch_size,
                    seed=settings.seed, max_length=settings.max_length, prefix_noise=config.get("noise", PREFIX_NOISE))
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    return {"wall": wall, "cpu": cpu, "pass": {s.id: s.correct for s in score_items(model, tokenizer, items)}}


def mean(xs: list[float]) -> float:
    return sum(xs) / len(xs) if xs else float("nan")


def agreement(a: dict[str, bool], b: dict[str, bool], ids: list[str]) -> float:
    return sum(a[k] == b[k] for k in ids) / len(ids)


def edit_commits(root: Path, statements: list[str], seeds: list[int]) -> dict[int, tuple[str, str]]:
    """Per seed, a commit off main that holds out one probed statement: (statement, commit)."""
    out = {}
    config = (root / "pwd.yaml").read_text()
    for seed in seeds:
        statement = random.Random(seed).choice(statements)
        sh("git", "checkout", "-q", "-b", f"edit-{seed}", "main", cwd=root)
        (root / "pwd.yaml").write_text(config.replace("build:\n", f"build:\n  holdout: [{statement}]\n", 1))
        sh("git", "pwd", "build", "-q", cwd=root)
        sh("git", "commit", "-qam", f"hold out {statement}", cwd=root)
        out[seed] = (statement, sh("git", "rev-parse", "HEAD", cwd=root).strip())
        sh("git", "checkout", "-q", "main", cwd=root)
    return out


def settings_of(config: dict, extra: dict, seed: int, root: Path) -> TrainSettings:
    model = {**(config.get("model") or {}), **({"tiny": extra["tiny"]} if "tiny" in extra else {})}
    return train_settings({**config, "model": model, "train": {**extra.get("train", {}), "seed": seed}}, root)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--only", help="comma-separated config names to run (default: all)")
    parser.add_argument("--no-edit", action="store_true", help="skip the one-statement edit (half the trainings)")
    parser.add_argument("--config", action="append", default=[], metavar="NAME=JSON", help="a candidate config")
    parser.add_argument("--save", type=Path, metavar="FILE", help="also write every run's per-item pass/fail as JSON")
    args = parser.parse_args()
    configs = dict(CONFIGS)
    for spec in args.config:
        name, _, body = spec.partition("=")
        configs[name] = json.loads(body)
    if args.only:
        configs = {k: configs[k] for k in args.only.split(",")}
    seeds = [int(s) for s in args.seeds.split(",")]
    quiet_transformers()
    load_before = os.getloadavg()[0]
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="pwd-seeds-") as tmp:
        os.environ["PWD_GIT_CACHE"] = ENV["PWD_GIT_CACHE"] = str(Path(tmp) / "cache")
        root = Path(tmp) / "cell-biology"
        sh("git-pwd", "init", "-t", "example", str(root), cwd=Path(tmp))
        sh("git", "pwd", "build", "-q", cwd=root)
        sh("git", "add", "-A", cwd=root)
        sh("git", "commit", "-qm", "example KB", cwd=root)
        sh("git", "branch", "-M", "main", cwd=root)
        domain = Domain.find(root)
        shards = shards_for(domain, "HEAD")
        records, items = shards.records("train"), shards.records("bench")
        probed = sorted({i["traces"]["statements"][0] for i in items if i["template"] == "probe.l2.complete"})
        edits = {} if args.no_edit else edit_commits(root, probed, seeds)
        for name, extra in configs.items():
            runs, edited = {}, {}
            for seed in seeds:
                settings = settings_of(shards.config, extra, seed, root)
                runs[seed] = train_and_score(records, items, settings, extra)
                print(f"{name} seed {seed}: {runs[seed]['wall']:.1f} s wall, {runs[seed]['cpu']:.1f} s CPU, "
                      f"{sum(runs[seed]['pass'].values())} of {len(items)} pass", file=sys.stderr)
                if seed in edits:
                    statement, commit = edits[seed]
                    edit = shards_for(domain, commit)
                    edited[seed] = train_and_score(edit.records("train"), items, settings, extra)
                    kept = [i["id"] for i in items if statement not in i["traces"]["statements"]]
                    edited[seed]["agreement"] = agreement(runs[seed]["pass"], edited[seed]["pass"], kept)
                    print(f"{name} seed {seed} without {statement}: agreement {edited[seed]['agreement']:.3f} "
                          f"on {len(kept)} items", file=sys.stderr)
            results[name] = {"settings": settings, "extra": extra, "runs": runs, "edited": edited}
    print_table(results, items, seeds, load_before)
    if args.save:
        args.save.write_text(json.dumps({name: {"runs": r["runs"], "edited": r["edited"]} for name, r in results.items()}))


def print_table(results: dict[str, dict], items: list[dict], seeds: list[int], load_before: float) -> None:
    levels = sorted({i["level"] for i in items})
    ids = {lv: [i["id"] for i in items if i["level"] == lv] for lv in levels}
    facts = ids.get("L1", []) + ids.get("L2", [])
    print(f"example domain: {len(items)} benchmark items ({', '.join(f'{lv} {len(ids[lv])}' for lv in levels)}); "
          f"seeds {','.join(map(str, seeds))}; {os.cpu_count()} CPUs, 1 thread per training; "
          f"load average {load_before:.1f} at the start, {os.getloadavg()[0]:.1f} at the end\n")
    print("| config | epochs | lr | noise | " + " | ".join(levels) + " | seed agreement (pairs) | L1+L2 agreement "
          "| " + " | ".join(f"{lv} agreement" for lv in levels) + " | after a one-statement edit | train s wall | train s CPU |")
    print("|---|---:|---:|---:|" + "---:|" * len(levels) + "---|---:|" + "---:|" * len(levels) + "---:|---:|---:|")
    for name, r in results.items():
        s, runs = r["settings"], list(r["runs"].values())
        acc = [sum(run["pass"][k] for run in runs for k in ids[lv]) / (len(ids[lv]) * len(runs)) for lv in levels]
        pairs = list(itertools.combinations(runs, 2))
        seed_agree = [agreement(a["pass"], b["pass"], [i["id"] for i in items]) for a, b in pairs]
        fact_agree = [agreement(a["pass"], b["pass"], facts) for a, b in pairs]
        level_agree = [mean([agreement(a["pass"], b["pass"], ids[lv]) for a, b in pairs]) for lv in levels]
        edits = [e["agreement"] for e in r["edited"].values()]
        trainings = runs + list(r["edited"].values())
        noise = 0.0 if r["extra"].get("old") else r["extra"].get("noise", PREFIX_NOISE)
        print(f"| {name} | {s.epochs or 'auto'} | {s.lr:g} | {noise:g} | " + " | ".join(f"{a:.2f}" for a in acc)
              + f" | {mean(seed_agree):.2f} ({' '.join(f'{a:.2f}' for a in seed_agree)}) | {mean(fact_agree):.2f} | "
              + " | ".join(f"{a:.2f}" for a in level_agree) + f" | {mean(edits):.2f} ({' '.join(f'{a:.2f}' for a in edits)}) "
              f"| {mean([t['wall'] for t in trainings]):.1f} (max {max(t['wall'] for t in trainings):.1f}) "
              f"| {mean([t['cpu'] for t in trainings]):.1f} |")
    print("\nAgreement: share of benchmark items with the same pass/fail in two trainings (seed pairs: all items; "
          "after the edit: same seed, items not tracing the held-out statement). Chance is 0.25 per item.")


if __name__ == "__main__":
    main()
