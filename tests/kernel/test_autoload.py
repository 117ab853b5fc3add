"""``%valohai`` without ``%load_ext``: the startup file the wheel installs into IPython's config."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from .conftest import Kernel, kernel_env

REPO = Path(__file__).resolve().parents[2]
STARTUP = REPO / "jupyter_valohai" / "ipython" / "startup" / "50-jupyter-valohai.py"
INSTALLED = Path(sys.prefix) / "etc" / "ipython" / "startup" / STARTUP.name

PROBE = (
    "ip = get_ipython()\n"
    "print('valohai' in ip.magics_manager.magics['line'],\n"
    "      '_jupyter_valohai_autoload' in ip.user_ns)"
)


def _kernel(tmp_path: Path, **env: str) -> Kernel:
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    return Kernel(work, kernel_env(tmp_path, **env))


def test_the_startup_file_loads_the_extension(tmp_path: Path) -> None:
    startup = tmp_path / "ipython" / "profile_default" / "startup"
    startup.mkdir(parents=True)
    shutil.copy(STARTUP, startup / STARTUP.name)
    kernel = _kernel(tmp_path)
    try:
        assert kernel.ok(PROBE).stdout.split() == ["True", "False"]
        # Loaded like %load_ext: the magic answers (here: no master is configured).
        out = kernel.run("%valohai list")
        assert out.stderr.startswith("Valohai: No jupyter-valohai master is configured."), out
        # Notebooks that still say %load_ext load quietly (no "already loaded" notice).
        assert kernel.ok("%load_ext jupyter_valohai").stdout == ""
    finally:
        kernel.stop()


def test_the_startup_file_can_be_switched_off(tmp_path: Path) -> None:
    startup = tmp_path / "ipython" / "profile_default" / "startup"
    startup.mkdir(parents=True)
    shutil.copy(STARTUP, startup / STARTUP.name)
    kernel = _kernel(tmp_path, JUPYTER_VALOHAI_AUTOLOAD="0")
    try:
        assert kernel.ok(PROBE).stdout.split() == ["False", "False"]
    finally:
        kernel.stop()


def test_the_installed_package_autoloads_the_extension(tmp_path: Path) -> None:
    assert INSTALLED.is_file(), (
        f"{INSTALLED} is missing: is the package installed with its shared-data "
        "(etc/ipython/startup)?"
    )
    kernel = _kernel(tmp_path)  # a fresh IPYTHONDIR: only the environment's config dirs count
    try:
        assert kernel.ok(PROBE).stdout.split() == ["True", "False"]
    finally:
        kernel.stop()
