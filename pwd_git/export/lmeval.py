"""`export lm-eval`: a revision's benchmark as an lm-evaluation-harness task set.

One `multiple_choice` task per level (L1, L2, L3) and a group over them, scored the way
`git pwd test` scores (pwd_git.evaluate.score): the context is the item's question as is,
each choice is the continuation after lm-eval's target delimiter " " (the tool scores
" " + choice), acc is the argmax of summed log-likelihoods and acc_norm divides by the
choice's length in characters, which is lm-eval's own acc_norm. The data files hold only the
fields the tasks read, each of one type in every line, so `datasets` infers one schema.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from pwd_git.errors import DataError
from pwd_git.export import check_destination, staged
from pwd_git.kb.loader import Domain

LEVELS = ("L1", "L2", "L3")
DATA = "data"


@dataclass
class LmEvalExport:
    path: Path
    group: str
    tasks: dict[str, int] = field(default_factory=dict)  # task name -> number of items


def task_prefix(name: str) -> str:
    """`pwd_<domain name>` in the characters lm-eval task names are made of."""
    return "pwd_" + (re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_") or "domain")


def _task(name: str, data: Path) -> dict:
    return {"task": name, "dataset_path": "json", "dataset_kwargs": {"data_files": {"test": str(data)}},
            "test_split": "test", "output_type": "multiple_choice",
            "doc_to_text": "question", "doc_to_choice": "choices", "doc_to_target": "answer", "target_delimiter": " ",
            "metric_list": [{"metric": m, "aggregation": "mean", "higher_is_better": True} for m in ("acc", "acc_norm")],
            "metadata": {"version": 1}}


def export_lm_eval(domain: Domain, rev: str | None, dest: Path) -> LmEvalExport:
    """Write the task YAMLs and data of `rev`'s benchmark (None: the working tree's shards/) to
    `dest`. The data paths in the YAMLs are absolute (lm-eval resolves them against the current
    directory): export again after moving the folder."""
    from pwd_git.train.pipeline import shards_for

    check_destination(dest)
    shards = shards_for(domain, rev)
    items = shards.records("bench")
    if not items:
        raise DataError("the benchmark is empty: no test-split chains", hint="add a chain with `split: test`")
    prefix = task_prefix(str(shards.config.get("name") or domain.root.name))
    final = dest.resolve()
    out = LmEvalExport(final, prefix)
    with staged(final) as tmp:
        (tmp / DATA).mkdir()
        for level in LEVELS:
            docs = [{"id": str(i["id"]), "question": str(i["question"]), "choices": [str(c) for c in i["choices"]],
                     "answer": int(i["answer"]), "source": str(i.get("source", ""))} for i in items if i["level"] == level]
            if not docs:  # lm-eval cannot load an empty data file
                continue
            name = f"{prefix}_{level.lower()}"
            (tmp / DATA / f"{level.lower()}.jsonl").write_text(
                "".join(json.dumps(d, ensure_ascii=False, sort_keys=True) + "\n" for d in docs), encoding="utf-8")
            config = _task(name, final / DATA / f"{level.lower()}.jsonl")
            (tmp / f"{name}.yaml").write_text(yaml.safe_dump(config, sort_keys=False, allow_unicode=True))
            out.tasks[name] = len(docs)
        group = {"group": prefix, "task": list(out.tasks),
                 "aggregate_metric_list": [{"metric": m, "aggregation": "mean", "weight_by_size": True}
                                           for m in ("acc", "acc_norm")],
                 "metadata": {"version": 1}}
        (tmp / f"{prefix}.yaml").write_text(yaml.safe_dump(group, sort_keys=False))
    return out
