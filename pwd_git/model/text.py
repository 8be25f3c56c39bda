"""How records become text, shared by training and scoring so they always agree."""

from __future__ import annotations

USER_ASSISTANT_SEP = "\n"


def prompt_of(record: dict) -> str:
    """The user side of a chat record (everything the model is conditioned on)."""
    turns = [m["content"] for m in record["messages"] if m["role"] != "assistant"]
    return USER_ASSISTANT_SEP.join(turns) + USER_ASSISTANT_SEP


def answer_of(record: dict) -> str:
    return " ".join(m["content"] for m in record["messages"] if m["role"] == "assistant")


def turns_of(record: dict) -> tuple[str, str]:
    """(prompt, answer): the two pieces training and scoring tokenize separately."""
    return prompt_of(record), answer_of(record)
