"""Pull requests through a forge's REST API (GitHub first; base URL configurable).

The token comes from GITHUB_TOKEN or GH_TOKEN and is never printed or logged. Without a
token or a recognisable remote we push if we can, print the compare URL and leave the
body in a file, so a person can open the PR by hand.
"""

from __future__ import annotations

import json
import os
import re
import urllib.error
import urllib.request
from dataclasses import dataclass

from pwd_git.errors import PwdError, quote
from pwd_git.git import Repo, config_get, remote_url, run_git

_REMOTE = re.compile(r"^(?:https?://(?:[^@/]+@)?|ssh://(?:[^@/]+@)?|[^@/]+@)?(?P<host>[^/:]+)(?::\d+)?[:/]"
                     r"(?P<owner>[^/]+)/(?P<name>[^/]+?)(?:\.git)?/?$")


@dataclass(frozen=True)
class ForgeRepo:
    host: str
    owner: str
    name: str
    api: str

    @property
    def compare_url(self) -> str:
        return f"https://{self.host}/{self.owner}/{self.name}/compare"


def forge_repo(repo: Repo, remote: str) -> ForgeRepo | None:
    """owner/name from `pwd.forge.repo` or the remote URL; API from PWD_GIT_FORGE_API or `pwd.forge.api`."""
    url = remote_url(repo, remote) or ""
    override = config_get(repo, "pwd.forge.repo")
    match = _REMOTE.match(url)
    host = match["host"] if match else "github.com"
    if override and "/" in override:
        owner, name = override.split("/", 1)
    elif match:
        owner, name = match["owner"], match["name"]
    else:
        return None
    api = os.environ.get("PWD_GIT_FORGE_API") or config_get(repo, "pwd.forge.api") or (
        "https://api.github.com" if host == "github.com" else f"https://{host}/api/v3")
    return ForgeRepo(host, owner, name, api.rstrip("/"))


def token() -> str | None:
    return os.environ.get("GITHUB_TOKEN") or os.environ.get("GH_TOKEN") or None


def push_branch(repo: Repo, remote: str, branch: str) -> None:
    proc = run_git(["push", "--quiet", remote, f"refs/heads/{branch}:refs/heads/{branch}"], repo.top, check=False)
    if proc.returncode != 0:
        detail = proc.stderr.decode(errors="replace").strip().splitlines()
        raise PwdError(f"the remote {quote(remote)} rejected the push of {branch}: {detail[-1] if detail else '?'}",
                       hint=f"the branch is still here; push it yourself with `git push {remote} {branch}`")


def create_pull_request(forge: ForgeRepo, secret: str, *, head: str, base: str, title: str, body: str) -> str:
    """POST /repos/{owner}/{repo}/pulls; returns the PR's html_url."""
    request = urllib.request.Request(
        f"{forge.api}/repos/{forge.owner}/{forge.name}/pulls",
        data=json.dumps({"title": title, "head": head, "base": base, "body": body}).encode(),
        method="POST",
        headers={"Authorization": f"Bearer {secret}", "Accept": "application/vnd.github+json",
                 "X-GitHub-Api-Version": "2022-11-28", "Content-Type": "application/json",
                 "User-Agent": "pwd-git"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read()
    except (urllib.error.URLError, OSError) as exc:
        raise PwdError(f"cannot reach the forge at {forge.api}: {getattr(exc, 'reason', exc)}",
                       hint="check the network, or set pwd.forge.api / PWD_GIT_FORGE_API") from None
    try:
        answer = json.loads(raw or b"null")
    except ValueError:
        raise PwdError(f"the forge answered HTTP {status} with something that is not JSON: "
                       f"{quote(raw.decode(errors='replace'))}", hint="is pwd.forge.api the REST API's base URL?") from None
    if status == 201 and isinstance(answer, dict) and answer.get("html_url"):
        return str(answer["html_url"])
    message = answer.get("message", "") if isinstance(answer, dict) else ""
    details = [e.get("message", "") for e in (answer.get("errors") or []) if isinstance(e, dict)] \
        if isinstance(answer, dict) else []
    if status == 401:
        raise PwdError(f"the forge rejected the token (401 {message})".rstrip(),
                       hint="check GITHUB_TOKEN / GH_TOKEN: it needs pull-request write access to the repository")
    if status == 422:
        text = "; ".join(d for d in details if d) or message
        raise PwdError(f"the forge refused the pull request (422): {text}",
                       hint="a pull request for this branch may already exist; see the forge")
    raise PwdError(f"the forge answered HTTP {status}: {message or 'no message'}")
