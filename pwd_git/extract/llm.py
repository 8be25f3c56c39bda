"""The `llm` backend: any OpenAI-compatible chat-completions server (vLLM, llama.cpp, Ollama,
LM Studio, hosted APIs) extracts candidates per chunk.

- Structured output: `response_format: json_schema` with CANDIDATES_SCHEMA; a server that refuses
  it (HTTP 400/422) is asked again with `json_object`, then with no response_format; every answer
  is parsed and validated here, and an invalid one is asked again once (`format_retries`), then
  dropped and counted (`schema`).
- Transport: at most `concurrency` requests at once; 429 and 5xx are retried with exponential
  backoff (Retry-After honoured, capped); each request has one whole deadline (`timeout_s`), not
  a per-read one. A server that stays down or silent is one error, after the chunks that did
  answer were cached, so the next run resumes.
- The API key comes from the environment variable `api_key_env` names; it is sent only to
  `base_url`, never logged, printed or written (any echo of it is blanked).
- The raw answer for each chunk is cached under .git/pwd/extract/llm by (chunk hash, prompt
  version, model, parameters): a re-run on an unchanged corpus sends no request at all.
"""

from __future__ import annotations

import functools
import hashlib
import http.client
import json
import os
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from pwd_git.errors import PwdError, quote
from pwd_git.http import DeadlineExceeded, post_with_deadline

PROMPT_VERSION = "1"
MAX_ANSWER = 4 << 20
MAX_BACKOFF_S = 30.0
_STRING = {"type": "string", "minLength": 1}
CANDIDATES_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["concepts", "statements"],
    "properties": {
        "concepts": {"type": "array", "items": {
            "type": "object", "additionalProperties": False, "required": ["term", "type", "definition", "aliases", "quote"],
            "properties": {"term": _STRING, "type": _STRING, "definition": _STRING,
                           "aliases": {"type": "array", "items": _STRING}, "quote": _STRING}}},
        "statements": {"type": "array", "items": {
            "type": "object", "additionalProperties": False, "required": ["subject", "predicate", "object", "quote"],
            "properties": {"subject": _STRING, "predicate": _STRING, "object": _STRING, "quote": _STRING}}},
    },
}
SYSTEM = """You extract a knowledge base from one chunk of a document. Answer with JSON only, of this form:
{"concepts": [{"term", "type", "definition", "aliases", "quote"}], "statements": [{"subject", "predicate", "object", "quote"}]}
- concepts: the terms the chunk defines. type: a lower-case class word (organelle, enzyme, ...). definition: one
  sentence. aliases: other names the chunk gives it ([] if none).
- statements: facts relating two terms, subject and object as the terms are written; predicate: a lower-case verb
  phrase such as "is part of"{declared}.
- quote: the exact sentence of the chunk that states it, copied character for character.
- Only what the chunk states plainly: nothing hedged, negated, hypothetical or from your own knowledge."""


class LlmSettings:
    """pwd.yaml `extract.llm`, with defaults; the API key is read from the environment, never from the file."""

    def __init__(self, section: dict):
        self.base_url = str(section.get("base_url") or "").rstrip("/")
        self.model = str(section.get("model") or "")
        self.api_key_env = section.get("api_key_env")
        self.concurrency = int(section.get("concurrency", 4))
        self.timeout_s = float(section.get("timeout_s", 120))
        self.retries = int(section.get("retries", 3))
        self.backoff_s = float(section.get("backoff_s", 1.0))
        self.format_retries = int(section.get("format_retries", 1))
        self.response_format = section.get("response_format", "auto")
        self.params = {"temperature": section.get("temperature", 0), "max_tokens": int(section.get("max_tokens", 2048))}
        if not self.base_url or not self.model:
            raise PwdError("extract.backend is llm, but extract.llm.base_url and extract.llm.model are not both set",
                           location="pwd.yaml", hint="e.g. base_url: http://127.0.0.1:8000/v1, model: qwen2.5-7b-instruct")

    def key_parts(self) -> dict:
        """What a cached answer depends on besides the chunk (never the API key)."""
        return {"base_url": self.base_url, "model": self.model, "params": self.params, "prompt": PROMPT_VERSION,
                "response_format": self.response_format}

    def token(self) -> str | None:
        if not self.api_key_env:
            return None
        value = os.environ.get(str(self.api_key_env))
        if not value:
            raise PwdError(f"the environment variable {quote(str(self.api_key_env))} (extract.llm.api_key_env) is not set",
                           hint="export it, or remove api_key_env for a server that needs no key")
        return value


class Client:
    """Chat-completions requests for chunks, cached by chunk and parameters."""

    def __init__(self, settings: LlmSettings, cache_dir: Path, predicates: tuple[str, ...]):
        self.s = settings
        self.cache_dir = cache_dir
        self.secret = settings.token()
        self.predicates = predicates
        self.modes = ["json_schema", "json_object", "none"] if settings.response_format == "auto" \
            else [settings.response_format]
        self.lock = threading.Lock()
        self.requests = 0

    # -- the cache --------------------------------------------------------------------------
    def _cache_path(self, chunk_hash: str) -> Path:
        key = json.dumps({"chunk": chunk_hash, **self.s.key_parts(), "predicates": self.predicates}, sort_keys=True)
        return self.cache_dir / (hashlib.sha256(key.encode()).hexdigest()[:40] + ".json")

    def cached(self, chunk_hash: str) -> str | None:
        try:
            data = json.loads(self._cache_path(chunk_hash).read_text())
        except (OSError, ValueError):
            return None
        return data.get("content") if isinstance(data, dict) and isinstance(data.get("content"), str) else None

    def _store(self, chunk_hash: str, content: str) -> None:
        import tempfile

        self.cache_dir.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.cache_dir, prefix=".tmp-")
        with os.fdopen(fd, "w") as fh:
            json.dump({"content": content}, fh)
        os.replace(tmp, self._cache_path(chunk_hash))

    # -- requests ---------------------------------------------------------------------------
    def answers(self, chunks: list[tuple[str, str]]) -> dict[str, str]:
        """{chunk hash: raw answer} for [(hash, text)], asking the server only for uncached ones,
        at most `concurrency` at a time. The first transport failure is raised after the others finish."""
        out = {h: c for h, _ in chunks if (c := self.cached(h)) is not None}
        todo = [(h, t) for h, t in dict(chunks).items() if h not in out]
        errors: list[PwdError] = []
        with ThreadPoolExecutor(max_workers=max(1, self.s.concurrency), thread_name_prefix="pwd-llm") as pool:
            futures = {h: pool.submit(self._ask, t) for h, t in todo}
            for h, future in futures.items():
                try:
                    content = future.result()
                except PwdError as exc:
                    errors.append(exc)
                    continue
                self._store(h, content)
                out[h] = content
        if errors:
            raise errors[0]
        return out

    def _ask(self, text: str) -> str:
        """The raw content of a valid answer, or of the last invalid one after `format_retries`."""
        declared = "; declared predicates: " + ", ".join(f'"{p}"' for p in self.predicates) if self.predicates else ""
        messages = [{"role": "system", "content": SYSTEM.replace("{declared}", declared)},
                    {"role": "user", "content": text}]
        content = ""
        for _ in range(self.s.format_retries + 1):
            content = self._complete(messages)
            problem = parse_problem(content)
            if problem is None:
                return content
            messages = [*messages, {"role": "assistant", "content": content},
                        {"role": "user", "content": f"That answer is not valid: {problem}. Answer again with the JSON only."}]
        return content

    def _complete(self, messages: list[dict]) -> str:
        while True:
            mode = self.modes[0]
            payload = {"model": self.s.model, "messages": messages, **self.s.params}
            if mode == "json_schema":
                payload["response_format"] = {"type": "json_schema", "json_schema": {
                    "name": "kb_candidates", "schema": CANDIDATES_SCHEMA, "strict": True}}
            elif mode == "json_object":
                payload["response_format"] = {"type": "json_object"}
            status, body = self._post_with_retries(payload)
            if status in (400, 422) and len(self.modes) > 1 and mode == self.modes[0]:
                with self.lock:  # the server does not take this response_format: never ask it again
                    if self.modes[0] == mode:
                        self.modes.pop(0)
                continue
            if status != 200:
                raise PwdError(f"the model server answered HTTP {status}: {self._clean(body)[:200]}",
                               hint="check extract.llm.base_url and model")
            try:
                answer = json.loads(body)
                content = answer["choices"][0]["message"]["content"]
            except (ValueError, KeyError, IndexError, TypeError):
                raise PwdError(f"the model server's answer is not a chat completion: {self._clean(body)[:200]}",
                               hint="is extract.llm.base_url the OpenAI-compatible /v1 base URL?") from None
            return content if isinstance(content, str) else ""

    def _post_with_retries(self, payload: dict) -> tuple[int, str]:
        data = json.dumps(payload).encode()
        for attempt in range(self.s.retries + 1):
            status, body, retry_after = self._post(data)
            if status != 429 and status < 500:
                return status, body
            if attempt == self.s.retries:
                raise PwdError(f"the model server answered HTTP {status} {self.s.retries + 1} times: "
                               f"{self._clean(body)[:200]}",
                               hint="try again later (answers so far are cached), or raise extract.llm.retries")
            wait = retry_after if retry_after is not None else self.s.backoff_s * (2 ** attempt)
            time.sleep(min(max(wait, 0.0), MAX_BACKOFF_S))
        raise AssertionError("unreachable")

    def _post(self, data: bytes) -> tuple[int, str, float | None]:
        """(status, body, Retry-After seconds) of one POST that takes at most `timeout_s` in all."""
        headers = {"Content-Type": "application/json", "User-Agent": "pwd-git"}
        if self.secret:
            headers["Authorization"] = f"Bearer {self.secret}"
        with self.lock:
            self.requests += 1
        try:
            status, raw, answer_headers = post_with_deadline(f"{self.s.base_url}/chat/completions", data, headers,
                                                             self.s.timeout_s, MAX_ANSWER, name="pwd-llm-request")
        except DeadlineExceeded:
            raise PwdError(f"the model server at {self.s.base_url} did not answer within {self.s.timeout_s:g} s",
                           hint="is it running and loaded? allow more time with extract.llm.timeout_s") from None
        except (OSError, http.client.HTTPException) as exc:
            reason = self._clean(str(getattr(exc, "reason", exc)))
            raise PwdError(f"cannot reach the model server at {self.s.base_url}: {reason}",
                           hint="start it, or set extract.llm.base_url") from None
        retry_after = answer_headers.get("Retry-After")
        try:
            seconds = float(retry_after) if retry_after is not None else None
        except ValueError:
            seconds = None
        return status, self._clean(raw.decode(errors="replace")), seconds

    def _clean(self, text: str) -> str:
        return text.replace(self.secret, "[token]") if self.secret else text


_FENCE = re.compile(r"^\s*```(?:json)?\s*(.*?)\s*```\s*$", re.S)


def parse(content: str) -> dict | None:
    """The candidates in an answer (a ```json fence allowed), or None when it is not valid."""
    match = _FENCE.match(content)
    try:
        data = json.loads(match.group(1) if match else content)
    except ValueError:
        return None
    return data if _validator().is_valid(data) else None


def parse_problem(content: str) -> str | None:
    match = _FENCE.match(content)
    try:
        data = json.loads(match.group(1) if match else content)
    except ValueError as exc:
        return f"not JSON ({exc.msg} at character {exc.pos})"
    error = next(iter(_validator().iter_errors(data)), None)
    return None if error is None else f"{error.message[:200]} at {'/'.join(map(str, error.absolute_path)) or 'top level'}"


@functools.cache
def _validator():
    from jsonschema import Draft202012Validator

    return Draft202012Validator(CANDIDATES_SCHEMA)


def candidates(content: str) -> dict[str, list[dict]] | None:
    """An answer as the candidates merge.py reads (types lower-cased, predicates trimmed); None: invalid."""
    data = parse(content)
    if data is None:
        return None
    concepts = [{**c, "type": " ".join(c["type"].lower().split())} for c in data["concepts"]]
    statements = [{**s, "predicate": " ".join(s["predicate"].lower().split())} for s in data["statements"]]
    return {"concepts": concepts, "aliases": [], "statements": statements}
