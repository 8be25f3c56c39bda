"""Pull requests through a forge's REST API (GitHub first; base URL configurable).

The token comes from GITHUB_TOKEN or GH_TOKEN and goes only to the API it belongs to:
api.github.com for a github.com remote, or the API configured with PWD_GIT_FORGE_API /
`git config pwd.forge.api` (GitHub Enterprise: https://HOST[:PORT]/api/v3). A remote on any
other host gets no token: we push, print the compare URL and leave the body in a file, so a
person can open the PR by hand. The token is never printed or logged, even where a server
repeats it back, and the whole request has one deadline, not one per read.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import urllib.parse
import urllib.request
from dataclasses import dataclass

from pwd_git.errors import PwdError, quote
from pwd_git.git import Repo, config_get, remote_url, run_git
from pwd_git.http import DeadlineExceeded, post_with_deadline

GITHUB = "github.com"
GITHUB_API = "https://api.github.com"
DEFAULT_TIMEOUT_S = 30.0  # the whole request: connect, send, every read (PWD_GIT_FORGE_TIMEOUT, pwd.forge.timeout)
MAX_ANSWER = 1 << 20  # a PR answer is a few kB
_SCP = re.compile(r"(?:[^@/]+@)?(?P<host>[^/:]+):(?P<path>(?!/).+)")  # git@host:owner/name.git


@dataclass(frozen=True)
class ForgeRepo:
    host: str  # the remote's host, with its port when the remote is http(s) and names one
    owner: str
    name: str
    web: str  # scheme://host[:port] of the forge's web pages
    api: str | None  # the REST API the token may go to; None: none is known for this host
    timeout_s: float = DEFAULT_TIMEOUT_S

    @property
    def compare_url(self) -> str:
        return f"{self.web}/{self.owner}/{self.name}/compare"


def _parse_remote(url: str) -> tuple[str, str, str, str] | None:
    """(host[:port], web base, owner, name) of an http(s), ssh or scp-style remote URL."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme in ("http", "https", "ssh", "git") and parts.hostname:
        try:
            port = parts.port
        except ValueError:
            return None
        host = parts.hostname if port is None or parts.scheme not in ("http", "https") else f"{parts.hostname}:{port}"
        web = f"{parts.scheme if parts.scheme in ('http', 'https') else 'https'}://{host}"
        path = parts.path
    elif "://" not in url and (match := _SCP.fullmatch(url)):
        host, path = match["host"], match["path"]
        web = f"https://{host}"
    else:
        return None
    segments = path.strip("/").removesuffix(".git").split("/")
    if len(segments) != 2 or not all(segments):
        return None
    return host, web, segments[0], segments[1]


def forge_repo(repo: Repo, remote: str) -> ForgeRepo | None:
    """owner/name from `pwd.forge.repo` or the remote URL; the API from PWD_GIT_FORGE_API or
    `pwd.forge.api`, else api.github.com for github.com only; None: no repository to name."""
    parsed = _parse_remote(remote_url(repo, remote) or "")
    host, web, owner, name = parsed or (GITHUB, f"https://{GITHUB}", "", "")
    override = config_get(repo, "pwd.forge.repo")
    if override and "/" in override:
        owner, name = override.split("/", 1)
    elif parsed is None:
        return None
    configured = os.environ.get("PWD_GIT_FORGE_API") or config_get(repo, "pwd.forge.api")
    if configured:
        api_parts = urllib.parse.urlsplit(configured)
        if api_parts.scheme not in ("http", "https") or not api_parts.hostname:
            raise PwdError(f"the forge API {configured!r} is not an http(s) URL",
                           hint="set pwd.forge.api / PWD_GIT_FORGE_API to e.g. https://ghe.example.com/api/v3")
        api: str | None = configured.rstrip("/")
    else:
        api = GITHUB_API if host == GITHUB else None
    return ForgeRepo(host, owner, name, web, api, request_timeout(repo))


def request_timeout(repo: Repo) -> float:
    """Seconds one API request may take in all, from PWD_GIT_FORGE_TIMEOUT or `pwd.forge.timeout`."""
    raw = os.environ.get("PWD_GIT_FORGE_TIMEOUT") or config_get(repo, "pwd.forge.timeout")
    if not raw:
        return DEFAULT_TIMEOUT_S
    try:
        seconds = float(raw)
    except ValueError:
        seconds = 0.0
    if not 0 < seconds < float("inf"):
        raise PwdError(f"the forge timeout {raw!r} is not a positive number of seconds",
                       hint="set PWD_GIT_FORGE_TIMEOUT / pwd.forge.timeout to e.g. 30")
    return seconds


def token() -> str | None:
    return os.environ.get("GITHUB_TOKEN") or os.environ.get("GH_TOKEN") or None


def push_branch(repo: Repo, remote: str, branch: str) -> None:
    proc = run_git(["push", "--quiet", remote, f"refs/heads/{branch}:refs/heads/{branch}"], repo.top, check=False)
    if proc.returncode != 0:
        detail = proc.stderr.decode(errors="replace").strip().splitlines()
        raise PwdError(f"the remote {quote(remote)} rejected the push of {branch}: {detail[-1] if detail else '?'}",
                       hint=f"the branch is still here; push it yourself with `git push {remote} {branch}`")


def publish(repo: Repo, remote: str, branch: str, base: str, title: str, body: str, say) -> str | None:
    """Push `branch` to `remote` and open a pull request into `base`; `say` tells each step. The
    PR's URL, or None when it must be opened by hand (what to do was said)."""
    if remote_url(repo, remote) is None:
        say(f"no remote {quote(remote)}: open the pull request by hand after pushing {branch}")
        return None
    push_branch(repo, remote, branch)
    say(f"pushed {branch} to {remote}")
    where = forge_repo(repo, remote)
    secret = token()
    if where is None:
        say("the remote is not a forge repository: open the pull request by hand")
        return None
    if where.api is None or secret is None:
        why = "no GITHUB_TOKEN or GH_TOKEN" if where.api else \
            f"no forge API is configured for {where.host} (set pwd.forge.api to send it the token)"
        say(f"{why}: open it at {where.compare_url}/{base}...{branch}?expand=1")
        return None
    url = create_pull_request(where, secret, head=branch, base=base, title=title, body=body)
    say(f"opened {url}")
    return url


def create_pull_request(forge: ForgeRepo, secret: str, *, head: str, base: str, title: str, body: str) -> str:
    """POST /repos/{owner}/{repo}/pulls on the forge's API; returns the PR's html_url."""
    if forge.api is None:
        raise PwdError(f"no forge API is configured for {forge.host}, so the token is not sent there",
                       hint="for GitHub Enterprise: git config pwd.forge.api https://HOST[:PORT]/api/v3")
    status, raw = _post(f"{forge.api}/repos/{forge.owner}/{forge.name}/pulls",
                        json.dumps({"title": title, "head": head, "base": base, "body": body}).encode(),
                        {"Authorization": f"Bearer {secret}", "Accept": "application/vnd.github+json",
                         "X-GitHub-Api-Version": "2022-11-28", "Content-Type": "application/json",
                         "User-Agent": "pwd-git"}, forge.timeout_s, forge.api)
    text = raw.decode(errors="replace").replace(secret, "[token]")  # before any cut: no part of it survives
    try:
        answer = json.loads(text or "null")
    except ValueError:
        raise PwdError(f"the forge answered HTTP {status} with something that is not JSON: {quote(text)}",
                       hint="is pwd.forge.api the REST API's base URL?") from None
    if status == 201 and isinstance(answer, dict) and answer.get("html_url"):
        return str(answer["html_url"])
    message = str(answer.get("message", ""))[:200] if isinstance(answer, dict) else ""
    details = [str(e.get("message", ""))[:200] for e in (answer.get("errors") or []) if isinstance(e, dict)] \
        if isinstance(answer, dict) and isinstance(answer.get("errors"), list) else []
    if status == 401:
        raise PwdError(f"the forge rejected the token (401 {message})".rstrip(),
                       hint="check GITHUB_TOKEN / GH_TOKEN: it needs pull-request write access to the repository")
    if status == 422:
        text = "; ".join(d for d in details if d) or message
        raise PwdError(f"the forge refused the pull request (422): {text}",
                       hint="a pull request for this branch may already exist; see the forge")
    raise PwdError(f"the forge answered HTTP {status}: {message or 'no message'}")


def _post(url: str, payload: bytes, headers: dict[str, str], timeout_s: float, api: str) -> tuple[int, bytes]:
    """(status, body) of one POST that takes at most `timeout_s` in all (pwd_git.http)."""
    try:
        status, body, _ = post_with_deadline(url, payload, headers, timeout_s, MAX_ANSWER, name="pwd-forge-request")
    except DeadlineExceeded:
        raise PwdError(f"the forge at {api} did not answer within {timeout_s:g} s",
                       hint="try again later, or allow more time with PWD_GIT_FORGE_TIMEOUT / pwd.forge.timeout") from None
    except (OSError, http.client.HTTPException) as exc:  # URLError is an OSError
        raise PwdError(f"cannot reach the forge at {api}: {getattr(exc, 'reason', exc)}",
                       hint="check the network, or set pwd.forge.api / PWD_GIT_FORGE_API") from None
    return status, body
