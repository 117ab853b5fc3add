"""Deploy from the sidebar in Chromium: a script run from Lab saves a model; its output's Deploy
picks the endpoint of the valohai.yaml beside it and the model file, creates the version, shows
the build log as it streams, then the endpoint's URLs and a "try it" box that gets the answer.

Twice: with no Docker engine (``DOCKER_HOST`` points nowhere: the builder says so and the
``local`` target serves the endpoint as a process on 127.0.0.1), and with the real engine and a
real registry with auth (the offline test image as the endpoint's base: the image is built,
pushed with the stored credentials and run as a container).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

import docker
import pytest

from master.deploy.targets.local import LABEL_OWNER
from tests.browser.lab import Lab
from tests.browser.test_sidebar import RUN_MS, UI_MS
from tests.docker.conftest import dockerd, test_image
from tests.docker.test_registry_pull import PASSWORD, USER, registry
from tests.e2e.stack import Stack
from tests.serverext.test_deploy_routes import PREDICT, TRAIN, VALOHAI_YAML

__all__ = ["dockerd", "registry", "test_image"]

pytestmark = pytest.mark.slow


@pytest.fixture
def no_docker(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Before the master starts: no Docker engine answers it (the process path, every time)."""
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-docker.sock")


@pytest.fixture
def engine(dockerd: docker.DockerClient, test_image: str) -> str:
    """The real engine, answering before the master starts; the endpoint's base image."""
    return test_image


def test_deploy_an_output_from_the_sidebar(
    no_docker: None, page: Any, lab: Lab, master: Stack
) -> None:
    deploy_from_the_sidebar(page, lab, master, image="python:3.11", registry="")


def test_deploy_with_the_docker_engine_and_a_registry(
    engine: str, registry: str, dockerd: docker.DockerClient, page: Any, lab: Lab, master: Stack
) -> None:
    body = {"registry": registry, "username": USER, "password": PASSWORD}
    assert master.api("POST", "/api/v0/registry-credentials/", json=body).status_code == 201
    try:
        version = deploy_from_the_sidebar(page, lab, master, image=engine, registry=registry)
        image = version["endpoints"][0]["image"]
        assert image.startswith(f"{registry}/browser/from-lab-predict:"), image
        (container,) = dockerd.containers.list(
            filters={"label": f"{LABEL_OWNER}={os.path.join(master.root, 'master')}"}
        )
        assert container.image.tags == [image] or image in container.image.tags
    finally:
        owner = os.path.join(master.root, "master")
        for container in dockerd.containers.list(
            all=True, sparse=True, filters={"label": f"{LABEL_OWNER}={owner}"}
        ):
            with contextlib.suppress(docker.errors.NotFound):
                container.remove(force=True)


def deploy_from_the_sidebar(page: Any, lab: Lab, master: Stack, image: str, registry: str) -> dict:
    """Run train.py, deploy its model.json from the sidebar, try the endpoint; the version."""
    from playwright.sync_api import expect

    docker_path = bool(registry)
    (lab.root / "train.py").write_text(TRAIN)
    (lab.root / "predict.py").write_text(PREDICT)
    (lab.root / "valohai.yaml").write_text(VALOHAI_YAML.replace("python:3.11", image))
    answer = lab.api("POST", "valohai/executions", json={"path": "train.py"})
    assert answer.status_code == 201, answer.text
    execution = answer.json()
    master.wait_status(execution["id"], timeout=RUN_MS / 1000)

    page.goto(f"{lab.url}/lab?token={lab.token}")
    page.locator('.lm-TabBar-tab[title^="Valohai"]').first.click(timeout=UI_MS)  # the sidebar
    panel = page.locator("#jupyter-valohai-sidebar")
    expect(panel.locator(".jp-Valohai-connection")).to_have_attribute(
        "data-state", "ok", timeout=UI_MS
    )
    panel.locator(f'[data-execution="{execution["id"]}"]').get_by_role("button").click()
    detail = panel.locator(".jp-Valohai-detail")
    expect(detail).to_have_attribute("data-status", "complete", timeout=UI_MS)
    output = detail.locator('[data-output="model.json"]')
    expect(output).to_be_visible(timeout=UI_MS)

    output.get_by_role("button", name="Deploy").click()
    deploy = detail.get_by_role("region", name="Deploy")
    expect(deploy).to_have_attribute("data-state", "form", timeout=UI_MS)
    expect(deploy.get_by_label("Endpoint")).to_have_value("predict")
    expect(deploy.get_by_label("File model (model.json)").locator("option:checked")).to_have_text(
        "model.json"
    )
    deployment = deploy.get_by_label("Deployment")
    expect(deployment).to_have_value("predict")
    # A bad name is refused in the browser, with what names may hold.
    deployment.fill("Not Valid")
    deploy.get_by_role("button", name="Create version").click()
    expect(deploy.locator(".jp-Valohai-fieldError")).to_contain_text("lowercase letters")
    deployment.fill("from-lab")
    deploy.get_by_label("Alias (optional)").fill("staging")
    deploy.get_by_label("Registry (optional)").fill(registry)
    page.shots("deploy-form")
    deploy.get_by_role("button", name="Create version").click()

    expect(deploy).to_have_attribute("data-state", "running", timeout=RUN_MS)
    log = deploy.get_by_label("Build log")
    if docker_path:
        expect(log).to_contain_text(f"Pushed {registry}/browser/from-lab-predict:")
    else:
        expect(log).to_contain_text("No Docker engine answers")
    expect(log).to_contain_text("Endpoint ready on 127.0.0.1:")
    urls = deploy.get_by_label("Endpoint URLs")
    expect(urls.locator('[data-url="staging"]')).to_contain_text("/from-lab/staging/predict")
    page.shots("deployed")

    payload = deploy.get_by_label("Try it: JSON to POST")
    payload.fill('{"x": 3}')
    deploy.get_by_role("button", name="Send").click()
    expect(deploy.get_by_label("Answer")).to_contain_text("HTTP 200")
    expect(deploy.get_by_label("Answer")).to_contain_text('"y": 7')
    payload.fill("{x: 3}")
    deploy.get_by_role("button", name="Send").click()
    expect(deploy.locator(".jp-Valohai-fieldError")).to_contain_text("Not JSON")
    page.shots("tried")

    versions = master.api("GET", "/api/v0/deployment-versions/").json()["results"]
    assert [(v["deployment"]["name"], v["status"], v["aliases"]) for v in versions] == [
        ("from-lab", "running", ["staging"])
    ]

    assert page.console_errors == [], page.console_errors

    # The master's refusal (here: a registry that is no host) shows in the banner, with its hint.
    deploy.get_by_role("button", name="Close deploy").click()
    output.get_by_role("button", name="Deploy").click()
    expect(deploy.get_by_label("Deployment")).to_have_value("from-lab", timeout=UI_MS)
    deploy.get_by_label("Deployment").fill("other")
    deploy.get_by_label("Registry (optional)").fill("bad_host!")
    deploy.get_by_role("button", name="Create version").click()
    banner = panel.get_by_role("alert")
    expect(banner).to_contain_text("'bad_host!' is not a registry host.")
    expect(banner).to_contain_text("Give host or host:port only.")
    page.shots("refused")
    names = [d["name"] for d in master.api("GET", "/api/v0/deployments/").json()["results"]]
    assert names == ["from-lab"]
    assert [e for e in page.console_errors if "status of 400" not in e] == []
    return dict(versions[0])
