"""Train/test settings from pwd.yaml with defaults, and the run key that names a result."""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

from pwd_git.model.base import identity

TINY = "tiny"
#: The version of what equal settings train (the loop's random draws, the tiny model's init and
#: noise): part of every run and model key, so nothing trained before a change is reused after it.
TRAINING_RECIPE = 2

_TINY_DEFAULTS = {"epochs": None, "lr": 2e-3, "batch_size": 16, "max_length": 160}
#: The tiny model's epochs when pwd.yaml sets none ("auto", `auto_epochs`): TINY_MAX_EPOCHS passes
#: over a small KB, and about TINY_RECORD_PASSES records seen in all over a large one, never
#: fewer than TINY_MIN_EPOCHS passes. Forty passes over a 6k-record KB took 7-11 minutes on 2
#: cores and recalled less than 14 (docs/performance.md, "epochs and KB size").
TINY_MAX_EPOCHS = 40
TINY_RECORD_PASSES = 80_000
TINY_MIN_EPOCHS = 12
#: Continue mode's default epochs, as a share of `epochs`: a fine-tune from a model that knows
#: the rest of the KB, over all of it again (full replay), needs a fraction of a scratch run;
#: more passes over a small patch move the model's choice priors and break passing items.
CONTINUE_SHARE = 0.25
#: Continue mode's default learning rate, as a share of `lr`: a fine-tune moves less than a
#: training from scratch (fewer items it already passed break).
CONTINUE_LR_SHARE = 0.5
#: Continue mode's default weight of the fine-tune when it is averaged with the parent model it
#: started from (train/mix.py, WiSE-FT); 1 keeps the fine-tune as it is.
CONTINUE_MIX = 0.85
_HF_DEFAULTS = {"epochs": 3, "lr": 2e-4, "batch_size": 8, "max_length": 512}
LORA_DEFAULTS = {"r": 16, "alpha": 32, "dropout": 0.05, "target_modules": "all-linear"}
#: Settings only the Hugging Face trainer reads: the tiny model's keys (and run keys) leave them out.
_HF_ONLY = ("precision", "gradient_accumulation_steps", "gradient_checkpointing", "quantization",
            "checkpoint_steps", "resume")
#: pwd.yaml's `train` keys of the Hugging Face trainer, with their types.
_HF_TRAIN_KEYS = {"precision": str, "gradient_accumulation_steps": int, "gradient_checkpointing": bool,
                  "checkpoint_steps": int, "resume": bool}
#: Settings only continue mode reads: a scratch run's key leaves them out.
_CONTINUE_ONLY = ("replay_ratio", "continue_epochs", "continue_lr", "continue_mix")
#: Settings that do not change the trained weights (given determinism): not part of any key.
_NOT_KEYED = ("threads", "base_id", "checkpoint_steps", "resume")


@dataclass(frozen=True)
class TrainSettings:
    base: str  # model.base as written in pwd.yaml
    base_id: str  # what that base is (model.base.identity): equal for two spellings, new for new weights
    mode: str  # scratch | continue
    epochs: int | None  # None: the tiny model's `auto_epochs` for the records trained on (`for_records`)
    lr: float
    batch_size: int
    max_length: int
    seed: int
    threads: int
    replay_ratio: float | None  # continue mode: old records per new one; None replays them all
    continue_epochs: int | None  # continue mode: epochs over the new records and the replay (None: a share of epochs)
    continue_lr: float  # continue mode: peak learning rate
    continue_mix: float  # continue mode: the fine-tune's weight against the parent's (1: no averaging)
    arch: dict = field(default_factory=dict)  # tiny model architecture overrides
    lora: dict = field(default_factory=dict)  # a Hugging Face base: {} = full fine-tune (model.lora: false)
    precision: str = "fp32"  # fp32 | bf16 | fp16 (mixed precision of the Hugging Face trainer)
    gradient_accumulation_steps: int = 1
    gradient_checkpointing: bool = False
    quantization: str | None = None  # "4bit": QLoRA (bitsandbytes, CUDA only)
    checkpoint_steps: int = 500  # trainer checkpoints every N optimizer steps (0: none)
    resume: bool = True  # continue an interrupted training of the same model key from its last checkpoint

    def for_records(self, records: int) -> TrainSettings:
        """These settings with the epochs that pwd.yaml leaves to the tool fixed for a training
        set of `records` records (`auto_epochs`); the keys keep "auto", so a KB that grows keeps
        its run key."""
        epochs = auto_epochs(records) if self.epochs is None else self.epochs
        continue_epochs = continue_share(epochs) if self.continue_epochs is None else self.continue_epochs
        return replace(self, epochs=epochs, continue_epochs=continue_epochs)

    @property
    def is_tiny(self) -> bool:
        return self.base == TINY

    @property
    def label(self) -> str:
        """The readable part of the run key: 'tiny', the hub id, or the local model's folder name."""
        local = self.base_id.startswith(("local:", "missing:"))
        return (Path(self.base).name or self.base) if local else self.base

    def config_hash(self) -> str:
        """Everything that changes the trained weights: the base by identity, not by spelling
        (threads, checkpoints and resuming do not, given determinism; nor do continue mode's settings
        in scratch mode). The tiny model's identity is its name, and its keys leave out the Hugging
        Face trainer's settings."""
        skip = _NOT_KEYED + (_HF_ONLY if self.is_tiny else ()) + (_CONTINUE_ONLY if self.mode == "scratch" else ())
        data = {k: v for k, v in asdict(self).items() if k not in skip}
        data["base"] = self.base_id
        data["recipe"] = TRAINING_RECIPE
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


#: Where each weight-changing setting is written in pwd.yaml (for messages).
_YAML_NAMES = {"base": "model.base", "base_id": "model.base (its files)", "arch": "model.tiny", "lora": "model.lora",
               "quantization": "model.quantization"}


def changed_settings(old: TrainSettings, new: TrainSettings) -> list[str]:
    """The pwd.yaml settings that differ between two runs and change the trained weights."""
    if old.config_hash() == new.config_hash():
        return []
    names = []
    for f in fields(TrainSettings):
        unkeyed = f.name in _NOT_KEYED and f.name != "base_id"  # base_id is keyed, as the base
        scratch_only = f.name in _CONTINUE_ONLY and "scratch" == old.mode == new.mode
        if unkeyed or scratch_only or getattr(old, f.name) == getattr(new, f.name):
            continue
        if (f.name == "base" and old.base_id == new.base_id) or (f.name == "base_id" and old.base != new.base):
            continue  # another spelling of the same model; a new base is named once, as model.base
        names.append(_YAML_NAMES.get(f.name, f"train.{f.name}"))
    return names


def train_settings(config: dict, root: Path) -> TrainSettings:
    """The settings of a pwd.yaml; a relative local `model.base` is relative to the domain `root`."""
    model = config.get("model") or {}
    train = config.get("train") or {}
    base = str(model.get("base", TINY))
    defaults = _TINY_DEFAULTS if base == TINY else _HF_DEFAULTS
    epochs = train.get("epochs", "auto")
    epochs = defaults["epochs"] if epochs == "auto" else int(epochs)  # the tiny model's auto is None: `auto_epochs`
    lr = float(train.get("lr", defaults["lr"]))
    replay = train.get("replay_ratio")
    # the Hugging Face trainer's settings, where pwd.yaml sets them (their defaults are TrainSettings')
    hf = {} if base == TINY else {k: kind(train[k]) for k, kind in _HF_TRAIN_KEYS.items() if k in train}
    if base != TINY and model.get("quantization") not in (None, "none"):
        hf["quantization"] = str(model["quantization"])
    return TrainSettings(
        base=base,
        base_id=base if base == TINY else identity(base, root),
        mode=str(train.get("mode", "scratch")),
        epochs=epochs,
        lr=lr,
        batch_size=int(train.get("batch_size", defaults["batch_size"])),
        max_length=int(train.get("max_length", defaults["max_length"])),
        seed=int(train.get("seed", 0)),
        threads=int(train.get("threads", 1)),
        replay_ratio=None if replay is None else float(replay),
        continue_epochs=(int(train["continue_epochs"]) if "continue_epochs" in train
                         else None if epochs is None else continue_share(epochs)),
        continue_lr=float(train.get("continue_lr", lr * CONTINUE_LR_SHARE)),
        continue_mix=float(train.get("continue_mix", CONTINUE_MIX)),
        arch=dict(model.get("tiny") or {}) if base == TINY else {},
        lora={} if base == TINY or model.get("lora") is False else {**LORA_DEFAULTS, **_lora_overrides(model)},
        **hf,
    )


def continue_share(epochs: int) -> int:
    """Continue mode's default epochs: CONTINUE_SHARE of a scratch run's."""
    return max(1, round(epochs * CONTINUE_SHARE))


def auto_epochs(records: int) -> int:
    """The tiny model's passes over `records` training records when pwd.yaml sets no `train.epochs`."""
    return max(TINY_MIN_EPOCHS, min(TINY_MAX_EPOCHS, math.ceil(TINY_RECORD_PASSES / max(1, records))))


def _lora_overrides(model: dict) -> dict:
    """model.lora as written: a mapping of overrides, or `true` / absent for the defaults."""
    lora = model.get("lora")
    return dict(lora) if isinstance(lora, dict) else {}


@dataclass(frozen=True)
class TestSettings:
    thresholds: dict
    alpha: float
    baseline: str | None
    control: str | None
    batch_size: int


def test_settings(config: dict) -> TestSettings:
    test = config.get("test") or {}
    return TestSettings(thresholds=dict(test.get("thresholds") or {}), alpha=float(test.get("alpha", 0.05)),
                        baseline=test.get("baseline"), control=test.get("control"),
                        batch_size=int(test.get("batch_size", 64)))


def run_key(settings: TrainSettings) -> str:
    """Names a (model, training config) pair: results with equal run key and KB tree are interchangeable."""
    label = settings.label
    return f"{label if len(label) <= 40 else label[-40:]}@{settings.config_hash()}"
