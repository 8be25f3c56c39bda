"""Git plumbing, in one place: every call the tool makes to git goes through here.

We drive the git CLI (not a library) because it is what users have, it is fast for batch
reads (`cat-file --batch`), and it honours their config, hooks and credentials.

A revision or range the user typed never reaches git where it could read as an option
(`git pwd log -- --output=FILE` must not write FILE): `check_rev` refuses one that starts
with '-', and every call that passes a revision puts it after `--end-of-options`.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from collections.abc import Generator, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from pwd_git.errors import PwdError, quote


class GitError(PwdError):
    """A git command failed."""


def run_git(args: list[str], cwd: str | Path, *, input: bytes | None = None, check: bool = True,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[bytes]:
    """Run `git ARGS` in `cwd`; raise GitError with git's own message on failure."""
    full_env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", **(env or {})}
    proc = subprocess.run(["git", *args], cwd=cwd, input=input, capture_output=True, env=full_env)
    if check and proc.returncode != 0:
        detail = proc.stderr.decode(errors="replace").strip() or proc.stdout.decode(errors="replace").strip()
        raise GitError(f"git {' '.join(args[:2])} failed: {detail}")
    return proc


def git_text(args: list[str], cwd: str | Path, **kwargs) -> str:
    return run_git(args, cwd, **kwargs).stdout.decode().strip()


def check_rev(rev: str, what: str = "revision") -> str:
    """`rev` as given, or a clear error when git could take it for an option (or it is empty)."""
    if not rev or rev.startswith("-"):
        raise PwdError(f"invalid {what}: {quote(rev)}" + (" starts with '-'" if rev else " is empty"),
                       hint="give a commit, branch, tag or range; a name starting with '-' is never read as one")
    return rev


def hash_blob(data: bytes) -> str:
    """The OID git gives `data` as a blob (SHA-1 repositories), without spawning git."""
    h = hashlib.sha1(b"blob %d\0" % len(data))
    h.update(data)
    return h.hexdigest()


def no_work_tree_error(path: Path) -> PwdError | None:
    """The error for a `path` git knows but that has no work tree (a bare repository, or
    inside a .git folder): pwd-git reads and writes a checkout. None for any other path."""
    proc = run_git(["rev-parse", "--is-bare-repository", "--is-inside-git-dir", "--absolute-git-dir"], path,
                   check=False)
    lines = proc.stdout.decode().splitlines()
    if proc.returncode != 0 or len(lines) != 3 or lines[1] != "true":
        return None
    if lines[0] == "true":
        return PwdError(f"not a git work tree: {path} is inside the bare repository {lines[2]}",
                        hint=f"run pwd-git in a checkout of it (`git clone {lines[2]}` makes one)")
    return PwdError(f"not a git work tree: {path} is inside the git directory {lines[2]}",
                    hint="run pwd-git in the work tree that holds it, not in .git")


@dataclass(frozen=True)
class TreeEntry:
    mode: str
    oid: str
    path: str  # relative to the tree that was listed


@dataclass(frozen=True)
class Repo:
    """A git work tree: its top level and its git dir (absolute paths)."""

    top: Path
    git_dir: Path

    @classmethod
    def discover(cls, start: str | Path) -> Repo:
        start = Path(start).resolve()
        probe = start if start.is_dir() else start.parent
        if not probe.exists():
            raise PwdError(f"no such directory: {start}")
        proc = run_git(["rev-parse", "--show-toplevel", "--absolute-git-dir"], probe, check=False)
        if proc.returncode != 0:
            no_work_tree = no_work_tree_error(probe)
            if no_work_tree is not None:
                raise no_work_tree
            raise PwdError(
                f"not a git repository: {probe}",
                hint="a domain is a git repo; create one with `git pwd init` (or `git init`) first",
            )
        top, git_dir = proc.stdout.decode().splitlines()
        return cls(Path(top), Path(git_dir))

    def git(self, *args: str, **kwargs) -> str:
        return git_text(list(args), self.top, **kwargs)

    def resolve(self, rev: str) -> str:
        """Commit OID for `rev`, or a clear error."""
        spec = f"{check_rev(rev)}^{{commit}}"
        proc = run_git(["rev-parse", "--verify", "--quiet", "--end-of-options", spec], self.top, check=False)
        if proc.returncode != 0:
            raise PwdError(f"unknown revision: {quote(rev)}", hint="give a commit, branch or tag that exists (see `git log`)")
        return proc.stdout.decode().strip()

    def tree_oid(self, rev: str, prefix: str = "") -> str | None:
        """OID of the tree at `rev:prefix`, None when that path does not exist there."""
        spec = f"{check_rev(rev)}:{prefix}" if prefix else f"{check_rev(rev)}^{{tree}}"
        proc = run_git(["rev-parse", "--verify", "--quiet", "--end-of-options", spec], self.top, check=False)
        return proc.stdout.decode().strip() or None

    def has_commits(self) -> bool:
        """HEAD points at a commit (false in a fresh `git init`, before the first commit)."""
        return run_git(["rev-parse", "--verify", "--quiet", "HEAD^{commit}"], self.top, check=False).returncode == 0

    def log_lines(self, rev_range: str | None, fmt: str, limit: int) -> list[str]:
        """`git log --first-parent --format=FMT` of a user-given range (None: every local
        branch, `--branches`), newest first, at most `limit`, one line per commit; a clear error
        for an unknown range or an empty repo."""
        if rev_range is None:
            revs = ["--branches"]
        else:
            check_rev(rev_range, "revision range")
            revs = ["--end-of-options", rev_range]
        proc = run_git(["log", "--first-parent", f"--max-count={limit}", f"--format={fmt}", *revs, "--"], self.top,
                       check=False)
        if proc.returncode == 0:
            return proc.stdout.decode().splitlines()
        if not self.has_commits():
            branch = current_branch(self)
            raise PwdError("no commits yet" + (f" on branch {quote(branch)}" if branch else ""),
                           hint="commit the KB first (`git add -A && git commit`); then `git pwd test` records results")
        raise PwdError(f"unknown revision or range: {quote(rev_range)}",
                       hint="give a commit, branch, tag or range A..B that exists (see `git log`)")

    def ls_tree(self, tree_ish: str) -> list[TreeEntry]:
        """Every blob under `tree_ish`, recursively, paths relative to it."""
        out = run_git(["ls-tree", "-r", "-z", "--full-tree", tree_ish], self.top).stdout
        entries = []
        for record in out.split(b"\0"):
            if not record:
                continue
            meta, path = record.split(b"\t", 1)
            mode, kind, oid = meta.decode().split(" ")
            if kind == "blob":
                entries.append(TreeEntry(mode, oid, path.decode()))
        return entries

    def read_blobs(self, oids: Iterable[str]) -> Iterator[tuple[str, bytes]]:
        """Contents of many blobs through one `git cat-file --batch` process. Requests are fed
        from a thread so neither pipe can fill up and deadlock on large reads."""
        import threading

        oids = list(oids)
        if not oids:
            return
        proc = subprocess.Popen(["git", "cat-file", "--batch"], cwd=self.top, stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE)
        assert proc.stdin and proc.stdout

        def feed() -> None:
            try:
                proc.stdin.write("".join(f"{oid}\n" for oid in oids).encode())
            except BrokenPipeError:
                pass
            finally:
                proc.stdin.close()

        writer = threading.Thread(target=feed, daemon=True)
        writer.start()
        try:
            for oid in oids:
                header = proc.stdout.readline().split()
                if len(header) < 3:
                    raise GitError(f"object {oid} is missing from the repository")
                size = int(header[2])
                data = proc.stdout.read(size)
                proc.stdout.read(1)  # trailing newline
                yield oid, data
        finally:
            proc.stdout.close()
            proc.wait()
            writer.join()

    def stream_blob(self, oid: str, piece: int = 1 << 18) -> Generator[bytes, None, None]:
        """The contents of one blob, at most `piece` bytes at a time (`git cat-file blob`), so a
        document of any size is never held whole. Closing the generator early stops git."""
        proc = subprocess.Popen(["git", "cat-file", "blob", oid], cwd=self.top, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
        assert proc.stdout and proc.stderr
        try:
            while data := proc.stdout.read(piece):
                yield data
            if proc.wait() != 0:
                raise GitError(f"git cat-file blob {oid} failed: {proc.stderr.read().decode(errors='replace').strip()}")
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.stdout.close()
            proc.stderr.close()
            proc.wait()

    def follow_symlinks(self, rev: str, paths: list[str]) -> dict[str, tuple[str, str]]:
        """Where each symlink `rev:path` (repo-relative) leads inside that commit's tree, as git
        resolves it (`cat-file --batch-check --follow-symlinks`): {path: (kind, detail)} with kind
        'blob' or 'tree' (detail: the OID), 'symlink' (out of the tree; detail: the rest of the
        target), 'dangling', 'loop', 'notdir' or 'missing'."""
        return dict(zip(paths, self.follow([f"{rev}:{path}" for path in paths]), strict=True))

    def follow(self, specs: list[str]) -> list[tuple[str, str]]:
        """`follow_symlinks` of `rev:path` specs of any commits: (kind, detail) of each."""
        out = run_git(["cat-file", "--batch-check", "--follow-symlinks"], self.top,
                      input="".join(f"{spec}\n" for spec in specs).encode()).stdout
        answers, at = [], 0
        for _ in specs:
            end = out.index(b"\n", at)
            words, at = out[at:end].decode(errors="replace").split(" "), end + 1
            if words[-1] == "missing":
                answers.append(("missing", ""))
            elif words[0] in ("symlink", "dangling", "loop", "notdir"):  # followed by SIZE bytes of name
                size = int(words[1])
                answers.append((words[0], out[at:at + size].decode(errors="replace")))
                at += size + 1
            else:
                answers.append((words[1], words[0]))
        return answers

    def pwd_dir(self) -> Path:
        """Where the tool keeps per-repo state (.git/pwd): caches, queue, logs."""
        path = self.git_dir / "pwd"
        path.mkdir(parents=True, exist_ok=True)
        return path


def tree_oid_of(files: dict[str, str]) -> str:
    """The OID git would give a tree holding `files` ({'a/b.yaml': blob_oid}, mode 100644).

    Lets us name "the KB tree" identically for the working tree and any commit, without
    writing objects or touching the index.
    """
    root: dict = {}
    for path, oid in files.items():
        node = root
        *dirs, name = path.split("/")
        for d in dirs:
            node = node.setdefault(d, {})
        node[name] = oid
    return _tree_oid(root)


def _tree_oid(node: dict) -> str:
    return tree_oid_from({name: (_tree_oid(child), True) if isinstance(child, dict) else (child, False)
                          for name, child in node.items()})


def tree_oid_from(entries: dict[str, tuple[str, bool]]) -> str:
    """The OID of a tree of {name: (oid, is_tree)}, its files of mode 100644, in git's order
    (a folder sorts as its name + "/")."""
    raw = sorted((name + "/" if is_tree else name, (b"40000 " if is_tree else b"100644 ") + name.encode() + b"\0"
                  + bytes.fromhex(oid)) for name, (oid, is_tree) in entries.items())
    body = b"".join(entry for _, entry in raw)
    return hashlib.sha1(b"tree %d\0" % len(body) + body).hexdigest()


def tree_entries(raw: bytes) -> Iterator[tuple[str, str, str]]:
    """(mode, name, oid) of each entry of a raw tree object (as `cat-file --batch` gives it)."""
    at = 0
    while at < len(raw):
        space = raw.index(b" ", at)
        nul = raw.index(b"\0", space)
        yield raw[at:space].decode(), raw[space + 1:nul].decode(), raw[nul + 1:nul + 21].hex()
        at = nul + 21


class TempIndex:
    """A throwaway index for building trees and commits without touching the user's
    index, working tree or checked-out branch (plumbing only)."""

    def __init__(self, repo: Repo, commit: str):
        import tempfile

        self.repo = repo
        fd, self.path = tempfile.mkstemp(prefix="pwd-index-", dir=repo.pwd_dir())
        os.close(fd)
        os.unlink(self.path)  # git wants to create it
        self.env = {"GIT_INDEX_FILE": self.path}
        run_git(["read-tree", commit], repo.top, env=self.env)

    def add_blobs(self, files: dict[str, bytes]) -> None:
        lines = []
        for path, data in sorted(files.items()):
            oid = run_git(["hash-object", "-w", "--stdin"], self.repo.top, input=data).stdout.decode().strip()
            lines.append(f"100644 {oid}\t{path}\n")
        run_git(["update-index", "--add", "--index-info"], self.repo.top, input="".join(lines).encode(), env=self.env)

    def remove_tree(self, prefix: str) -> None:
        # -f: this index is not the checkout's; without it git refuses paths whose entries here
        # differ from both the worktree and HEAD (any base commit other than HEAD)
        run_git(["rm", "--cached", "-r", "-q", "-f", "--ignore-unmatch", "--", prefix], self.repo.top, env=self.env)

    def commit(self, parent: str, message: str) -> str:
        tree = run_git(["write-tree"], self.repo.top, env=self.env).stdout.decode().strip()
        proc = run_git(["commit-tree", tree, "-p", parent, "-F", "-"], self.repo.top, input=message.encode(),
                       check=False)
        if proc.returncode != 0:
            raise GitError(f"git commit-tree failed: {proc.stderr.decode().strip()}",
                           hint="set your identity: git config user.name ...; git config user.email ...")
        return proc.stdout.decode().strip()

    def close(self) -> None:
        if os.path.exists(self.path):
            os.unlink(self.path)

    def __enter__(self) -> TempIndex:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def check_branch_name(repo: Repo, name: str) -> str:
    """`name` when git accepts it as a new branch name (`check-ref-format --branch`, taken
    literally: no `@{-1}` shorthand), else a clear error."""
    proc = run_git(["check-ref-format", "--branch", name], repo.top, check=False)
    if proc.returncode != 0 or proc.stdout.decode().strip() != name or name.startswith("-"):
        raise PwdError(f"invalid branch name: {quote(name)}",
                       hint="see `git help check-ref-format` (no '..', spaces, '~^:?*[', or a leading '-')")
    return name


def create_branch(repo: Repo, name: str, commit: str) -> None:
    """Create refs/heads/NAME at COMMIT; refuse (never move) an existing branch."""
    check_branch_name(repo, name)
    proc = run_git(["update-ref", f"refs/heads/{name}", commit, "0" * 40], repo.top, check=False)
    if proc.returncode != 0:
        raise PwdError(f"branch {quote(name)} already exists", hint="pass --branch NEW-NAME, or delete the old branch")


def move_branch(repo: Repo, name: str, commit: str, old: str) -> None:
    """Move refs/heads/NAME from OLD to COMMIT in one atomic ref update; refuse when the branch
    no longer points at OLD (someone else moved it meanwhile)."""
    proc = run_git(["update-ref", f"refs/heads/{name}", commit, old], repo.top, check=False)
    if proc.returncode != 0:
        raise PwdError(f"branch {quote(name)} moved while it was being extended (expected it at {old[:10]})",
                       hint="see `git log` of that branch; nothing of this run was put on it")


def branch_exists(repo: Repo, name: str) -> bool:
    return run_git(["rev-parse", "--verify", "--quiet", "--end-of-options", f"refs/heads/{name}"], repo.top,
                   check=False).returncode == 0


def unmerged_branches(repo: Repo, *prefixes: str) -> list[tuple[str, str]]:
    """(name, tip) of each local branch under one of `prefixes` (e.g. "pwd/patch/") whose tip
    HEAD does not contain yet, by name: the proposals still waiting for review."""
    if not repo.has_commits():
        return []
    out = run_git(["for-each-ref", "--no-merged=HEAD", "--format=%(refname:short) %(objectname)",
                   *(f"refs/heads/{prefix}" for prefix in prefixes)], repo.top).stdout.decode()
    return [(name, tip) for name, tip in (line.split(" ", 1) for line in out.splitlines() if line.strip())]


def current_branch(repo: Repo) -> str | None:
    proc = run_git(["symbolic-ref", "--quiet", "--short", "HEAD"], repo.top, check=False)
    return proc.stdout.decode().strip() or None


def remote_url(repo: Repo, remote: str) -> str | None:
    proc = run_git(["remote", "get-url", remote], repo.top, check=False)
    return proc.stdout.decode().strip() or None


def config_get(repo: Repo, key: str) -> str | None:
    proc = run_git(["config", "--get", key], repo.top, check=False)
    return proc.stdout.decode().strip() or None


# --- worktrees, bisect, history: used by `git pwd bisect` and the commit hooks ------------

def git_path(repo: Repo, name: str) -> Path:
    """`git rev-parse --git-path NAME`: where git keeps NAME for this worktree (honours
    core.hooksPath for hooks/, and per-worktree files such as BISECT_START)."""
    out = git_text(["rev-parse", "--git-path", name], repo.top)
    path = Path(out)
    return path if path.is_absolute() else (repo.top / path).resolve()


def common_dir(repo: Repo) -> Path:
    """The git dir shared by all worktrees (objects, refs, notes)."""
    out = git_text(["rev-parse", "--git-common-dir"], repo.top)
    path = Path(out)
    return path if path.is_absolute() else (repo.top / path).resolve()


def is_bisecting(repo: Repo) -> bool:
    """A `git bisect` session is in progress in this worktree."""
    return git_path(repo, "BISECT_START").exists()


def is_ancestor(repo: Repo, ancestor: str, descendant: str) -> bool:
    proc = run_git(["merge-base", "--is-ancestor", "--end-of-options", ancestor, descendant], repo.top, check=False)
    if proc.returncode not in (0, 1):
        raise GitError(f"git merge-base failed: {proc.stderr.decode(errors='replace').strip()}")
    return proc.returncode == 0


def first_parent_range(repo: Repo, good: str, bad: str) -> list[str]:
    """Commits of `good..bad` on bad's first-parent line, oldest first."""
    out = git_text(["rev-list", "--first-parent", "--reverse", "--end-of-options", f"{good}..{bad}"], repo.top)
    return out.split()


@dataclass(frozen=True)
class CommitInfo:
    commit: str
    subject: str
    author: str
    date: str  # ISO 8601, author date

    def as_dict(self) -> dict:
        return {"commit": self.commit, "subject": self.subject, "author": self.author, "date": self.date}


def commit_info(repo: Repo, rev: str) -> CommitInfo:
    out = git_text(["show", "-s", "--format=%H%x1f%s%x1f%an <%ae>%x1f%aI", "--end-of-options", rev], repo.top)
    commit, subject, author, date = out.split("\x1f", 3)
    return CommitInfo(commit, subject, author, date)


def worktree_add(repo: Repo, path: Path, commit: str) -> None:
    """A detached, empty (`--no-checkout`) linked worktree at `path`: no files are written
    and no checkout hooks run; `git bisect --no-checkout` then only moves BISECT_HEAD."""
    run_git(["worktree", "add", "--detach", "--no-checkout", str(path), commit], repo.top)


def worktree_remove(repo: Repo, path: Path) -> None:
    """Remove a linked worktree and its admin files; tolerate one that is already gone."""
    run_git(["worktree", "remove", "--force", "--force", str(path)], repo.top, check=False)
    if path.exists():
        import shutil

        shutil.rmtree(path, ignore_errors=True)
    run_git(["worktree", "prune"], repo.top, check=False)


def bisect_start(worktree: Path, bad: str, good: str) -> str:
    """Start a first-parent, no-checkout bisect in `worktree`; git's own output."""
    return git_text(["bisect", "start", "--no-checkout", "--first-parent", bad, good], worktree)


def bisect_reset(worktree: Path) -> None:
    run_git(["bisect", "reset"], worktree, check=False)


def bisect_log(worktree: Path) -> str:
    proc = run_git(["bisect", "log"], worktree, check=False)
    return proc.stdout.decode(errors="replace") if proc.returncode == 0 else ""


def object_ids(repo: Repo, specs: list[str]) -> list[str | None]:
    """OIDs of many `rev:path` specs through one `git cat-file --batch-check`; None where
    the path does not exist at that revision."""
    return [found[1] if found else None for found in objects(repo, specs)]


def objects(repo: Repo, specs: list[str]) -> list[tuple[str, str] | None]:
    """(type, OID) of many `rev:path` specs through one `git cat-file --batch-check`; None
    where the path does not exist at that revision."""
    if not specs:
        return []
    out = run_git(["cat-file", "--batch-check=%(objecttype) %(objectname)"], repo.top,
                  input="".join(f"{spec}\n" for spec in specs).encode()).stdout.decode().splitlines()
    return [None if line.endswith((" missing", " ambiguous")) else tuple(line.split(" ", 1)) for line in out]


def blob_sizes(repo: Repo, oids: list[str]) -> dict[str, int]:
    """{oid: size in bytes} of many objects through one `git cat-file --batch-check`, without
    reading them (a 2 GB document is refused before it is read)."""
    if not oids:
        return {}
    out = run_git(["cat-file", "--batch-check=%(objectname) %(objectsize)"], repo.top,
                  input="".join(f"{oid}\n" for oid in oids).encode()).stdout.decode().splitlines()
    return {oid: int(size) for oid, size in (line.split(" ") for line in out if not line.endswith(" missing"))}


def uncommitted(repo: Repo, paths: list[str]) -> list[str]:
    """Repo-relative paths under `paths` that differ from HEAD in the index or work tree, or are
    untracked (`git status --porcelain`): what a command reading HEAD would not see."""
    if not paths:
        return []
    out = run_git(["status", "--porcelain", "-z", "--untracked-files=all", "--no-renames", "--", *paths],
                  repo.top, env={"GIT_LITERAL_PATHSPECS": "1"}).stdout.decode(errors="replace")
    return sorted(record[3:] for record in out.split("\0") if len(record) > 3)


def bisect_mark(worktree: Path, term: str, commits: list[str]) -> None:
    """`git bisect good|bad|skip COMMIT...` (in chunks, for long lists). git exits non-zero
    when the marks leave only skipped commits; `bisect_log` tells the outcome either way."""
    for start in range(0, len(commits), 200):
        run_git(["bisect", term, *commits[start:start + 200]], worktree, check=False)
