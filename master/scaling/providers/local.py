"""``local``: workers are agent processes on the master's own machine (the default provider).

Each instance is ``jupyter valohai agent`` started as a child of the master, in its own session,
with the group's token in its environment (never on the command line) and
``VH_AGENT_INSTANCE_ID`` naming the instance, so the scaler can tell which worker it is. Its
directory ``<work_dir>/<group>/<instance>/`` holds the pid file, the agent's log and its work
directory; the pid files let a restarted master find the agents it started before.

Group settings: ``runtime`` (``local``, ``docker`` or ``auto``; default: the master's
``$VH_AGENT_RUNTIME``, else ``auto``), ``agent_args`` (extra agent command-line arguments).
Provider settings: ``work_dir``, ``python`` (the interpreter), ``stop_grace_seconds``,
``stop_on_close`` (stop the agents when the master stops; default true).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import uuid
from typing import Any

from .base import PENDING, RUNNING, STOPPING, GroupSpec, Instance, WorkerGroupProvider


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


class LocalProvider(WorkerGroupProvider):
    """Agent processes on this machine."""

    name = "local"
    expected_start_seconds = 3.0

    def __init__(self, settings: dict[str, Any] | None = None) -> None:
        super().__init__(settings)
        self.work_dir = os.path.abspath(
            os.path.expanduser(
                self.settings.get("work_dir")
                or os.path.join(
                    os.environ.get("VH_DATA_DIR") or "~/.local/share/jupyter-valohai", "workers"
                )
            )
        )
        self.python = str(self.settings.get("python") or sys.executable)
        self.grace = float(self.settings.get("stop_grace_seconds", 30.0))
        self._procs: dict[str, subprocess.Popen[bytes]] = {}  # instance id -> our child
        self._stopping: set[str] = set()

    def _group_dir(self, group: GroupSpec) -> str:
        return os.path.join(self.work_dir, group.slug)

    def _pid(self, group: GroupSpec, instance_id: str) -> int | None:
        try:
            with open(os.path.join(self._group_dir(group), instance_id, "pid")) as f:
                return int(f.read().strip())
        except (OSError, ValueError):
            return None

    def _running(self, instance_id: str, pid: int) -> bool:
        proc = self._procs.get(instance_id)
        if proc is not None:
            return proc.poll() is None
        # Started by an earlier master process: alive, and still that agent (pids get reused).
        return _alive(pid) and instance_id in _cmdline(pid)

    async def ensure_group(self, group: GroupSpec) -> None:
        os.makedirs(self._group_dir(group), exist_ok=True)

    async def set_desired(self, group: GroupSpec, size: int) -> None:
        current = [i for i in await self.list_instances(group) if i.state != STOPPING]
        for _ in range(size - len(current)):
            self._spawn(group)

    def _spawn(self, group: GroupSpec) -> str:
        instance_id = f"{group.slug}-{uuid.uuid4().hex[:10]}"
        home = os.path.join(self._group_dir(group), instance_id)
        os.makedirs(home, exist_ok=True)
        runtime = group.settings.get("runtime") or os.environ.get("VH_AGENT_RUNTIME") or "auto"
        argv = [
            self.python, "-m", "jupyter_valohai.app", "agent",
            "--master-url", group.master_url,
            "--name", instance_id,
            "--work-dir", os.path.join(home, "work"),
            *[str(a) for a in group.settings.get("agent_args") or []],
        ]  # fmt: skip
        env = {
            **os.environ,
            "VH_AGENT_TOKEN": group.token,
            "VH_AGENT_INSTANCE_ID": instance_id,
            "VH_AGENT_RUNTIME": str(runtime),
            "PYTHONUNBUFFERED": "1",
        }
        with open(os.path.join(home, "agent.log"), "ab") as log:
            proc = subprocess.Popen(
                argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                start_new_session=True,
            )
        with open(os.path.join(home, "pid"), "w") as f:
            f.write(str(proc.pid))
        self._procs[instance_id] = proc
        return instance_id

    async def list_instances(self, group: GroupSpec) -> list[Instance]:
        out = []
        root = self._group_dir(group)
        for instance_id in sorted(os.listdir(root)) if os.path.isdir(root) else []:
            pid = self._pid(group, instance_id)
            if pid is None:
                continue
            if not self._running(instance_id, pid):
                self._forget(group, instance_id)
                continue
            state = STOPPING if instance_id in self._stopping else RUNNING
            if instance_id not in self._stopping and not os.path.isdir(
                os.path.join(root, instance_id, "work")
            ):
                state = PENDING  # the agent has not made its work directory yet
            out.append(Instance(instance_id, state, details={"pid": pid}))
        return out

    def _forget(self, group: GroupSpec, instance_id: str) -> None:
        self._procs.pop(instance_id, None)
        self._stopping.discard(instance_id)
        home = os.path.join(self._group_dir(group), instance_id)
        with contextlib.suppress(OSError):
            os.unlink(os.path.join(home, "pid"))
        if not self.settings.get("keep_dirs"):
            shutil.rmtree(os.path.join(home, "work"), ignore_errors=True)

    async def terminate(self, group: GroupSpec, instance_id: str) -> None:
        pid = self._pid(group, instance_id)
        if pid is None or not self._running(instance_id, pid):
            return
        self._stopping.add(instance_id)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGTERM)
        asyncio.get_running_loop().call_later(self.grace, self._kill, instance_id, pid)

    def _kill(self, instance_id: str, pid: int) -> None:
        if self._running(instance_id, pid):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)

    async def delete_group(self, group: GroupSpec) -> None:
        for instance in await self.list_instances(group):
            await self.terminate(group, instance.id)

    async def close(self) -> None:
        """Stop the agents this master started (unless ``stop_on_close`` is false)."""
        if not self.settings.get("stop_on_close", True):
            return
        procs = [p for p in self._procs.values() if p.poll() is None]
        for proc in procs:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs:
            try:
                await asyncio.to_thread(proc.wait, 15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGKILL)
                await asyncio.to_thread(proc.wait, 5)
        self._procs.clear()
