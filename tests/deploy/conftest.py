"""Deployments against the real components: dockerd, the offline test image, docker-registry
with htpasswd auth, and a master + local agent that train a scikit-learn model in a notebook.

``sklearn_image`` is the test image plus scikit-learn (the versions of this venv, so the pickled
model loads), built offline: ``pip download`` into a cache, COPY the wheels in, install with
``--no-index`` under ``network_mode="none"`` (as scripts/build-test-image does).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import pickle
import shutil
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path

import docker
import nbformat
import pytest

from master.deploy.targets.local import LABEL_OWNER
from tests.docker.conftest import CACHE, dockerd, test_image
from tests.docker.test_registry_pull import PASSWORD, USER, registry
from tests.e2e.stack import Stack

__all__ = ["dockerd", "registry", "test_image"]

SKLEARN_REQUIREMENTS = [
    f"scikit-learn=={__import__('sklearn').__version__}",
    f"numpy=={__import__('numpy').__version__}",
    f"scipy=={__import__('scipy').__version__}",
]

SAMPLES = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3], [5.9, 3.0, 4.2, 1.5]]

TRAIN_YAML = """\
- step:
    name: train
    image: python:3.11
    source-path: train.ipynb
    command: []
    parameters:
      - name: c
        type: float
        default: 1.0
- endpoint:
    name: predict
    image: {image}
    wsgi: predict:application
    port: 8000
    files:
      - name: model
        path: model.pkl
"""

TRAIN_CELLS = [
    "import os, pickle\n"
    "from sklearn.datasets import load_iris\n"
    "from sklearn.linear_model import LogisticRegression",
    "X, y = load_iris(return_X_y=True)\n"
    "model = LogisticRegression(C=c, max_iter=500).fit(X, y)\n"
    "print('accuracy', model.score(X, y))",
    "out = os.environ.get('VH_OUTPUTS_DIR', '/valohai/outputs')\n"
    "with open(os.path.join(out, 'model.pkl'), 'wb') as f:\n"
    "    pickle.dump(model, f)",
]

PREDICT_PY = """\
import json
import os
import pickle

with open("model.pkl", "rb") as f:
    MODEL = pickle.load(f)
VERSION = os.environ.get("MODEL_TAG", "")


def application(environ, start_response):
    if environ["REQUEST_METHOD"] != "POST":
        start_response("200 OK", [("Content-Type", "application/json")])
        secrets = [k for k in os.environ if k in ("VH_ADMIN_TOKEN", "VH_AGENT_TOKEN")]
        return [json.dumps({"ok": True, "tag": VERSION, "secrets": secrets}).encode()]
    size = int(environ.get("CONTENT_LENGTH") or 0)
    data = json.loads(environ["wsgi.input"].read(size) or b"{}")
    predictions = [int(p) for p in MODEL.predict(data["data"])]
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps({"predictions": predictions, "tag": VERSION}).encode()]
"""


def train_notebook() -> str:
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell("c = 1.0")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, *(nbformat.v4.new_code_cell(src) for src in TRAIN_CELLS)]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    return nbformat.writes(nb)


def _download_wheels(dest: Path) -> None:
    if (dest / ".complete").exists():
        return
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    arch = os.uname().machine
    platforms = [
        f"manylinux2014_{arch}",
        f"manylinux_2_17_{arch}",
        f"manylinux_2_28_{arch}",
        f"manylinux_2_34_{arch}",
        "any",
    ]
    argv = [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check"]
    argv += ["--only-binary=:all:", "--python-version", "3.11", "--implementation", "cp"]
    argv += ["--abi", "cp311", "--abi", "abi3", "--abi", "none"]
    for platform in platforms:
        argv += ["--platform", platform]
    proc = subprocess.run(
        [*argv, "--dest", str(dest), *SKLEARN_REQUIREMENTS], capture_output=True, text=True
    )
    if proc.returncode != 0:
        pytest.fail(f"pip download of {SKLEARN_REQUIREMENTS} failed:\n{proc.stderr[-3000:]}")
    (dest / ".complete").touch()


@pytest.fixture(scope="session")
def sklearn_image(dockerd: docker.DockerClient, test_image: str) -> str:
    """The test image with scikit-learn installed offline (cached by recipe)."""
    recipe = hashlib.sha256("\n".join([test_image, *SKLEARN_REQUIREMENTS]).encode()).hexdigest()
    image = f"jupyter-valohai-sklearn:{recipe[:12]}"
    with contextlib.suppress(docker.errors.ImageNotFound):
        dockerd.images.get(image)
        return image
    wheels = CACHE / f"sklearn-wheels-{recipe[:12]}"
    _download_wheels(wheels)
    dockerfile = (
        f"FROM {test_image}\n"
        "COPY wheels /tmp/wheels\n"
        "RUN pip install --no-index --no-cache-dir --find-links /tmp/wheels "
        + " ".join(f'"{r}"' for r in SKLEARN_REQUIREMENTS)
        + " && rm -rf /tmp/wheels && python -c 'import sklearn'\n"
    )
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        data = dockerfile.encode()
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
        for wheel in sorted(wheels.glob("*.whl")):
            tar.add(str(wheel), f"wheels/{wheel.name}")
    buf.seek(0)
    try:
        dockerd.images.build(
            fileobj=buf, custom_context=True, tag=image, network_mode="none", rm=True
        )
    except docker.errors.BuildError as exc:
        log = "".join(str(c.get("stream", "")) for c in exc.build_log)
        pytest.fail(f"building {image} failed: {exc}\n{log[-3000:]}")
    return image


@pytest.fixture(scope="module")
def deploy_stack(
    tmp_path_factory: pytest.TempPathFactory,
    mongo_server,
    redis_server,
    dockerd: docker.DockerClient,
) -> Iterator[Stack]:
    """A master (its builder and local target on the real engine) and one local agent."""
    import redis as redis_lib

    client = redis_lib.Redis.from_url(redis_server.url)
    client.flushdb()
    client.close()
    root = tmp_path_factory.mktemp("deploy-stack")
    db = f"vh_deploy_{hashlib.sha256(str(root).encode()).hexdigest()[:12]}"
    stack = Stack(str(root / "stack"), mongo_server.url, db, redis_server.url)
    stack.start_master()
    stack.start_agent()
    try:
        yield stack
    finally:
        stack.stop()
        owner = os.path.join(stack.root, "master")
        for container in dockerd.containers.list(
            all=True, sparse=True, filters={"label": f"{LABEL_OWNER}={owner}"}
        ):
            with contextlib.suppress(docker.errors.NotFound):
                container.remove(force=True)
        for image in dockerd.images.list(filters={"label": f"{LABEL_OWNER}={owner}"}):
            for tag in image.tags:
                with contextlib.suppress(docker.errors.APIError):
                    dockerd.images.remove(tag, noprune=False)


@pytest.fixture(scope="module")
def trained(deploy_stack: Stack, sklearn_image: str, registry: str) -> Iterator[dict]:
    """A project whose notebook execution made model.pkl, registry credentials stored."""
    stack = deploy_stack
    project = stack.create_project("iris")
    files = {
        "valohai.yaml": TRAIN_YAML.format(image=sklearn_image),
        "train.ipynb": train_notebook(),
        "predict.py": PREDICT_PY,
    }
    commit = stack.import_package(project["id"], files)
    execution = stack.submit(project["id"], commit["identifier"], "train")
    final = stack.wait_status(execution["id"], timeout=240)
    assert final["status"] == "complete", stack.explain(execution["id"])
    data = stack.api("GET", "/api/v0/data/", params={"output_execution": execution["id"]}).json()
    model = next(d for d in data["results"] if d["name"] == "model.pkl")
    body = {"registry": registry, "username": USER, "password": PASSWORD}
    assert stack.api("POST", "/api/v0/registry-credentials/", json=body).status_code == 201
    raw = stack.api("GET", f"/api/v0/data/{model['id']}/download/", allow_redirects=True)
    assert raw.status_code == 200, raw.text[:500]
    yield {
        "project": project,
        "commit": commit,
        "files": files,
        "datum": model["id"],
        "execution": execution["id"],
        "model": pickle.loads(raw.content),
        "registry": registry,
    }


def wait_version(stack: Stack, version_id: str, timeout: float = 300) -> dict:
    """Poll the version until its build and start are over (running, failed or stopped); a
    running version asked for an alias is waited for until the alias names it (the rollout
    points the alias right after the version's endpoints run)."""
    deadline = time.monotonic() + timeout
    while True:
        version = stack.api("GET", f"/api/v0/deployment-versions/{version_id}/").json()
        aliased = not version.get("alias") or version["alias"] in version["aliases"]
        if version["status"] in ("failed", "stopped") or (
            version["status"] == "running" and aliased
        ):
            return version
        if time.monotonic() > deadline:
            raise AssertionError(f"version still {version['status']}:\n{version}\n{stack.logs()}")
        time.sleep(0.3)


__all__ += ["PASSWORD", "SAMPLES", "USER", "train_notebook", "wait_version"]
