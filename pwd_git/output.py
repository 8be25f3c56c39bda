"""Shared output helpers for commands: one JSON style, one --format option."""

from __future__ import annotations

import json
import os
import sys
import time

import click


def format_option(*choices: str):
    """`--format` with text first (the default) and the given machine formats."""
    return click.option("--format", "fmt", type=click.Choice(["text", *choices]), default="text", show_default=True,
                        help="Output format: text for people, " + "/".join(choices) + " for tools.")


def echo_json(data: object) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=True, default=str))


#: Seconds between plain progress lines when stderr is not a terminal (CI logs); the default is 10.
PROGRESS_SECONDS_ENV = "PWD_GIT_PROGRESS_SECONDS"


class StepProgress:
    """Training progress on stderr: on a terminal a bar with loss and ETA; elsewhere (CI, a log
    file) a plain line at a training's first step, at most every PWD_GIT_PROGRESS_SECONDS
    seconds, and at its last step, so a long run is never silent until it ends."""

    def __init__(self, enabled: bool, desc: str = "train"):
        self.enabled, self.desc, self.bar = enabled, desc, None
        self.tty = enabled and sys.stderr.isatty()
        try:
            self.interval = float(os.environ.get(PROGRESS_SECONDS_ENV, "10"))
        except ValueError:
            self.interval = 10.0
        self.start = self.last = 0.0
        self.step = 0

    def __call__(self, step: int, total: int, loss: float) -> None:
        if not self.enabled:
            return
        if self.tty:
            if self.bar is None:
                from tqdm import tqdm

                self.bar = tqdm(total=total, desc=self.desc, unit="step", leave=False, dynamic_ncols=True)
            self.bar.update(step - self.bar.n)
            self.bar.set_postfix(loss=f"{loss:.3f}", refresh=False)
            return
        now = time.monotonic()
        first = self.step == 0 or step <= self.step  # a new training (test and bisect may train several)
        self.step = step
        if first:
            self.start = now
        elif step < total and now - self.last < self.interval:
            return
        self.last = now
        elapsed = now - self.start
        eta = _clock(elapsed / step * (total - step)) if step and elapsed else "--:--"
        click.echo(f"{self.desc}: step {step}/{total} ({100 * step // max(total, 1)}%), loss {loss:.3f}, "
                   f"{_clock(elapsed)} elapsed, ETA {eta}", err=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes // 60}:{minutes % 60:02d}:{secs:02d}" if minutes >= 60 else f"{minutes:02d}:{secs:02d}"


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
