"""The embedded default model: a tiny decoder-only transformer built from a config, with a
byte-level BPE tokenizer trained on the domain's own shards. Nothing is downloaded, ever.

The blocks are GPT-2-sized but Llama-shaped (rotary positions, RMSNorm, SwiGLU). Rotary
positions are relative, so a fact learned as "X is composed of Y" at the start of an answer
is still recalled when the same words sit mid-sentence in a benchmark question; with GPT-2's
absolute position embeddings a model this small mostly memorises where the words stood.
"""

from __future__ import annotations

from collections.abc import Iterable

DEFAULT_ARCH = {"n_layer": 2, "n_embd": 96, "n_head": 4, "n_positions": 256, "vocab_size": 1024}
#: Share of the training records that get random tokens before their prompt each epoch
#: (pwd_git.train.loop.with_prefix_noise): the benchmark asks in other words than the templates.
PREFIX_NOISE = 0.5
EOS, PAD = "<|endoftext|>", "<|pad|>"


def train_tokenizer(texts: Iterable[str], vocab_size: int):
    """A byte-level BPE tokenizer (GPT-2 style) fitted to the domain's training text.

    Every word is encoded in its space-prefixed form, also at the start of a turn, so a
    term has one spelling in tokens whether it opens an answer or follows other words."""
    from tokenizers import ByteLevelBPETokenizer
    from transformers import PreTrainedTokenizerFast

    bpe = ByteLevelBPETokenizer(add_prefix_space=True)
    bpe.train_from_iterator(list(texts), vocab_size=vocab_size, min_frequency=2, special_tokens=[EOS, PAD],
                            show_progress=False)
    return PreTrainedTokenizerFast(tokenizer_object=bpe._tokenizer, eos_token=EOS, bos_token=EOS, pad_token=PAD,
                                   unk_token=EOS, padding_side="right")


def build_model(tokenizer, arch: dict | None = None, seed: int = 0):
    """A freshly initialised model of `arch` sized to the tokenizer; same seed => same weights."""
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = {**DEFAULT_ARCH, **(arch or {})}
    inner = int(cfg.get("n_inner") or 4 * cfg["n_embd"])
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=cfg["n_embd"], intermediate_size=inner,
                         num_hidden_layers=cfg["n_layer"], num_attention_heads=cfg["n_head"],
                         num_key_value_heads=cfg["n_head"], max_position_embeddings=cfg["n_positions"],
                         bos_token_id=tokenizer.eos_token_id, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id, tie_word_embeddings=True)
    model = LlamaForCausalLM(config)
    keyed_init(model, tokenizer, seed, config.initializer_range)
    return model


def keyed_init(model, tokenizer, seed: int, std: float) -> None:
    """Llama's initialisation (normal weights, unit norms, a zero pad row), with each matrix drawn
    from the seed and its name and each embedding row from the seed and its token's spelling.
    Drawn from one stream instead, a vocabulary that is one token longer, or ordered differently
    after a one-statement edit (the BPE merges shift), would re-roll every weight."""
    import hashlib

    import torch

    def generator(key: str):
        digest = hashlib.sha256(f"{seed}\0{key}".encode()).digest()
        return torch.Generator().manual_seed(int.from_bytes(digest[:8], "big") >> 1)

    embeddings = model.get_input_embeddings().weight
    with torch.no_grad():
        for name, param in model.named_parameters():
            if param.dim() == 2 and param is not embeddings:
                param.normal_(0.0, std, generator=generator(name))
        for token, row in tokenizer.get_vocab().items():
            if row == tokenizer.pad_token_id:
                embeddings[row].zero_()
            else:
                embeddings[row].normal_(0.0, std, generator=generator("token " + token))
