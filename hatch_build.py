"""Hatch build hook: bundle the master's web pages (master/web/frontend -> master/web/static/build).

Runs ``npm ci`` (from the committed lock file) and ``npm run build`` when the bundle is missing or
older than its sources; ``HATCH_JUPYTER_BUILDER_SKIP_NPM=1`` skips it, as for the lab extension.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

FRONTEND = Path("master/web/frontend")
BUNDLE = Path("master/web/static/build/app.js")


def newest(paths: list[Path]) -> float:
    return max((p.stat().st_mtime for p in paths if p.exists()), default=0.0)


class WebBundleHook(BuildHookInterface):  # type: ignore[type-arg]
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if self.target_name != "wheel":  # the sdist ships the sources, not the bundle
            return
        root = Path(self.root)
        frontend, bundle = root / FRONTEND, root / BUNDLE
        if os.environ.get("HATCH_JUPYTER_BUILDER_SKIP_NPM") == "1" or not frontend.exists():
            return
        sources = [*frontend.glob("src/*"), frontend / "package-lock.json", frontend / "build.mjs"]
        if bundle.exists() and bundle.stat().st_mtime >= newest(sources):
            return
        npm = shutil.which("npm")
        if npm is None:
            raise RuntimeError("npm is needed to build master/web/frontend (apt-get install npm)")
        lock = frontend / "package-lock.json"
        stamp = frontend / "node_modules" / ".jupyter-valohai-stamp"
        if not stamp.exists() or stamp.stat().st_mtime < lock.stat().st_mtime:
            subprocess.run(
                [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=frontend, check=True
            )
            stamp.touch()
        subprocess.run([npm, "run", "-s", "build"], cwd=frontend, check=True)
