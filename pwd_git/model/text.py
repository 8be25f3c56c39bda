"""How records become text and token ids, shared by training and scoring so they always agree.

Three formats (`rendering()` picks one per model):
- tiny: the embedded model's own plain format, `user\\n` + `answer<eos>`, no BOS;
- chat: a Hugging Face base whose tokenizer has a chat template is trained and scored through
  `tokenizer.apply_chat_template`, as TRL, LLaMA-Factory, axolotl and inference servers render it
  (training: the whole conversation; scoring: the user turn with the generation prompt, then the answer);
- plain: a Hugging Face base without a chat template: the tiny model's format after the tokenizer's
  BOS token (when it has one), with a warning (once per process) that this is a fallback.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass

log = logging.getLogger(__name__)

USER_ASSISTANT_SEP = "\n"
IGNORE = -100  # the label of a token the loss skips (prompt tokens)


def prompt_of(record: dict) -> str:
    """The user side of a chat record (everything the model is conditioned on)."""
    turns = [m["content"] for m in record["messages"] if m["role"] != "assistant"]
    return USER_ASSISTANT_SEP.join(turns) + USER_ASSISTANT_SEP


def answer_of(record: dict) -> str:
    return " ".join(m["content"] for m in record["messages"] if m["role"] == "assistant")


def turns_of(record: dict) -> tuple[str, str]:
    """(prompt, answer): the two pieces training and scoring tokenize separately."""
    return prompt_of(record), answer_of(record)


def _ids(tokenizer, text: str) -> list[int]:
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


@dataclass(frozen=True)
class Rendering:
    """One model's format (`kind`: tiny | chat | plain) and the token ids it gives a record or an item."""

    tokenizer: object
    kind: str
    bos: tuple[int, ...] = ()  # plain: the BOS every sequence starts with (when the tokenizer has one)

    def chat_ids(self, messages: list[dict], *, generation_prompt: bool) -> list[int]:
        """apply_chat_template's token ids of `messages` (chat format only)."""
        ids = self.tokenizer.apply_chat_template(messages, tokenize=True, add_generation_prompt=generation_prompt,
                                                 return_dict=False)
        return list(ids)

    def prompt_ids(self, user: str) -> list[int]:
        """What the model is conditioned on before an answer to `user`: the user turn and the
        assistant's generation prompt (chat), or the bare text after BOS (tiny, plain)."""
        if self.kind == "chat":
            return self.chat_ids([{"role": "user", "content": user}], generation_prompt=True)
        return list(self.bos) + _ids(self.tokenizer, user)

    def continuation_ids(self, choice: str) -> list[int]:
        """A benchmark choice as the continuation of `prompt_ids` (the tokens scored): after the
        generation prompt as the assistant's first words, or after a space in the plain formats."""
        return _ids(self.tokenizer, choice if self.kind == "chat" else " " + choice)

    def train_example(self, record: dict, max_length: int) -> tuple[list[int], list[int]]:
        """(input_ids, labels) of a training record: labels are IGNORE outside the answer, so only
        the assistant's tokens (with its end of turn) are learned; a true/false prompt states a
        wrong fact, which the model must not learn as text."""
        if self.kind == "chat":
            user = [m for m in record["messages"] if m["role"] != "assistant"]
            prompt = self.chat_ids(user, generation_prompt=True)
            ids = self.chat_ids([*user, {"role": "assistant", "content": answer_of(record)}], generation_prompt=False)
            masked = 0  # the longest common prefix: a template may re-tokenize across the boundary
            while masked < min(len(prompt), len(ids)) and prompt[masked] == ids[masked]:
                masked += 1
        else:
            prompt = list(self.bos) + _ids(self.tokenizer, prompt_of(record))
            ids = prompt + _ids(self.tokenizer, answer_of(record)) + [self.tokenizer.eos_token_id]
            masked = len(prompt)
        labels = [IGNORE] * masked + ids[masked:]
        return ids[:max_length], labels[:max_length]


@functools.cache
def _warn_plain_fallback() -> None:
    log.warning("the base model's tokenizer has no chat template: records are trained and scored as plain "
                "`prompt\\nanswer<eos>` text after its BOS token (docs/training.md, \"Text format\")")


def rendering(tokenizer, *, tiny: bool) -> Rendering:
    """The format a model is trained and scored in (module docstring); warns once per process
    when a Hugging Face base falls back to plain text."""
    if tiny:
        return Rendering(tokenizer, "tiny")
    if getattr(tokenizer, "chat_template", None):
        return Rendering(tokenizer, "chat")
    _warn_plain_fallback()
    bos = getattr(tokenizer, "bos_token_id", None)
    return Rendering(tokenizer, "plain", () if bos is None else (bos,))
