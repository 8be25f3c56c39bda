"""One HTTP POST with a whole-request deadline: the model server (extract/llm.py) and the forge
(repair/forge.py) both send a secret in a header, so both need the same two guarantees.

- A socket timeout bounds each read only, so a server sending a byte every few seconds would
  hold us for as long as it likes: the exchange runs in a daemon thread that we stop waiting for
  at the deadline (the thread is abandoned; it holds nothing of the caller's).
- Redirects are not followed: one would carry the Authorization header to wherever it points.
"""

from __future__ import annotations

import threading
import urllib.error
import urllib.request
from email.message import Message


class DeadlineExceeded(Exception):
    """No complete answer within the deadline (or the socket timed out just before it)."""


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None  # answered as is: the caller sees the 3xx


def post_with_deadline(url: str, payload: bytes, headers: dict[str, str], timeout_s: float, max_bytes: int,
                       *, name: str = "pwd-http") -> tuple[int, bytes, Message]:
    """(status, at most `max_bytes` of the body, headers) of one POST that takes at most
    `timeout_s` in all; an HTTP error status is an answer, not an exception. Raises
    DeadlineExceeded at the deadline, and the transport's own OSError / HTTPException (URLError
    is an OSError) when the server cannot be reached."""
    request = urllib.request.Request(url, data=payload, method="POST", headers=headers)
    opener = urllib.request.build_opener(_NoRedirect)
    outcome: list = []

    def exchange() -> None:
        try:
            with opener.open(request, timeout=timeout_s) as response:
                outcome.append((response.status, response.read(max_bytes), response.headers))
        except urllib.error.HTTPError as exc:
            outcome.append((exc.code, exc.read(max_bytes), exc.headers))
        except BaseException as exc:  # handed to the calling thread, which decides
            outcome.append(exc)

    worker = threading.Thread(target=exchange, name=name, daemon=True)
    worker.start()
    worker.join(timeout_s)
    if worker.is_alive() or isinstance(getattr(outcome[0], "reason", outcome[0]), TimeoutError):
        raise DeadlineExceeded(f"no answer from {url} within {timeout_s:g} s")
    result = outcome[0]
    if isinstance(result, BaseException):
        raise result
    return result
