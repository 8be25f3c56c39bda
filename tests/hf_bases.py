"""Tiny random-weight Hugging Face bases built from a config, with a locally trained tokenizer:
what a user's Llama or Qwen2 checkpoint looks like to pwd-git, without a download."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import MACHINES, PARTS

#: Qwen2's ChatML template, trimmed to what the records use (no tools, no default system turn).
CHATML = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
          "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
SPECIALS = ["<unk>", "<s>", "</s>", "<|im_start|>", "<|im_end|>"]


def chat_tokenizer(template: str | None = CHATML, bos: bool = True):
    """A byte-level BPE tokenizer fitted to the bikes domain's words, with a chat template (or none)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE(unk_token="<unk>"))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    words = [p.replace("-", " ") for p in PARTS + MACHINES]
    text = [f"What is {w}? The {w} is a component used in small vehicles, part of a human-powered vehicle."
            for w in words] * 4
    bpe.train_from_iterator(text + ["user assistant True or false Fill in the blank Quiz"] * 4,
                            trainers.BpeTrainer(vocab_size=400, special_tokens=SPECIALS,
                                                initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, bos_token="<s>" if bos else None,
                                        eos_token="<|im_end|>" if template else "</s>", unk_token="<unk>",
                                        pad_token="<unk>")
    if template:
        tokenizer.chat_template = template
    return tokenizer


def save_base(path: Path, template: str | None = CHATML, seed: int = 0) -> None:
    """A one-layer Qwen2 (with a chat template) or Llama (without) saved as `save_pretrained` does."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

    tokenizer = chat_tokenizer(template)
    shape = {"vocab_size": len(tokenizer), "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1,
             "num_attention_heads": 2, "num_key_value_heads": 2, "max_position_embeddings": 256,
             "bos_token_id": tokenizer.bos_token_id, "eos_token_id": tokenizer.eos_token_id,
             "pad_token_id": tokenizer.pad_token_id}
    torch.manual_seed(seed)
    model = Qwen2ForCausalLM(Qwen2Config(**shape)) if template else LlamaForCausalLM(LlamaConfig(**shape))
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
