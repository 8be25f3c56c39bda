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
