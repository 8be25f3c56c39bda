"""The embedded default model: a tiny GPT-2 built from a config, with a byte-level BPE
tokenizer trained on the domain's own shards. Nothing is downloaded, ever."""

from __future__ import annotations

from collections.abc import Iterable

DEFAULT_ARCH = {"n_layer": 2, "n_embd": 96, "n_head": 4, "n_positions": 160, "vocab_size": 1024}
EOS, PAD = "<|endoftext|>", "<|pad|>"


def train_tokenizer(texts: Iterable[str], vocab_size: int):
    """A byte-level BPE tokenizer (GPT-2 style) fitted to the domain's training text."""
    from tokenizers import ByteLevelBPETokenizer
    from transformers import PreTrainedTokenizerFast

    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(list(texts), vocab_size=vocab_size, min_frequency=2, special_tokens=[EOS, PAD],
                            show_progress=False)
    return PreTrainedTokenizerFast(tokenizer_object=bpe._tokenizer, eos_token=EOS, bos_token=EOS, pad_token=PAD,
                                   unk_token=EOS, padding_side="right")


def build_model(tokenizer, arch: dict | None = None, seed: int = 0):
    """A freshly initialised GPT-2 of `arch` sized to the tokenizer; same seed => same weights."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    cfg = {**DEFAULT_ARCH, **(arch or {})}
    config = GPT2Config(vocab_size=len(tokenizer), n_positions=cfg["n_positions"], n_embd=cfg["n_embd"],
                        n_layer=cfg["n_layer"], n_head=cfg["n_head"], bos_token_id=tokenizer.eos_token_id,
                        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
                        resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
    torch.manual_seed(seed)
    return GPT2LMHeadModel(config)
