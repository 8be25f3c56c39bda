"""Shared output helpers for commands: one JSON style, one --format option."""

from __future__ import annotations

import json

import click


def format_option(*choices: str):
    """`--format` with text first (the default) and the given machine formats."""
    return click.option("--format", "fmt", type=click.Choice(["text", *choices]), default="text", show_default=True,
                        help="Output format: text for people, " + "/".join(choices) + " for tools.")


def echo_json(data: object) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=True, default=str))


class StepProgress:
    """A progress bar with loss and ETA for training (stderr, only on a terminal)."""

    def __init__(self, enabled: bool, desc: str = "train"):
        self.enabled, self.desc, self.bar = enabled, desc, None

    def __call__(self, step: int, total: int, loss: float) -> None:
        if not self.enabled:
            return
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(total=total, desc=self.desc, unit="step", leave=False, dynamic_ncols=True)
        self.bar.update(step - self.bar.n)
        self.bar.set_postfix(loss=f"{loss:.3f}", refresh=False)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def log_to_stderr(enabled: bool):
    def log(message: str) -> None:
        if enabled:
            click.echo(message, err=True)

    return log


def item_line(item: dict, width: int = 70) -> str:
    """One benchmark item for people: level, short id, the YAML node it tests, question, answer.
    Takes a shards item (answer = choice index) or a report's summary of one (answer = text);
    a control item in a report is known by its id alone."""
    if "question" not in item:
        return f"{item['level']} {item['id']}"
    answer = item["answer"] if isinstance(item["answer"], str) else item["choices"][item["answer"]]
    question = " ".join(item["question"].split())
    return f"{item['level']} {item['id'][:12]}  {item['source']}  {question[:width]}  [{answer}]"
