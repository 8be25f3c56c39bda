"""User-facing errors: one clear message, a location when there is one, an exit code."""

from __future__ import annotations

import json

#: Exit codes shared by every verb (see docs/cli.md).
EXIT_OK = 0
EXIT_FAILED = 1  # the check ran and failed: invalid data, failing tests, regression
EXIT_USAGE = 2  # the tool could not run: bad arguments, not a repo, unknown revision

#: How much of a user-given value a message quotes (a 1 MB value must not flood the terminal).
QUOTE_LIMIT = 80


def quote(value: object, limit: int = QUOTE_LIMIT) -> str:
    """`value` as messages quote user data: repr for strings, JSON otherwise, cut to `limit`
    characters plus "…". Every message that echoes a user's id, value, name or revision uses it."""
    if isinstance(value, str):
        return repr(value) if len(value) <= limit else repr(value[:limit]) + "…"
    try:
        text = json.dumps(value, default=str, ensure_ascii=False)
    except (TypeError, ValueError):  # keys JSON cannot hold, or a cycle
        text = repr(value)
    return text if len(text) <= limit else text[:limit] + "…"


class PwdError(Exception):
    """An error the user can act on. Printed without a traceback unless --debug."""

    exit_code = EXIT_USAGE

    def __init__(self, message: str, *, location: str | None = None, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.location = location
        self.hint = hint

    def render(self) -> str:
        head = f"{self.location}: error: {self.message}" if self.location else f"error: {self.message}"
        return f"{head}\n  hint: {self.hint}" if self.hint else head


class DataError(PwdError):
    """The knowledge base itself is wrong (the user's data, not the invocation)."""

    exit_code = EXIT_FAILED
