"""The llm backend against a real chat-completions server on 127.0.0.1: structured output and
its fallbacks, invalid answers, retries, timeouts, the cache, and the API key never shown."""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.conftest import git, run_cli, write

SECRET = "sk-test-4f2a9c1e7d"
CORPUS = "A mitochondrion is an organelle that makes ATP.\nThe mitochondrion is part of the cell.\n"
GOOD = {"concepts": [
    {"term": "mitochondrion", "type": "Organelle", "definition": "An organelle that makes ATP.", "aliases": [],
     "quote": "A mitochondrion is an organelle that makes ATP."},
    {"term": "cell", "type": "unit", "definition": "The unit of life.", "aliases": [],
     "quote": "The mitochondrion is part of the cell."},
    {"term": "ghost", "type": "thing", "definition": "Made up.", "aliases": [], "quote": "A ghost is a thing that haunts."}],
    "statements": [{"subject": "mitochondrion", "predicate": "Is part of", "object": "cell",
                    "quote": "The mitochondrion  is part of\nthe cell."}]}


class Server:
    """A chat-completions endpoint whose answers a test scripts: `answer(payload, headers)` ->
    (status, body text, extra headers) or a number of seconds to hang."""

    def __init__(self) -> None:
        self.requests: list[tuple[dict, dict]] = []
        self.answer = lambda payload, headers: (200, completion(GOOD), {})
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                payload = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.requests.append((payload, dict(self.headers)))
                reply = outer.answer(payload, dict(self.headers))
                if isinstance(reply, (int, float)):
                    time.sleep(reply)
                    return
                status, body, extra = reply
                data = body.encode()
                self.send_response(status)
                for k, v in {"Content-Type": "application/json", "Content-Length": str(len(data)), **extra}.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def completion(content: object) -> str:
    text = content if isinstance(content, str) else json.dumps(content)
    return json.dumps({"choices": [{"message": {"role": "assistant", "content": text}}]})


@pytest.fixture
def server():
    s = Server()
    yield s
    s.close()


def domain_for(tmp_path: Path, port: int, extra: str = "") -> Path:
    root = tmp_path / "dom"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    write(root, {"pwd.yaml": f"""
        name: cells
        extract:
          backend: llm
          llm:
            base_url: http://127.0.0.1:{port}/v1
            model: test-model
            api_key_env: PWD_TEST_LLM_KEY
            timeout_s: 2
            retries: 2
            backoff_s: 0.01
            concurrency: 2
        {extra}""", "corpus/cells.md": CORPUS})
    git(root, "add", "-A")
    git(root, "commit", "-qm", "corpus")
    return root


@pytest.fixture
def dom(tmp_path, server, monkeypatch):
    monkeypatch.setenv("PWD_TEST_LLM_KEY", SECRET)
    return domain_for(tmp_path, server.port)


def run_json(root: Path, caplog) -> tuple[int, dict | None, str]:
    with caplog.at_level(logging.DEBUG, logger="pwd_git"):
        result = run_cli("extract", "--format", "json", cwd=root)
    shown = result.output + caplog.text
    assert SECRET not in shown  # never in output or logs
    return result.code, (json.loads(result.out) if result.code == 0 else None), result.err


def test_structured_output_writes_nodes_whose_quotes_are_in_the_chunk(dom, server, caplog):
    code, info, _ = run_json(dom, caplog)
    assert code == 0
    assert sorted(c["id"] for c in info["concepts"]) == ["cell", "mitochondrion"]
    assert [s["id"] for s in info["statements"]] == ["mitochondrion.is-part-of.cell"]
    assert info["dropped_counts"] == {"quote-not-found": 1}  # the ghost
    payload, headers = server.requests[0]
    assert payload["response_format"]["type"] == "json_schema" and payload["model"] == "test-model"
    assert headers["Authorization"] == f"Bearer {SECRET}"
    assert SECRET not in git(dom, "show", info["branch"]) and SECRET not in "".join(
        p.read_text(errors="replace") for p in (dom / ".git" / "pwd").rglob("*") if p.is_file())
    # a re-run sends nothing and writes the same bytes
    for f in (dom / ".git" / "pwd" / "extract" / "docs").iterdir():
        f.unlink()  # only the raw answers are left: those alone must spare the requests
    sent = len(server.requests)
    code, again, _ = run_json(dom, caplog)
    assert code == 0 and len(server.requests) == sent and again["commit"] == info["commit"]


def test_a_server_without_response_format_gets_json_mode_then_plain(dom, server, caplog):
    def answer(payload, headers):
        if "response_format" in payload:
            return 400, json.dumps({"error": f"unsupported response_format {payload['response_format']['type']}"}), {}
        return 200, completion("```json\n" + json.dumps(GOOD) + "\n```"), {}

    server.answer = answer
    code, info, _ = run_json(dom, caplog)
    assert code == 0 and sorted(c["id"] for c in info["concepts"]) == ["cell", "mitochondrion"]
    modes = [p.get("response_format", {}).get("type", "none") for p, _ in server.requests]
    assert modes == ["json_schema", "json_object", "none"]


@pytest.mark.parametrize("bad", ["this is not JSON", json.dumps({"concepts": []}),  # no statements: a schema violation
                                 json.dumps({"concepts": [{"term": "x"}], "statements": []})])
def test_an_invalid_answer_is_asked_again_once(dom, server, caplog, bad):
    answers = iter([bad])
    server.answer = lambda payload, headers: (200, completion(next(answers, json.dumps(GOOD))), {})
    code, info, _ = run_json(dom, caplog)
    assert code == 0 and len(server.requests) == 2 and len(info["concepts"]) == 2
    assert "not valid" in server.requests[1][0]["messages"][-1]["content"]


def test_an_answer_that_stays_invalid_is_dropped_and_counted(dom, server, caplog):
    server.answer = lambda payload, headers: (200, completion("{broken"), {})
    code, info, _ = run_json(dom, caplog)
    assert code == 0 and info["concepts"] == [] and info["dropped_counts"] == {"schema": 1}
    assert len(server.requests) == 2  # format_retries: 1


def test_429_then_success(dom, server, caplog):
    answers = iter([(429, json.dumps({"error": "slow down"}), {"Retry-After": "0"})])
    server.answer = lambda payload, headers: next(answers, (200, completion(GOOD), {}))
    code, info, _ = run_json(dom, caplog)
    assert code == 0 and len(server.requests) == 2 and len(info["concepts"]) == 2


def test_a_server_that_keeps_failing_is_one_error_and_never_shows_the_key(dom, server, caplog):
    server.answer = lambda payload, headers: (500, json.dumps({"error": f"boom for {headers['Authorization']}"}), {})
    branches = git(dom, "branch", "--list")
    code, _, err = run_json(dom, caplog)
    assert code == 2 and "answered HTTP 500 3 times" in err and "[token]" in err
    assert len(server.requests) == 3 and git(dom, "branch", "--list") == branches


def test_a_server_that_hangs_is_cut_off_at_the_deadline(tmp_path, server, monkeypatch, caplog):
    monkeypatch.setenv("PWD_TEST_LLM_KEY", SECRET)
    root = domain_for(tmp_path, server.port)
    (root / "pwd.yaml").write_text((root / "pwd.yaml").read_text().replace("timeout_s: 2", "timeout_s: 0.3"))
    git(root, "commit", "-qam", "short timeout")
    server.answer = lambda payload, headers: 3
    start = time.monotonic()
    code, _, err = run_json(root, caplog)
    assert code == 2 and "did not answer within 0.3 s" in err and time.monotonic() - start < 2.5


def test_an_endpoint_that_is_not_there(tmp_path, monkeypatch, caplog):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again below: nothing listens there
    monkeypatch.setenv("PWD_TEST_LLM_KEY", SECRET)
    root = domain_for(tmp_path, port)
    code, _, err = run_json(root, caplog)
    assert code == 2 and "cannot reach the model server" in err


def test_a_missing_key_variable_is_a_clear_error(tmp_path, server, monkeypatch, caplog):
    monkeypatch.delenv("PWD_TEST_LLM_KEY", raising=False)
    root = domain_for(tmp_path, server.port)
    code, _, err = run_json(root, caplog)
    assert code == 2 and "PWD_TEST_LLM_KEY" in err and not server.requests
