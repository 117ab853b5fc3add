"""Git mirrors of the repositories projects link to: URL checks, fetch, files and archives.

Each project gets a bare mirror under ``<data dir>/git/<project id>.git``. Git runs with prompts
off and only the ``file``, ``https`` and ``ssh`` transports allowed (``GIT_ALLOW_PROTOCOL``), so a
URL such as ``ext::sh -c ...`` can run nothing even if it slipped past :func:`check_url`.
Credentials reach git through the environment (an ``Authorization`` header in ``GIT_CONFIG_*``, or
an ssh key in a 0600 file that lives only during the fetch), never on a command line or in a URL.
Every method blocks: the services call them through ``asyncio.to_thread``.
"""

from __future__ import annotations

import base64
import datetime as dt
import gzip
import json
import os
import re
import shlex
import shutil
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import IO, BinaryIO, cast
from urllib.parse import urlsplit, urlunsplit

from cryptography.fernet import Fernet, InvalidToken
from git import BadName, GitCommandError, Repo
from git.exc import InvalidGitRepositoryError, NoSuchPathError

from jupyter_valohai.errors import InvalidInput

ALLOWED_PROTOCOLS = "file:https:ssh"
URL_HINT = (
    "Link an absolute local path, a file://, https:// or ssh:// URL, or user@host:path "
    "(e.g. https://github.com/org/repo.git)."
)
SCP_LIKE = re.compile(r"^[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:(?!//)\S+$")
SHA = re.compile(r"^[0-9a-f]{40}$")
MAX_COMMITS_PER_REF = 1000
FETCH_TIMEOUT = 600.0  # seconds; a remote that hangs must not hold a worker thread forever
REF_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]*$")
HEX_PREFIX = re.compile(r"^[0-9a-f]{4,40}$")


@dataclass(frozen=True)
class Credentials:
    """What a fetch may authenticate with; never logged, stored only encrypted."""

    username: str = ""
    password: str = ""  # or an access token
    ssh_private_key: str = ""

    def __bool__(self) -> bool:
        return bool(self.password or self.ssh_private_key)


@dataclass
class GitCommit:
    sha: str
    commit_time: dt.datetime
    message: str
    author: str
    refs: list[str] = field(default_factory=list)


def check_url(url: object) -> tuple[str, Credentials]:
    """Return a repository URL we will fetch from (secrets taken out of it), or raise InvalidInput.

    Local paths must exist and be Git repositories; ``user:password@`` in an https URL becomes
    credentials, so the stored URL holds no secret.
    """
    if not isinstance(url, str) or not url.strip():
        raise InvalidInput("The repository needs a URL.", hint=URL_HINT)
    url = url.strip()
    if url.startswith("-") or any(ord(c) < 32 for c in url):
        raise InvalidInput("That is not a repository URL.", hint=URL_HINT)
    if re.match(r"^[A-Za-z][A-Za-z0-9+.-]*::", url):
        raise InvalidInput(
            f"Git transport helpers ({url.split('::')[0]}::) are refused.", hint=URL_HINT
        )
    if url.startswith("/"):
        _check_local(url)
        return url, Credentials()
    if SCP_LIKE.match(url):
        return url, Credentials()
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise InvalidInput("file:// URLs must name a local path.", hint=URL_HINT)
        _check_local(parts.path)
        return url, Credentials()
    if scheme in ("https", "ssh") and parts.hostname:
        creds = Credentials()
        if parts.password is not None and scheme == "ssh":
            raise InvalidInput(
                "ssh URLs may not hold a password.",
                hint="Link the repository with an ssh_private_key (a deploy key) instead.",
            )
        if parts.password is not None and scheme == "https":
            creds = Credentials(username=parts.username or "", password=parts.password)
            netloc = parts.hostname + (f":{parts.port}" if parts.port else "")
            url = urlunsplit(parts._replace(netloc=netloc))
        return url, creds
    raise InvalidInput(f"Repository URLs with scheme {scheme or url!r} are refused.", hint=URL_HINT)


def _check_local(path: str) -> None:
    try:
        Repo(path)
    except (InvalidGitRepositoryError, NoSuchPathError):
        raise InvalidInput(
            f"{path} is not a Git repository on the master's machine.",
            hint="Give the absolute path of a repository the master can read (or its URL).",
        ) from None


def _safe_error(exc: GitCommandError, url: str) -> InvalidInput:
    stderr = str(exc.stderr or "").replace("stderr:", "").strip().strip("'").strip()
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    detail = lines[-1] if lines else f"git exited with {exc.status}"
    return InvalidInput(
        f"Fetching {url} failed: {detail}",
        hint="Check the URL, that the master can reach it, and the repository's credentials.",
    )


class GitMirrors:
    """Bare mirrors of linked repositories, one per project, under ``root``."""

    def __init__(self, root: str) -> None:
        self.root = root
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def path(self, project_id: str) -> str:
        return os.path.join(self.root, f"{project_id}.git")

    def _lock(self, project_id: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(project_id, threading.Lock())

    def _repo(self, project_id: str) -> Repo:
        try:
            return Repo(self.path(project_id))
        except (InvalidGitRepositoryError, NoSuchPathError):
            raise InvalidInput(
                "The project's repository has not been fetched yet.",
                hint="Fetch it first: POST /api/v0/projects/<id>/fetch/ or `vh project fetch`.",
            ) from None

    @contextmanager
    def _environment(self, creds: Credentials) -> Iterator[dict[str, str]]:
        env = {
            "GIT_TERMINAL_PROMPT": "0",
            "GIT_ALLOW_PROTOCOL": ALLOWED_PROTOCOLS,
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_ASKPASS": "/bin/false",
            "SSH_ASKPASS": "/bin/false",
        }
        keydir = None
        try:
            if creds.password:
                token = f"{creds.username}:{creds.password}".encode()
                env.update(
                    GIT_CONFIG_COUNT="1",
                    GIT_CONFIG_KEY_0="http.extraHeader",
                    GIT_CONFIG_VALUE_0="Authorization: Basic " + base64.b64encode(token).decode(),
                )
            ssh = ["ssh", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=accept-new"]
            ssh += ["-o", f"UserKnownHostsFile={os.path.join(self.root, 'known_hosts')}"]
            if creds.ssh_private_key:
                keydir = tempfile.mkdtemp(prefix=".key-", dir=self.root)
                keyfile = os.path.join(keydir, "id")
                fd = os.open(keyfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "w") as fp:
                    fp.write(creds.ssh_private_key.strip() + "\n")
                ssh += ["-o", "IdentitiesOnly=yes", "-i", keyfile]
            env["GIT_SSH_COMMAND"] = " ".join(shlex.quote(arg) for arg in ssh)
            yield env
        finally:
            if keydir:
                shutil.rmtree(keydir, ignore_errors=True)

    def fetch(self, project_id: str, url: str, creds: Credentials) -> list[GitCommit]:
        """Fetch every branch and tag of ``url`` into the mirror; return the commits they reach."""
        os.makedirs(self.root, exist_ok=True)
        with self._lock(project_id):
            path = self.path(project_id)
            repo = Repo(path) if os.path.isdir(path) else Repo.init(path, bare=True)
            with self._environment(creds) as env, repo.git.custom_environment(**env):
                try:
                    repo.git.fetch(
                        "--prune",
                        "--force",
                        "--",
                        url,
                        "+refs/heads/*:refs/heads/*",
                        "+refs/tags/*:refs/tags/*",
                        kill_after_timeout=FETCH_TIMEOUT,
                    )
                except GitCommandError as exc:
                    raise _safe_error(exc, url) from None
            return self._commits(repo)

    @staticmethod
    def _commits(repo: Repo) -> list[GitCommit]:
        found: dict[str, GitCommit] = {}
        refs = [(h.name, h.commit) for h in repo.heads]
        refs += [(t.name, t.commit) for t in repo.tags]
        for name, tip in refs:
            for commit in repo.iter_commits(tip, max_count=MAX_COMMITS_PER_REF):
                entry = found.get(commit.hexsha)
                if entry is None:
                    entry = found[commit.hexsha] = GitCommit(
                        sha=commit.hexsha,
                        commit_time=commit.committed_datetime.astimezone(dt.timezone.utc),
                        message=str(commit.message).strip(),
                        author=str(commit.author.name or ""),
                    )
                if commit == tip:
                    entry.refs.append(name)
        return sorted(found.values(), key=lambda c: c.commit_time, reverse=True)

    def resolve(self, project_id: str, rev: str) -> str | None:
        """Return the full sha a branch, tag or abbreviated sha names in the mirror, if any.

        Only plain names and hex prefixes are looked up: no rev-parse expressions.
        """
        if not os.path.isdir(self.path(project_id)):
            return None
        repo = self._repo(project_id)
        if REF_NAME.match(rev) and ".." not in rev:
            for refs in (repo.heads, repo.tags):
                if rev in refs:
                    return str(refs[rev].commit.hexsha)
        if HEX_PREFIX.match(rev):
            try:
                return str(repo.commit(rev).hexsha)
            except (BadName, ValueError, GitCommandError):
                return None
        return None

    def read_file(self, project_id: str, sha: str, path: str) -> bytes | None:
        """Return the bytes of ``path`` at commit ``sha``, or None if it has no such file."""
        repo = self._repo(project_id)
        try:
            blob = repo.commit(sha).tree / path.lstrip("./")
        except KeyError:
            return None
        if blob.type != "blob":
            return None
        return bytes(blob.data_stream.read())

    def archive(self, project_id: str, sha: str, out: IO[bytes]) -> None:
        """Write commit ``sha`` as a gzipped tarball (the same commit gives the same bytes)."""
        if not SHA.match(sha):
            raise InvalidInput(f"{sha!r} is not a full commit sha.")
        repo = self._repo(project_id)
        with self._lock(project_id), gzip.GzipFile(fileobj=out, mode="wb", mtime=0) as gz:
            repo.archive(cast(BinaryIO, gz), treeish=sha, format="tar")


class SecretBox:
    """Encrypts repository credentials at rest (Fernet) with a key kept in the master's data dir."""

    def __init__(self, key_path: str) -> None:
        self.key_path = key_path
        self._fernet: Fernet | None = None

    def _box(self) -> Fernet:
        if self._fernet is None:
            os.makedirs(os.path.dirname(self.key_path), exist_ok=True)
            try:
                fd = os.open(self.key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                pass
            else:
                with os.fdopen(fd, "wb") as fp:
                    fp.write(Fernet.generate_key())
            with open(self.key_path, "rb") as fp:
                self._fernet = Fernet(fp.read().strip())
        return self._fernet

    def seal(self, creds: Credentials) -> str | None:
        if not creds:
            return None
        plain = json.dumps(
            {"u": creds.username, "p": creds.password, "k": creds.ssh_private_key}
        ).encode()
        return self._box().encrypt(plain).decode()

    def open(self, sealed: str | None) -> Credentials:
        if not sealed:
            return Credentials()
        try:
            data = json.loads(self._box().decrypt(sealed.encode()))
        except InvalidToken:
            raise InvalidInput(
                "The repository's stored credentials cannot be decrypted.",
                hint="The master's secret key changed: link the repository again with them.",
            ) from None
        return Credentials(data["u"], data["p"], data["k"])
