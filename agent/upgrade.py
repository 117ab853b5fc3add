"""Self-upgrade: install the master's agent release into this agent's venv and restart.

Only agents started with ``--AgentApp.self_upgrade=True`` (the bootstrap script does) do this, and
only inside a virtual environment: an agent must never reinstall a system or development install.
It happens between executions, never during one.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import tempfile
from typing import Any


def in_venv() -> bool:
    return sys.prefix != getattr(sys, "base_prefix", sys.prefix)


def install_and_restart(client: Any, release: dict[str, Any], log: logging.Logger) -> None:
    """Download ``release`` (``version``, ``url``, ``sha256``), pip-install it, exec again.

    Returns only when the upgrade could not be made (logged; the agent keeps running as it is).
    """
    version, url = str(release.get("version") or ""), str(release.get("url") or "")
    if not url or not version:
        return
    if not in_venv():
        log.warning("Not upgrading to %s: this agent does not run in a venv", version)
        return
    with tempfile.TemporaryDirectory(prefix="vh-upgrade-") as tmp:
        wheel = os.path.join(tmp, os.path.basename(url.split("?", 1)[0]))
        try:
            _, digest = client.download(url, wheel)
        except Exception as exc:
            log.warning("Not upgrading to %s: download failed (%s)", version, exc)
            return
        if release.get("sha256") and digest != release["sha256"]:
            log.warning("Not upgrading to %s: the wheel's SHA-256 does not match", version)
            return
        log.info("Upgrading the agent to %s", version)
        done = subprocess.run(
            [sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check", wheel],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            log.warning("Upgrade to %s failed: %s", version, done.stderr[-2000:])
            return
    log.info("Agent %s installed; restarting", version)
    argv = [sys.executable, "-m", "jupyter_valohai.app", *sys.argv[1:]]
    os.execv(sys.executable, argv)
