"""Pull requests (GitHub) and merge requests (GitLab, API v4) through a forge's REST API.

The forge's kind is github for github.com, gitlab for gitlab.com (or a host whose name says gitlab),
else what PWD_GIT_FORGE_KIND / `git config pwd.forge.kind` says. The token (GITHUB_TOKEN or
GH_TOKEN for GitHub, GITLAB_TOKEN for GitLab) goes only to the API it belongs to:
api.github.com or gitlab.com/api/v4 for those hosts, the API configured with PWD_GIT_FORGE_API /
`git config pwd.forge.api`, or, where the kind is configured, the remote's own host
(https://HOST[:PORT]/api/v3 for GitHub Enterprise, /api/v4 for GitLab). Settings are read from
git config and the environment only, never from pwd.yaml: the repository's content must not
decide where a token goes. A remote on any other host gets no token: we push, print the URL that
opens the request by hand and leave the body in a file. The token is never printed or logged,
even where a server repeats it back, and the whole request has one deadline, not one per read.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import urllib.parse
from dataclasses import dataclass

from pwd_git.errors import PwdError, quote
from pwd_git.git import Repo, config_get, remote_url, run_git
from pwd_git.http import DeadlineExceeded, post_with_deadline

GITHUB = "github.com"
GITHUB_API = "https://api.github.com"
GITLAB = "gitlab.com"
KINDS = ("github", "gitlab")
KNOWN_APIS = {GITHUB: ("github", GITHUB_API), GITLAB: ("gitlab", f"https://{GITLAB}/api/v4")}
OWN_API_PATH = {"github": "/api/v3", "gitlab": "/api/v4"}  # under the remote's web base, where the kind is configured
TOKEN_VARIABLES = {"github": ("GITHUB_TOKEN", "GH_TOKEN"), "gitlab": ("GITLAB_TOKEN",)}
DEFAULT_TIMEOUT_S = 30.0  # the whole request: connect, send, every read (PWD_GIT_FORGE_TIMEOUT, pwd.forge.timeout)
MAX_ANSWER = 1 << 20  # a PR answer is a few kB
_SCP = re.compile(r"(?:[^@/]+@)?(?P<host>[^/:]+):(?P<path>(?!/).+)")  # git@host:owner/name.git


@dataclass(frozen=True)
class ForgeRepo:
    host: str  # the remote's host, with its port when the remote is http(s) and names one
    owner: str  # GitLab: the whole namespace, subgroups included (group/subgroup)
    name: str
    web: str  # scheme://host[:port] of the forge's web pages
    api: str | None  # the REST API the token may go to; None: none is known for this host
    timeout_s: float = DEFAULT_TIMEOUT_S
    kind: str = "github"  # "github" | "gitlab": which API and which web URLs

    @property
    def compare_url(self) -> str:
        return f"{self.web}/{self.owner}/{self.name}/compare"

    @property
    def request_word(self) -> str:
        return "merge request" if self.kind == "gitlab" else "pull request"

    def open_by_hand_url(self, head: str, base: str) -> str:
        """The web page where a person opens the request from `head` into `base`."""
        if self.kind == "gitlab":
            query = urllib.parse.urlencode({"merge_request[source_branch]": head, "merge_request[target_branch]": base})
            return f"{self.web}/{self.owner}/{self.name}/-/merge_requests/new?{query}"
        return f"{self.compare_url}/{base}...{head}?expand=1"


def _parse_remote(url: str) -> tuple[str, str, list[str]] | None:
    """(host[:port], web base, path segments) of an http(s), ssh or scp-style remote URL."""
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
    if not all(segments):
        return None
    return host, web, segments


def forge_kind(repo: Repo, host: str) -> tuple[str, bool]:
    """(kind, whether it was configured): PWD_GIT_FORGE_KIND / `pwd.forge.kind`, else gitlab for
    gitlab.com and hosts whose name says gitlab, else github."""
    configured = os.environ.get("PWD_GIT_FORGE_KIND") or config_get(repo, "pwd.forge.kind")
    if configured:
        if configured.lower() not in KINDS:
            raise PwdError(f"the forge kind {configured!r} is not one of {', '.join(KINDS)}",
                           hint="set pwd.forge.kind / PWD_GIT_FORGE_KIND to github (GitHub, GitHub Enterprise) or gitlab")
        return configured.lower(), True
    return ("gitlab" if "gitlab" in host else "github"), False  # a guess for URLs only: no token follows it


def forge_repo(repo: Repo, remote: str) -> ForgeRepo | None:
    """owner/name from `pwd.forge.repo` or the remote URL (GitLab: any depth of subgroups); the
    API from PWD_GIT_FORGE_API or `pwd.forge.api`, else the known API of github.com and gitlab.com,
    else the remote host's own API where the kind is configured; None: no repository to name."""
    parsed = _parse_remote(remote_url(repo, remote) or "")
    host, web, segments = parsed or (GITHUB, f"https://{GITHUB}", [])
    kind, kind_configured = forge_kind(repo, host)
    override = config_get(repo, "pwd.forge.repo")
    if override and "/" in override:
        segments = override.strip("/").split("/")
    elif parsed is None:
        return None
    if len(segments) < 2 or not all(segments) or (kind == "github" and len(segments) != 2):
        return None
    configured = os.environ.get("PWD_GIT_FORGE_API") or config_get(repo, "pwd.forge.api")
    if configured:
        api_parts = urllib.parse.urlsplit(configured)
        if api_parts.scheme not in ("http", "https") or not api_parts.hostname:
            raise PwdError(f"the forge API {configured!r} is not an http(s) URL",
                           hint="set pwd.forge.api / PWD_GIT_FORGE_API to e.g. https://ghe.example.com/api/v3")
        api: str | None = configured.rstrip("/")
    elif host in KNOWN_APIS and KNOWN_APIS[host][0] == kind:
        api = KNOWN_APIS[host][1]
    else:
        api = f"{web}{OWN_API_PATH[kind]}" if kind_configured else None
    return ForgeRepo(host, "/".join(segments[:-1]), segments[-1], web, api, request_timeout(repo), kind)


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


def token(kind: str = "github") -> str | None:
    """The forge's token from the environment: a GitHub token never goes to GitLab, nor back."""
    return next((os.environ[v] for v in TOKEN_VARIABLES[kind] if os.environ.get(v)), None)


def push_branch(repo: Repo, remote: str, branch: str) -> None:
    proc = run_git(["push", "--quiet", remote, f"refs/heads/{branch}:refs/heads/{branch}"], repo.top, check=False)
    if proc.returncode != 0:
        detail = proc.stderr.decode(errors="replace").strip().splitlines()
        raise PwdError(f"the remote {quote(remote)} rejected the push of {branch}: {detail[-1] if detail else '?'}",
                       hint=f"the branch is still here; push it yourself with `git push {remote} {branch}`")


def publish(repo: Repo, remote: str, branch: str, base: str, title: str, body: str, say) -> str | None:
    """Push `branch` to `remote` and open a pull (GitHub) or merge (GitLab) request into `base`;
    `say` tells each step. The request's URL, or None when it must be opened by hand (what to do
    was said)."""
    if remote_url(repo, remote) is None:
        say(f"no remote {quote(remote)}: open the pull request by hand after pushing {branch}")
        return None
    where = forge_repo(repo, remote)  # a bad forge setting stops us before anything is pushed
    push_branch(repo, remote, branch)
    say(f"pushed {branch} to {remote}")
    if where is None:
        say("the remote is not a forge repository: open the pull request by hand")
        return None
    secret = token(where.kind)
    if where.api is None or secret is None:
        why = f"no {' or '.join(TOKEN_VARIABLES[where.kind])}" if where.api else \
            f"no forge API is configured for {where.host} (set pwd.forge.kind or pwd.forge.api to send it the token)"
        say(f"{why}: open it at {where.open_by_hand_url(branch, base)}")
        return None
    url = create_request(where, secret, head=branch, base=base, title=title, body=body)
    say(f"opened {url}")
    return url


def create_request(forge: ForgeRepo, secret: str, *, head: str, base: str, title: str, body: str) -> str:
    """Open the pull or merge request from `head` into `base` on the forge's API; returns its web URL."""
    if forge.api is None:
        raise PwdError(f"no forge API is configured for {forge.host}, so the token is not sent there",
                       hint="git config pwd.forge.kind github|gitlab (the remote's host), or pwd.forge.api URL")
    if forge.kind == "gitlab":
        project = urllib.parse.quote(f"{forge.owner}/{forge.name}", safe="")
        url, link = f"{forge.api}/projects/{project}/merge_requests", "web_url"
        payload = {"source_branch": head, "target_branch": base, "title": title, "description": body}
        headers = {"PRIVATE-TOKEN": secret}
    else:
        url, link = f"{forge.api}/repos/{forge.owner}/{forge.name}/pulls", "html_url"
        payload = {"title": title, "head": head, "base": base, "body": body}
        headers = {"Authorization": f"Bearer {secret}", "Accept": "application/vnd.github+json",
                   "X-GitHub-Api-Version": "2022-11-28"}
    status, raw = _post(url, json.dumps(payload).encode(),
                        {**headers, "Content-Type": "application/json", "User-Agent": "pwd-git"}, forge.timeout_s, forge.api)
    text = raw.decode(errors="replace").replace(secret, "[token]")  # before any cut: no part of it survives
    try:
        answer = json.loads(text or "null")
    except ValueError:
        raise PwdError(f"the forge answered HTTP {status} with something that is not JSON: {quote(text)}",
                       hint="is pwd.forge.api the REST API's base URL?") from None
    if status == 201 and isinstance(answer, dict) and answer.get(link):
        return str(answer[link])
    raise _refusal(forge, status, answer)


def _text(value) -> str:
    """A forge's message, whatever its shape (GitLab: a string, a list, or field -> [messages])."""
    if isinstance(value, dict):
        return "; ".join(f"{key} {_text(v)}" for key, v in value.items())[:200]
    if isinstance(value, list):
        return "; ".join(_text(v) for v in value)[:200]
    return str(value)[:200] if value is not None else ""


def _refusal(forge: ForgeRepo, status: int, answer) -> PwdError:
    """One clear error for a forge's non-201 answer."""
    fields = answer if isinstance(answer, dict) else {}
    message = _text(fields.get("message") or fields.get("error") or "")
    details = [_text(e.get("message")) for e in fields.get("errors") or [] if isinstance(e, dict)] \
        if isinstance(fields.get("errors"), list) else []
    variables = " / ".join(TOKEN_VARIABLES[forge.kind])
    if status == 401:
        access = "the api scope (Developer role or more)" if forge.kind == "gitlab" else "pull-request write access"
        return PwdError(f"the forge rejected the token (401 {message})".rstrip(),
                        hint=f"check {variables}: it needs {access} to the repository")
    if status == 404 and forge.kind == "gitlab":
        return PwdError(f"the forge has no project {forge.owner}/{forge.name} for this token (404 {message})".rstrip(),
                        hint=f"check the remote (or pwd.forge.repo) and that {variables} can see the project")
    if status in (409, 422):
        text = "; ".join(d for d in details if d) or message
        return PwdError(f"the forge refused the {forge.request_word} ({status}): {text}",
                        hint=f"a {forge.request_word} for this branch may already exist; see the forge")
    return PwdError(f"the forge answered HTTP {status}: {message or 'no message'}")


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
