"""The runtime pulls a missing image from a real registry (Debian's docker-registry, htpasswd auth)
with the spec's credentials, shows the pull as status lines, and says clearly when it cannot."""

from __future__ import annotations

import contextlib
import hashlib
import io
import shutil
import subprocess
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from agent.runtimes.docker import DockerRuntime
from jupyter_valohai.services import free_port, wait_for_port
from tests.docker.dockerstack import Lines, make_job

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

USER, PASSWORD = "puller", "registry-pass-123"


def _tiny_rootfs() -> bytes:
    """A rootfs of one static busybox (`sh`) and /tmp: a registry round trip in a second."""
    busybox = shutil.which("busybox")
    if busybox is None:
        pytest.fail("busybox is missing: apt-get install busybox-static")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name in ("bin", "tmp"):
            info = tarfile.TarInfo(name)
            info.type, info.mode = tarfile.DIRTYPE, 0o1777 if name == "tmp" else 0o755
            tar.addfile(info)
        tar.add(busybox, "bin/busybox")
        link = tarfile.TarInfo("bin/sh")
        link.type, link.linkname = tarfile.SYMTYPE, "busybox"
        tar.addfile(link)
    return buf.getvalue()


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real registry v2 on 127.0.0.1 that wants a user and password; yields host:port."""
    binary = shutil.which("docker-registry")
    if binary is None:
        pytest.fail("docker-registry is missing: apt-get install docker-registry")
    htpasswd = shutil.which("htpasswd")
    if htpasswd is None:
        pytest.fail("htpasswd is missing: apt-get install apache2-utils")
    root = tmp_path_factory.mktemp("registry")
    entry = subprocess.run(
        [htpasswd, "-Bbn", USER, PASSWORD], capture_output=True, text=True, check=True
    ).stdout
    (root / "htpasswd").write_text(entry)
    port = free_port()
    (root / "config.yml").write_text(
        f"""version: 0.1
log: {{level: warn}}
storage: {{filesystem: {{rootdirectory: {root / "data"}}}}}
http: {{addr: "127.0.0.1:{port}"}}
auth: {{htpasswd: {{realm: test-registry, path: {root / "htpasswd"}}}}}
"""
    )
    with open(root / "registry.log", "wb") as log:
        proc = subprocess.Popen(
            [binary, "serve", str(root / "config.yml")], stdout=log, stderr=subprocess.STDOUT
        )
    try:
        wait_for_port("127.0.0.1", port, 30, proc)
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture(scope="module")
def pushed(registry: str, dockerd: docker.DockerClient) -> Iterator[str]:
    """The tiny image, pushed to the registry and then removed from the engine."""
    data = _tiny_rootfs()
    repository = f"{registry}/vh/tiny"
    tag = hashlib.sha256(data).hexdigest()[:12] + f"-{time.monotonic_ns()}"
    dockerd.api.import_image_from_data(data, repository=repository, tag=tag)
    auth = {"username": USER, "password": PASSWORD}
    for line in dockerd.api.push(repository, tag, auth_config=auth, stream=True, decode=True):
        assert "error" not in line, line
    image = f"{repository}:{tag}"
    dockerd.images.remove(image)
    yield image
    _forget(dockerd, image)


def _forget(client: docker.DockerClient, image: str) -> None:
    with contextlib.suppress(docker.errors.ImageNotFound):
        client.images.remove(image, force=True)


@pytest.fixture
def runtime(tmp_path, dockerd: docker.DockerClient) -> DockerRuntime:
    return DockerRuntime(owner=str(tmp_path), stop_grace_seconds=2)


def test_pull_with_the_registry_credentials(
    tmp_path: Path, runtime: DockerRuntime, dockerd: docker.DockerClient, pushed: str
) -> None:
    _forget(dockerd, pushed)
    lines = Lines()
    spec = {
        "image": pushed,
        "commands": ["echo pulled and ran as $(busybox id -u)"],
        "registry_auth": {"username": USER, "password": PASSWORD},
    }
    result = runtime.process(make_job(tmp_path, spec, lines))
    assert result.status == "complete", lines.events
    assert lines.of("stdout") == ["pulled and ran as 65534\n"]
    status = lines.of("status")
    assert status[0] == f"Pulling image {pushed}", status
    assert any(m.startswith("Digest: sha256:") for m in status), status
    assert status[-1].startswith(f"Pulled {pushed} in "), status
    assert not any(PASSWORD in m for _, m in lines.events)


@pytest.mark.parametrize(
    "auth", [None, {"username": USER, "password": "wrong"}], ids=["none", "wrong"]
)
def test_pull_without_good_credentials_is_a_clear_error(
    tmp_path: Path,
    runtime: DockerRuntime,
    dockerd: docker.DockerClient,
    pushed: str,
    auth: dict | None,
) -> None:
    _forget(dockerd, pushed)
    lines = Lines()
    spec = {"image": pushed, "commands": ["echo never"], "registry_auth": auth}
    result = runtime.process(make_job(tmp_path, spec, lines))
    assert result.status == "error", lines.events
    status = lines.of("status")
    assert status[0] == f"Pulling image {pushed}"
    assert status[-1].startswith(f"Could not pull Docker image {pushed!r}: "), status
    assert "credentials" in result.message  # the hint
    assert "wrong" not in " ".join(m for _, m in lines.events)
    assert lines.of("stdout") == []


def test_image_without_python_cannot_run_a_notebook(
    tmp_path: Path, runtime: DockerRuntime, pushed: str
) -> None:
    lines = Lines()
    spec = {
        "image": pushed,
        "kind": "notebook",
        "notebook": "nb.ipynb",
        "commands": ["echo commands first"],
        "registry_auth": {"username": USER, "password": PASSWORD},
    }
    result = runtime.process(make_job(tmp_path, spec, lines))
    assert (result.status, result.exit_code) == ("error", 127), lines.events
    assert lines.of("stdout") == ["commands first\n"]
    assert lines.of("status")[-1] == (
        f"Image {pushed} has no python3: notebook steps need an image with python3 and papermill."
    ), lines.events
