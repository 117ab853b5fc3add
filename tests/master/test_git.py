"""Projects linked to real Git repositories: link, fetch, commits, archives, bad input."""

from __future__ import annotations

import base64
import getpass
import http.server
import io
import os
import shutil
import ssl
import subprocess
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from git import Actor, Repo
from mastertest import VALOHAI_YAML, MasterClient

from jupyter_valohai.archive import safe_extract
from jupyter_valohai.errors import UnsafeArchive
from jupyter_valohai.services import free_port, wait_for_port
from tests.certs import self_signed

ME = Actor("Test Person", "test@example.com")


def commit_files(repo: Repo, files: dict[str, str], message: str) -> str:
    """Write ``files`` into the work tree, commit them, return the sha."""
    root = Path(str(repo.working_tree_dir))
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    repo.index.add(list(files))
    return str(repo.index.commit(message, author=ME, committer=ME).hexsha)


@pytest.fixture
def git_repo(tmp_path: Path) -> tuple[Repo, list[str]]:
    """A repository with two commits on ``main``: train.py prints "one", then "two"."""
    repo = Repo.init(tmp_path / "repo", initial_branch="main")
    first = commit_files(
        repo, {"valohai.yaml": VALOHAI_YAML, "train.py": "print('one')\n"}, "first"
    )
    second = commit_files(repo, {"train.py": "print('two')\n"}, "second")
    return repo, [first, second]


async def linked_project(master: MasterClient, url: str, name: str = "gitty") -> dict[str, Any]:
    project = await master.create_project(name)
    resp = await master.api(
        "PATCH", f"/api/v0/projects/{project['id']}/", json={"repository": {"url": url}}
    )
    assert resp.status_code == 200, resp.text
    return resp.json()  # type: ignore[no-any-return]


async def fetch(master: MasterClient, project_id: str) -> dict[str, Any]:
    resp = await master.api("POST", f"/api/v0/projects/{project_id}/fetch/")
    assert resp.status_code == 200, resp.text
    return resp.json()  # type: ignore[no-any-return]


def code_archives(tmp_path: Path) -> list[Path]:
    return sorted((tmp_path / "artifacts" / "code").glob("*.tgz"))


async def code_of(master: MasterClient, tmp_path: Path, execution: dict[str, Any]) -> bytes:
    """The code tarball an execution's agent would download (read from the file store)."""
    doc = await master.master.ctx.store.executions.find_one({"_id": execution["id"]})
    assert doc is not None
    return (tmp_path / "artifacts" / doc["code_key"]).read_bytes()


def tar_text(data: bytes, name: str) -> str:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        member = tar.extractfile(name)
        assert member is not None
        return member.read().decode()


async def test_link_fetch_and_list(master: MasterClient, git_repo: tuple[Repo, list[str]]) -> None:
    repo, (first, second) = git_repo
    project = await linked_project(master, str(repo.working_tree_dir))
    assert project["repository"]["url"] == str(repo.working_tree_dir)
    assert project["repository"]["has_credentials"] is False
    fetched = await fetch(master, project["id"])
    assert [c["identifier"] for c in fetched["commits"]] == [second, first]
    assert fetched["errors"] == []
    tip = fetched["commits"][0]
    assert tip["ref"] == "main" and tip["refs"] == ["main"] and tip["adhoc"] is False
    assert tip["description"] == "second" and tip["commit_time"]
    # Ad-hoc commits live next to the Git ones.
    assert (await master.import_package(project["id"])).status_code == 201
    listed = await master.api("GET", "/api/v0/commits/", params={"project": project["id"]})
    assert listed.json()["count"] == 3
    git_only = await master.api(
        "GET", "/api/v0/commits/", params={"project": project["id"], "adhoc": "false"}
    )
    assert {c["identifier"] for c in git_only.json()["results"]} == {first, second}
    described = await master.api(
        "GET", f"/api/v0/commits/{first}/", params={"project": project["id"], "include": "config"}
    )
    assert described.json()["config_text"] == VALOHAI_YAML
    # Fetching again finds nothing new; a new commit is found alone and moves the branch.
    assert (await fetch(master, project["id"]))["commits"] == []
    third = commit_files(repo, {"train.py": "print('three')\n"}, "third")
    again = await fetch(master, project["id"])
    assert [c["identifier"] for c in again["commits"]] == [third]
    old = await master.api("GET", f"/api/v0/commits/{second}/", params={"project": project["id"]})
    assert old.json()["refs"] == []
    shown = await master.api("GET", f"/api/v0/projects/{project['id']}/")
    assert shown.json()["repository"]["fetched_at"]


async def test_execution_archives_its_commit_once(
    master: MasterClient, git_repo: tuple[Repo, list[str]], tmp_path: Path
) -> None:
    repo, (first, second) = git_repo
    project = await linked_project(master, "file://" + str(repo.working_tree_dir))
    await fetch(master, project["id"])
    assert code_archives(tmp_path) == []  # archived when an execution needs it, not on fetch
    one = await master.submit(project["id"], first)
    assert one["commit"]["identifier"] == first
    assert len(code_archives(tmp_path)) == 1
    again = await master.submit(project["id"], first)
    assert len(code_archives(tmp_path)) == 1  # the same commit twice: one archive
    two = await master.submit(project["id"], second)
    assert len(code_archives(tmp_path)) == 2
    texts = {}
    for execution in (one, again, two):
        texts[execution["id"]] = tar_text(await code_of(master, tmp_path, execution), "train.py")
    assert texts[one["id"]] == texts[again["id"]] == "print('one')\n"
    assert texts[two["id"]] == "print('two')\n"
    # Archiving is deterministic: the same commit archived afresh gives the same key.
    projects = master.master.services.projects
    commit_doc = await master.master.ctx.store.commits.find_one({"identifier": first})
    assert commit_doc is not None
    key, _, _ = projects._archive_git_commit(project["id"], first)
    assert key == commit_doc["code_key"] and len(code_archives(tmp_path)) == 2


async def test_branch_and_short_sha_resolve(
    master: MasterClient, git_repo: tuple[Repo, list[str]]
) -> None:
    repo, (first, second) = git_repo
    project = await linked_project(master, str(repo.working_tree_dir))
    await fetch(master, project["id"])
    by_branch = await master.submit(project["id"], "main")
    assert by_branch["commit"]["identifier"] == second
    by_prefix = await master.submit(project["id"], first[:10])
    assert by_prefix["commit"]["identifier"] == first


async def test_commit_without_valohai_yaml(master: MasterClient, tmp_path: Path) -> None:
    repo = Repo.init(tmp_path / "bare-code", initial_branch="main")
    sha = commit_files(repo, {"train.py": "print(1)\n"}, "no yaml")
    project = await linked_project(master, str(repo.working_tree_dir))
    fetched = await fetch(master, project["id"])
    assert [c["identifier"] for c in fetched["commits"]] == [sha]
    assert fetched["errors"] and "valohai.yaml" in fetched["errors"][0]
    resp = await master.api(
        "POST", "/api/v0/executions/", json={"project": project["id"], "commit": sha, "step": "x"}
    )
    assert resp.status_code == 400 and "valohai.yaml" in resp.json()["message"]
    assert resp.json()["hint"]


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("/nonexistent/repository/path", "not a Git repository"),
        ("file:///nonexistent/repo", "not a Git repository"),
        ("ext::sh -c touch% /tmp/pwned", "transport helpers"),
        ("fd::17", "transport helpers"),
        ("ftp://example.com/repo.git", "refused"),
        ("http://example.com/repo.git", "refused"),
        ("--upload-pack=touch /tmp/pwned", "not a repository URL"),
        ("ssh://git:hunter2@example.com/repo.git", "may not hold a password"),
        ("", "needs a URL"),
    ],
)
async def test_bad_repository_urls(master: MasterClient, url: str, words: str) -> None:
    project = await master.create_project()
    resp = await master.api(
        "PATCH", f"/api/v0/projects/{project['id']}/", json={"repository": {"url": url}}
    )
    assert resp.status_code == 400, resp.text
    assert words in resp.json()["message"] and resp.json()["hint"]
    assert not Path("/tmp/pwned").exists()
    shown = await master.api("GET", f"/api/v0/projects/{project['id']}/")
    assert shown.json()["repository"] is None


async def test_unknown_commit_and_unlinked_fetch(
    master: MasterClient, git_repo: tuple[Repo, list[str]]
) -> None:
    repo, _ = git_repo
    unlinked = await master.create_project("plain")
    resp = await master.api("POST", f"/api/v0/projects/{unlinked['id']}/fetch/")
    assert resp.status_code == 400 and "not linked" in resp.json()["message"]
    project = await linked_project(master, str(repo.working_tree_dir))
    await fetch(master, project["id"])
    for bad in ("0" * 40, "no-such-branch", "--all", "@{-1}", "main~1", "main:train.py"):
        resp = await master.api(
            "POST",
            "/api/v0/executions/",
            json={"project": project["id"], "commit": bad, "step": "train"},
        )
        assert resp.status_code == 400, resp.text
        assert "No commit" in resp.json()["message"] and "fetch" in resp.json()["hint"]
    missing = await master.api("GET", f"/api/v0/commits/{'0' * 40}/")
    assert missing.status_code == 404


async def test_repository_deleted_after_linking(
    master: MasterClient, git_repo: tuple[Repo, list[str]], tmp_path: Path
) -> None:
    repo, _ = git_repo
    project = await linked_project(master, str(repo.working_tree_dir))
    moved = tmp_path / "moved"
    Path(str(repo.working_tree_dir)).rename(moved)
    resp = await master.api("POST", f"/api/v0/projects/{project['id']}/fetch/")
    assert resp.status_code == 400, resp.text
    assert "Fetching" in resp.json()["message"] and resp.json()["hint"]


async def test_credentials_are_stored_encrypted_and_never_returned(master: MasterClient) -> None:
    port = free_port()  # nothing listens there: the fetch fails, quickly and without the secret
    project = await linked_project(
        master, f"https://robot:s3cr3t-token@127.0.0.1:{port}/org/repo.git"
    )
    assert project["repository"]["url"] == f"https://127.0.0.1:{port}/org/repo.git"
    assert project["repository"]["has_credentials"] is True
    doc = await master.master.ctx.store.projects.find_one({"_id": project["id"]})
    assert doc is not None and "s3cr3t-token" not in repr(doc)
    creds = master.master.services.projects.secrets.open(doc["repository"]["credentials"])
    assert (creds.username, creds.password) == ("robot", "s3cr3t-token")
    resp = await master.api("POST", f"/api/v0/projects/{project['id']}/fetch/")
    assert resp.status_code == 400 and "s3cr3t-token" not in resp.text
    listed = await master.api("GET", "/api/v0/projects/")
    assert "s3cr3t-token" not in listed.text
    ssh = await master.api(
        "PATCH",
        f"/api/v0/projects/{project['id']}/",
        json={"repository": {"url": "git@example.com:org/repo.git", "ssh_private_key": "KEY"}},
    )
    assert ssh.status_code == 200 and "KEY" not in ssh.text
    assert ssh.json()["repository"]["has_credentials"] is True
    unlinked = await master.api(
        "PATCH", f"/api/v0/projects/{project['id']}/", json={"repository": None}
    )
    assert unlinked.json()["repository"] is None


async def test_commit_with_symlink_out_is_refused_when_unpacked(
    master: MasterClient, tmp_path: Path
) -> None:
    repo = Repo.init(tmp_path / "evil", initial_branch="main")
    root = Path(str(repo.working_tree_dir))
    (root / "valohai.yaml").write_text(VALOHAI_YAML)
    (root / "escape").symlink_to("../../../../etc")
    repo.index.add(["valohai.yaml", "escape"])
    sha = str(repo.index.commit("evil", author=ME, committer=ME).hexsha)
    project = await linked_project(master, str(root))
    await fetch(master, project["id"])
    execution = await master.submit(project["id"], sha)
    archive = tmp_path / "code.tgz"
    archive.write_bytes(await code_of(master, tmp_path, execution))
    with pytest.raises(UnsafeArchive):
        safe_extract(str(archive), str(tmp_path / "out" / "dest"))
    assert not (tmp_path / "out" / "dest" / "escape").exists()


@pytest.fixture
def https_repo(
    tmp_path: Path, git_repo: tuple[Repo, list[str]], monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[str, list[str]]]:
    """The test repository served over real TLS (Git's dumb HTTP protocol) behind Basic auth."""
    repo, shas = git_repo
    www = tmp_path / "www"
    served = Repo.clone_from(str(repo.working_tree_dir), www / "repo.git", bare=True)
    served.git.update_server_info()
    cert, key = self_signed(tmp_path, "127.0.0.1")
    monkeypatch.setenv("GIT_SSL_CAINFO", cert)
    expected = "Basic " + base64.b64encode(b"robot:right-token").decode()
    seen: list[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: Any, **kw: Any) -> None:
            super().__init__(*args, directory=str(www), **kw)

        def do_GET(self) -> None:
            seen.append(self.headers.get("Authorization", ""))
            if self.headers.get("Authorization") != expected:
                self.send_response(401)
                self.send_header("WWW-Authenticate", 'Basic realm="git"')
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            super().do_GET()

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}/repo.git", shas
        assert expected in seen  # the stored credentials reached the server as a header
    finally:
        server.shutdown()
        server.server_close()


async def test_https_repository_with_stored_credentials(
    master: MasterClient, https_repo: tuple[str, list[str]]
) -> None:
    url, (first, second) = https_repo
    project = await master.create_project("over-https")
    resp = await master.api(
        "PATCH",
        f"/api/v0/projects/{project['id']}/",
        json={"repository": {"url": url, "username": "robot", "password": "wrong-token"}},
    )
    assert resp.status_code == 200 and "wrong-token" not in resp.text
    refused = await master.api("POST", f"/api/v0/projects/{project['id']}/fetch/")
    assert refused.status_code == 400, refused.text
    assert "Fetching" in refused.json()["message"] and "credentials" in refused.json()["hint"]
    assert "wrong-token" not in refused.text
    # Credentials in the URL are taken out of it and used the same way.
    url_with_secret = url.replace("https://", "https://robot:right-token@")
    await linked_project_update(master, project["id"], url_with_secret)
    fetched = await fetch(master, project["id"])
    assert [c["identifier"] for c in fetched["commits"]] == [second, first]
    assert "right-token" not in repr(fetched)
    execution = await master.submit(project["id"], first)
    assert execution["commit"]["identifier"] == first


async def linked_project_update(master: MasterClient, project_id: str, url: str) -> None:
    resp = await master.api(
        "PATCH", f"/api/v0/projects/{project_id}/", json={"repository": {"url": url}}
    )
    assert resp.status_code == 200, resp.text
    assert "right-token" not in resp.text and resp.json()["repository"]["has_credentials"]


def keypair(path: Path) -> str:
    """Make an ed25519 key pair with ssh-keygen; return the private key's text."""
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)],
        check=True,
        stdin=subprocess.DEVNULL,
    )
    return path.read_text()


@pytest.fixture
def ssh_repo(tmp_path: Path, git_repo: tuple[Repo, list[str]]) -> Iterator[dict[str, Any]]:
    """A real OpenSSH server (Debian's openssh-server) serving the test repository by key only."""
    repo, shas = git_repo
    sshd_bin = shutil.which("sshd") or "/usr/sbin/sshd"
    assert os.path.exists(sshd_bin), "openssh-server is needed: apt-get install -y openssh-server"
    keys = tmp_path / "ssh"
    keys.mkdir()
    keypair(keys / "host")
    client = keypair(keys / "client")
    (keys / "authorized_keys").write_text((keys / "client.pub").read_text())
    os.makedirs("/run/sshd", exist_ok=True)  # sshd's privilege separation directory
    port = free_port()
    (keys / "sshd_config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {keys / 'host'}\n"
        f"AuthorizedKeysFile {keys / 'authorized_keys'}\nPidFile {keys / 'sshd.pid'}\n"
        "PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n"
        "StrictModes no\nPermitRootLogin prohibit-password\n"
    )
    with open(keys / "sshd.log", "wb") as log:
        proc = subprocess.Popen(
            [sshd_bin, "-D", "-e", "-f", str(keys / "sshd_config")],
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
    try:
        wait_for_port("127.0.0.1", port, 20, proc)
        user = getpass.getuser()
        yield {
            "url": f"ssh://{user}@127.0.0.1:{port}{repo.working_tree_dir}",
            "key": client,
            "other_key": keypair(keys / "stranger"),
            "shas": shas,
        }
    finally:
        proc.terminate()
        proc.wait(10)


async def test_ssh_repository_with_a_stored_key(
    master: MasterClient, ssh_repo: dict[str, Any], master_config: Any
) -> None:
    project = await master.create_project("over-ssh")
    body = {"url": ssh_repo["url"], "ssh_private_key": ssh_repo["other_key"]}
    resp = await master.api(
        "PATCH", f"/api/v0/projects/{project['id']}/", json={"repository": body}
    )
    assert resp.status_code == 200 and "PRIVATE KEY" not in resp.text
    refused = await master.api("POST", f"/api/v0/projects/{project['id']}/fetch/")
    assert refused.status_code == 400, refused.text
    assert "Fetching" in refused.json()["message"] and "PRIVATE KEY" not in refused.text
    body["ssh_private_key"] = ssh_repo["key"]
    resp = await master.api(
        "PATCH", f"/api/v0/projects/{project['id']}/", json={"repository": body}
    )
    assert resp.json()["repository"]["has_credentials"] is True
    fetched = await fetch(master, project["id"])
    assert [c["identifier"] for c in fetched["commits"]] == list(reversed(ssh_repo["shas"]))
    # The key lived in a file only during the fetch.
    git_dir = Path(master_config.data_dir) / "git"
    assert not list(git_dir.glob(".key-*"))
    doc = await master.master.ctx.store.projects.find_one({"_id": project["id"]})
    assert doc is not None and "PRIVATE KEY" not in repr(doc)
