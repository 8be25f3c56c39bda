"""shards/ as the ecosystem reads it: record types the dataset card declares, the card itself
(`datasets.load_dataset(shards/)`), LLaMA-Factory's dataset_info.json, and TRL's SFTTrainer."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from pwd_git.build.card import FEATURES
from tests.conftest import run_cli, write

PATCH = """
    examples:
      - traces: {concepts: [chloroplast-stroma], statements: [chloroplast-stroma.is-part-of.chloroplast]}
        messages:
          - {role: system, content: You tutor a biology student.}
          - {role: user, content: Where would I look for the stroma?}
          - {role: assistant, content: "Inside a chloroplast, around its stacks of thylakoids."}
"""


@pytest.fixture(scope="module")
def example(tmp_path_factory):
    """The example domain built twice: without patches (an empty train/patches.jsonl) and with one."""
    base = tmp_path_factory.mktemp("ecosystem")
    with pytest.MonkeyPatch.context() as mp:
        for key, value in {"PWD_GIT_CACHE": str(base / "cache"), "XDG_CACHE_HOME": str(base / "xdg"),
                           "GIT_AUTHOR_NAME": "T", "GIT_AUTHOR_EMAIL": "t@e.x", "GIT_COMMITTER_NAME": "T",
                           "GIT_COMMITTER_EMAIL": "t@e.x", "GIT_CONFIG_GLOBAL": str(base / "gitconfig")}.items():
            mp.setenv(key, value)
        root = base / "cell-biology"
        assert run_cli("init", "--template", "example", str(root), cwd=base).code == 0
        assert run_cli("build", "-q", cwd=root).code == 0
        plain = base / "plain-shards"
        shutil.copytree(root / "shards", plain)
        write(root, {"patches/stroma.yaml": PATCH})
        result = run_cli("build", "-q", cwd=root)
        assert result.code == 0, result.output
    return plain, root / "shards"


def manifest_of(shards: Path) -> dict:
    return json.loads((shards / "MANIFEST.json").read_text())


def card_yaml(shards: Path) -> dict:
    text = (shards / "README.md").read_text(encoding="utf-8")
    assert text.startswith("---\n")
    return yaml.safe_load(text.split("---\n")[1])


def records(shards: Path, part: str) -> list[dict]:
    return [json.loads(line) for path in sorted((shards / part).glob("*.jsonl")) for line in path.read_text().splitlines()]


def conforms(value, feature: dict) -> bool:
    """Is `value` (decoded JSON) of the Hub feature `feature` ({"dtype": ..} / {"list": ..} / {"struct": ..})?
    Never null: an absent chain is "", absent statements []."""
    if "dtype" in feature:
        kinds = {"string": str, "int64": int, "bool": bool}
        return type(value) is kinds[feature["dtype"]]
    if "struct" in feature:
        return isinstance(value, dict) and has_fields(value, feature["struct"])
    item = feature["list"]
    item = {"dtype": item} if isinstance(item, str) else {"struct": item}
    return isinstance(value, list) and all(conforms(v, item) for v in value)


def has_fields(record: dict, fields: list[dict]) -> bool:
    return list(record) == [f["name"] for f in fields] and all(conforms(record[f["name"]], f) for f in fields)


# --- every record has the declared keys and types ----------------------------------------------

@pytest.mark.parametrize("part", ["train", "bench"])
def test_every_record_has_exactly_the_card_keys_with_the_card_types(example, part):
    """Same keys with the same JSON types in every record of a split: no nulls, no optional keys."""
    for shards in example:
        recs = records(shards, part)
        assert recs
        bad = [r for r in recs if not has_fields(r, FEATURES[part])]
        assert not bad, bad[:2]


def test_the_card_declares_what_the_build_wrote(example):
    """A config per part and per non-empty shard file, each with the features of its part."""
    for shards in example:
        card = card_yaml(shards)
        files = manifest_of(shards)["files"]
        filled = sorted(rel for rel, meta in files.items() if meta["records"])
        configs = {c["config_name"]: c for c in card["configs"]}
        assert [name for name, c in configs.items() if c.get("default")] == ["train"]
        assert configs["train"]["data_files"] == [{"split": "train", "path": [r for r in filled if r.startswith("train/")]}]
        assert configs["bench"]["data_files"] == [{"split": "test", "path": [r for r in filled if r.startswith("bench/")]}]
        assert set(configs) == {"train", "bench"} | {rel.removesuffix(".jsonl").replace("/", "_") for rel in filled}
        infos = {i["config_name"]: i["features"] for i in card["dataset_info"]}
        assert set(infos) == set(configs)
        assert all(infos[name] == FEATURES[name.split("_")[0]] for name in infos)
    plain, patched = example
    assert "train_patches" not in {c["config_name"] for c in card_yaml(plain)["configs"]}
    assert "train_patches" in {c["config_name"] for c in card_yaml(patched)["configs"]}


def test_an_empty_shard_file_is_not_registered_for_llama_factory(example):
    plain, patched = example
    assert manifest_of(plain)["files"]["train/patches.jsonl"]["records"] == 0
    assert (plain / "train" / "patches.jsonl").read_bytes() == b""
    assert sorted(json.loads((plain / "dataset_info.json").read_text())) == ["pwd_kb"]
    assert sorted(json.loads((patched / "dataset_info.json").read_text())) == ["pwd_kb", "pwd_patches"]


def test_build_restores_a_deleted_card_and_registry(tmp_path):
    root = tmp_path / "d"
    assert run_cli("init", "--template", "example", str(root), cwd=tmp_path).code == 0
    assert run_cli("build", "-q", cwd=root).code == 0
    card, info = ((root / "shards" / name).read_bytes() for name in ("README.md", "dataset_info.json"))
    (root / "shards" / "README.md").unlink()
    (root / "shards" / "dataset_info.json").write_text("{}")
    assert run_cli("build", "-q", cwd=root).code == 0
    assert (root / "shards" / "README.md").read_bytes() == card
    assert (root / "shards" / "dataset_info.json").read_bytes() == info


# --- LLaMA-Factory --------------------------------------------------------------------------------
# The rules below are those of hiyouga/LLaMA-Factory at commit ff6d4d12eeb035d6ce06805a5733dd7b29f2ac30
# (2026-08-18, after v0.9.x): src/llamafactory/data/parser.py (DatasetAttr.join: the keys an entry may
# have), loader.py (_load_single_dataset: a "file_name" entry is load_dataset("json", data_files=[file])
# on dataset_dir/file_name, its extension in FILEEXT2TYPE of extras/constants.py) and converter.py
# (SharegptDatasetConverter: an optional leading system turn, then user/assistant alternating, an
# even count, else the example is dropped; align_dataset: next(iter(dataset)), StopIteration when
# the file is empty).

LF_COLUMNS = {"prompt", "query", "response", "history", "messages", "system", "tools", "images", "videos", "audios",
              "chosen", "rejected", "kto_tag"}
LF_TAGS = {"role_tag", "content_tag", "user_tag", "assistant_tag", "observation_tag", "function_tag", "system_tag"}
LF_KEYS = {"file_name", "formatting", "ranking", "subset", "split", "folder", "num_samples", "columns", "tags"}
LF_EXTENSIONS = {"arrow", "csv", "json", "jsonl", "parquet", "txt"}


def llama_factory_conversation(record: dict, entry: dict) -> list[dict] | None:
    """What SharegptDatasetConverter makes of a record: [system?, turns...] or None (dropped)."""
    tags = entry["tags"]
    role, content = tags["role_tag"], tags["content_tag"]
    messages = record[entry["columns"]["messages"]]
    out = []
    if messages and messages[0][role] == tags["system_tag"]:
        out.append({"role": "system", "content": messages[0][content]})
        messages = messages[1:]
    accept = ({tags["user_tag"]}, {tags["assistant_tag"]})
    for i, message in enumerate(messages):
        if message[role] not in accept[i % 2]:
            return None
        out.append({"role": "user" if i % 2 == 0 else "assistant", "content": message[content]})
    return out if len(messages) % 2 == 0 else None


def test_dataset_info_entries_are_what_llama_factory_loads(example):
    for shards in example:
        info = json.loads((shards / "dataset_info.json").read_text())
        assert info
        for name, entry in info.items():
            assert set(entry) <= LF_KEYS and entry["formatting"] == "sharegpt", name
            assert set(entry["columns"]) <= LF_COLUMNS and set(entry["tags"]) <= LF_TAGS, name
            path = shards / entry["file_name"]
            assert path.is_file() and path.suffix[1:] in LF_EXTENSIONS, name
            recs = [json.loads(line) for line in path.read_text().splitlines()]
            assert recs, f"{name}: an empty file stops LLaMA-Factory's align_dataset"
            for rec in recs:
                assert llama_factory_conversation(rec, entry) == rec["messages"], (name, rec)


def test_llama_factory_load_call_reads_each_registered_file(example):
    """The very call LLaMA-Factory's loader makes for a file entry, on each one."""
    datasets = pytest.importorskip("datasets")
    _, patched = example
    for name, entry in json.loads((patched / "dataset_info.json").read_text()).items():
        ds = datasets.load_dataset("json", data_files=[str(patched / entry["file_name"])], split="train",
                                   cache_dir=str(patched.parent / "hf-datasets"))
        assert len(ds) == manifest_of(patched)["files"][entry["file_name"]]["records"] > 0, name
        assert next(iter(ds))["messages"][-1]["role"] == "assistant"


# --- datasets ---------------------------------------------------------------------------------------

def test_datasets_loads_every_config_of_the_card_with_its_features(example):
    datasets = pytest.importorskip("datasets")
    _, shards = example
    cache = str(shards.parent / "hf-datasets")
    files = manifest_of(shards)["files"]
    expected = {part: datasets.Features._from_yaml_list(FEATURES[part]) for part in FEATURES}
    train = datasets.load_dataset(str(shards), cache_dir=cache)  # the default config
    assert list(train) == ["train"] and train["train"].features == expected["train"]
    assert len(train["train"]) == sum(m["records"] for rel, m in files.items() if rel.startswith("train/"))
    assert {r["level"] for r in train["train"]} == {"L1", "L2", "L3", "patch"}
    for rel, meta in files.items():
        part, name = rel.removesuffix(".jsonl").split("/")
        ds = datasets.load_dataset(str(shards), f"{part}_{name}", split="train" if part == "train" else "test",
                                   cache_dir=cache)
        assert len(ds) == meta["records"] and ds.features == expected[part], rel
    bench = datasets.load_dataset(str(shards), "bench", split="test", cache_dir=cache)
    assert len(bench) == sum(m["records"] for rel, m in files.items() if rel.startswith("bench/"))
    assert any(r["hand_index"] >= 0 for r in bench) and any(r["traces"]["chain"] == "" for r in bench)


@pytest.mark.parametrize("part", ["train", "bench"])
@pytest.mark.parametrize("declared", [False, True], ids=["inferred", "card-features"])
def test_one_json_call_over_all_files_of_a_split(example, part, declared):
    """`load_dataset("json", data_files="shards/train/*.jsonl")`, with or without the card's
    features: one table of every record. Without them datasets types each column from the first
    file's first block and casts the rest to it, so that block must fill `traces.statements`
    (a file starts with the records that trace statements; see card.py)."""
    datasets = pytest.importorskip("datasets")
    for shards in example:
        features = datasets.Features._from_yaml_list(FEATURES[part]) if declared else None
        ds = datasets.load_dataset("json", data_files=str(shards / part / "*.jsonl"), features=features,
                                   split="train", cache_dir=str(shards.parent / f"hf-json-{declared}"))
        assert len(ds) == sum(m["records"] for rel, m in manifest_of(shards)["files"].items() if rel.startswith(part))
        assert ds.to_list() == records(shards, part)
        assert ds.features == datasets.Features._from_yaml_list(FEATURES[part])


@pytest.mark.parametrize("part", ["train", "bench"])
def test_each_file_alone_infers_the_card_types(example, part):
    """Without a schema, datasets infers each file's types: they are the card's, except that a
    list no record of the file fills (statements of concept-only patch examples) reads as a list
    of nulls."""
    datasets = pytest.importorskip("datasets")
    _, shards = example
    declared = datasets.Features._from_yaml_list(FEATURES[part])

    def agrees(inferred, want) -> bool:
        if isinstance(inferred, datasets.Value) and inferred.dtype == "null":
            return True
        if isinstance(want, dict):
            return isinstance(inferred, dict) and list(inferred) == list(want) and all(
                agrees(inferred[k], want[k]) for k in want)
        if isinstance(want, datasets.List):
            return isinstance(inferred, datasets.List) and agrees(inferred.feature, want.feature)
        return inferred == want

    for path in sorted((shards / part).glob("*.jsonl")):
        ds = datasets.load_dataset("json", data_files=str(path), split="train", cache_dir=str(shards.parent / "hf-j"))
        assert agrees(dict(ds.features), dict(declared)), (path.name, ds.features)


# --- TRL --------------------------------------------------------------------------------------------

def test_trl_sft_trainer_trains_on_the_train_split_as_written(example, tmp_path):
    """TRL reads `messages` (its conversational format) as they are: no mapping. With a chat
    template that marks the assistant turn, the loss covers exactly the assistant text."""
    datasets = pytest.importorskip("datasets")
    trl = pytest.importorskip("trl")
    from pwd_git.model.tiny import build_model, train_tokenizer

    _, shards = example
    ds = datasets.load_dataset(str(shards), split="train", cache_dir=str(shards.parent / "hf-datasets"))
    tokenizer = train_tokenizer([m["content"] for r in ds for m in r["messages"]], 400)
    tokenizer.chat_template = (
        "{% for m in messages %}{% if m['role'] == 'assistant' %}assistant: {% generation %}{{ m['content'] }}"
        "{% endgeneration %}\n{% else %}{{ m['role'] }}: {{ m['content'] }}\n{% endif %}{% endfor %}")
    model = build_model(tokenizer, {"n_layer": 1, "n_embd": 32, "n_head": 2})
    args = trl.SFTConfig(output_dir=str(tmp_path / "out"), max_steps=1, per_device_train_batch_size=4, use_cpu=True,
                         report_to=[], save_strategy="no", max_length=256, assistant_only_loss=True,
                         disable_tqdm=True)
    trainer = trl.SFTTrainer(model=model, args=args, train_dataset=ds, processing_class=tokenizer)
    assert len(trainer.train_dataset) == len(ds)
    for i in (0, next(i for i, r in enumerate(ds) if r["level"] == "patch")):
        row = trainer.train_dataset[i]
        learned = [t for t, label in zip(row["input_ids"], row["labels"], strict=True) if label != -100]
        assert tokenizer.decode(learned).strip() == ds[i]["messages"][-1]["content"]
    assert trainer.train().global_step == 1
