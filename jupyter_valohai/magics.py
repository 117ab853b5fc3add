"""``%valohai`` and ``%%valohai``: run notebooks, scripts and cells on a jupyter-valohai master.

    %valohai run [PATH] [--param k=v ...] [--input name=uri ...] [--env ENV] [--image IMG]
                 [--title T] [--project P] [--step S] [--no-widget]
    %%valohai [--param k=v ...] [--input ...] [--env ENV] [--image IMG] [--title T] ...
    %valohai status|logs|stop|outputs|pull|view [ID]
    %valohai list [executions|projects|environments]
    %valohai project [NAME]
    %valohai login URL [--token T]

``run`` without PATH runs the current notebook as saved on disk. ``ID`` is an execution id, a
counter of the session's project, or ``<project id>:<counter>``; without it, the session's last
execution. Every refusal is one line on stderr, ``Valohai: <message> (hint: <hint>)``, never a
traceback. Options are traitlets (``c.ValohaiMagics.project = "demo"`` in ipython_config.py).
"""

from __future__ import annotations

import argparse
import getpass
import logging
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from IPython.core.magic import Magics, line_cell_magic, magics_class
from IPython.display import display
from IPython.utils.process import arg_split
from traitlets import Bool, Int, Unicode

from .client import Client
from .connection import Connection, resolve_connection, save_login
from .errors import InvalidInput, ValohaiError
from .models import TERMINAL_STATUSES
from .widget import render
from .widget.local import DEFAULT_OUTPUTS_DIR, download_output, execution_dir, safe_destination

if TYPE_CHECKING:
    from .submit import RunRequest

log = logging.getLogger(__name__)

USAGE_HINT = "see `%valohai --help`"
#: submit.DEFAULT_PROJECT, without importing submit (nbformat and friends) at kernel start.
DEFAULT_PROJECT = "default"
REPORT_HINT = "this is a bug of jupyter-valohai; please report it with the command you ran"


class _Exit(Exception):
    """argparse finished on its own (``--help`` printed): nothing more to do."""


class _Parser(argparse.ArgumentParser):
    """argparse that raises InvalidInput (one line with the usage as hint) instead of exiting."""

    def error(self, message: str) -> Any:
        usage = " ".join(self.format_usage().split()).removeprefix("usage: ")
        raise InvalidInput(f"{self.prog}: {message}.", hint=f"usage: {usage}")

    def exit(self, status: int = 0, message: str | None = None) -> Any:
        if message:
            print(message, file=sys.stderr, end="")
        raise _Exit()

    def parse_line(self, line: str) -> argparse.Namespace:
        """Parse a magic's line; unknown options are told with their own command's usage."""
        args, extra = self.parse_known_args(arg_split(line, posix=True))
        if extra:
            commands = getattr(self, "commands", {})
            parser = commands.get(getattr(args, "command", None), self)
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        return args


def _run_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--param", "-p", action="append", default=[], metavar="NAME=VALUE",
        help="a parameter value (repeatable); checked against the notebook's parameters cell",
    )  # fmt: skip
    parser.add_argument(
        "--input", "-i", action="append", default=[], metavar="NAME=URI",
        help="an input URI (repeat a name for several files)",
    )  # fmt: skip
    parser.add_argument("--env", "--environment", dest="env", help="environment (slug or id)")
    parser.add_argument("--image", help="Docker image to run in")
    parser.add_argument("--title", help="a title for the execution")
    parser.add_argument("--project", help="project name (default: the session's project)")
    parser.add_argument("--no-widget", action="store_true", help="print one line, no widget")


def build_parsers() -> tuple[_Parser, _Parser]:
    """The parsers of ``%valohai`` and of ``%%valohai``'s first line."""
    main = _Parser(prog="%valohai", description="Run notebooks and code on jupyter-valohai.")
    sub = main.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    run = sub.add_parser("run", help="run a notebook (default: this one), a .py or a yaml step")
    run.add_argument("path", nargs="?", help=".ipynb, .py or valohai.yaml (default: this notebook)")
    run.add_argument("--step", help="the step of a valohai.yaml to run")
    _run_options(run)
    for name, text in [
        ("status", "show an execution's status and cells"),
        ("stop", "stop an execution"),
        ("outputs", "list an execution's outputs"),
        ("pull", "download an execution's outputs (and executed notebook) here"),
        ("view", "show an execution's live widget again"),
    ]:
        sub.add_parser(name, help=text).add_argument("id", nargs="?", help="execution")
    logs = sub.add_parser("logs", help="print an execution's log")
    logs.add_argument("id", nargs="?", help="execution")
    logs.add_argument("--follow", "-f", action="store_true", help="print new lines until the end")
    lister = sub.add_parser("list", help="list executions, projects or environments")
    lister.add_argument(
        "what", nargs="?", default="executions", choices=["executions", "projects", "environments"]
    )
    lister.add_argument("--status", help="only executions with this status")
    lister.add_argument("--limit", type=int, default=20, help="how many executions")
    project = sub.add_parser("project", help="show or select (creating it) the session's project")
    project.add_argument("name", nargs="?")
    deploy = sub.add_parser(
        "deploy", help="deploy an execution's output with an endpoint of its valohai.yaml"
    )
    deploy.add_argument("id", nargs="?", help="execution")
    deploy.add_argument("--endpoint", help="the endpoint (default: the only one)")
    deploy.add_argument("--output", help="the output for the endpoint's file (default: by path)")
    deploy.add_argument("--deployment", help="deployment name (default: the endpoint's)")
    deploy.add_argument("--alias", help="alias the version takes once it runs (e.g. production)")
    deploy.add_argument("--target", default="local", help="target of a new deployment")
    deploy.add_argument("--registry", default="", help="registry host:port of a new deployment")
    deploy.add_argument("--no-wait", action="store_true", help="return while it builds")
    login = sub.add_parser("login", help="save the master's URL and token for later sessions")
    login.add_argument("url")
    login.add_argument("--token", help="API token (asked for when left out)")
    main.commands = sub.choices  # type: ignore[attr-defined]
    cell = _Parser(prog="%%valohai", description="Run this cell's code as an execution.")
    _run_options(cell)
    return main, cell


def _pairs(items: list[str], what: str, multi: bool = False) -> dict[str, Any]:
    """``["a=1", "b=2"]`` -> ``{"a": "1", "b": "2"}``; with ``multi``, repeated names make lists."""
    out: dict[str, Any] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise InvalidInput(
                f"--{what} {item!r} is not NAME=VALUE.", hint=f"e.g. --{what} name=value"
            )
        name = name.strip()
        if multi and name in out:
            previous = out[name]
            out[name] = [*previous, value] if isinstance(previous, list) else [previous, value]
        else:
            out[name] = value
    return out


def find_notebook(user_ns: dict[str, Any], cwd: str | None = None) -> str:
    """The path of the notebook this kernel runs for (VS Code's variable, Jupyter's env var)."""
    cwd = cwd or os.getcwd()
    for candidate in (user_ns.get("__vsc_ipynb_file__"), os.environ.get("JPY_SESSION_NAME")):
        if not isinstance(candidate, str) or not candidate.endswith(".ipynb"):
            continue
        # JPY_SESSION_NAME is absolute, or relative to the server's root (the kernel starts in
        # the notebook's folder): try it as given, then by its name here.
        for path in (os.path.join(cwd, candidate), os.path.join(cwd, os.path.basename(candidate))):
            if os.path.isfile(path):
                return os.path.relpath(path, cwd) if path.startswith(cwd) else path
    raise InvalidInput(
        "Cannot tell which notebook this kernel belongs to.",
        hint="Give its path: `%valohai run my-notebook.ipynb`.",
    )


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, ValohaiError):
        text = f"{exc.message} (hint: {exc.hint or USAGE_HINT})"
    else:
        text = f"unexpected {type(exc).__name__}: {exc} (hint: {REPORT_HINT})"
    return "Valohai: " + " ".join(text.split())


@magics_class
class ValohaiMagics(Magics):
    """The ``%valohai`` line magic and the ``%%valohai`` cell magic."""

    project = Unicode(
        None, allow_none=True, help="The session's project (default: 'default', created on use)."
    ).tag(config=True)
    environment = Unicode(None, allow_none=True, help="Default environment of runs.").tag(
        config=True
    )
    image = Unicode(None, allow_none=True, help="Default Docker image of runs.").tag(config=True)
    widget = Bool(True, help="Show the live ExecutionView after a run.").tag(config=True)
    outputs_dir = Unicode(DEFAULT_OUTPUTS_DIR, help="Where `pull` and downloads put files.").tag(
        config=True
    )
    max_log_lines = Int(2000, help="Log lines an ExecutionView keeps.").tag(config=True)
    max_snapshot_bytes = Int(0, help="Size limit of a run's code snapshot (0: 50 MiB).").tag(
        config=True
    )

    def __init__(self, shell: Any = None, **kwargs: Any) -> None:
        super().__init__(shell=shell, **kwargs)
        self.parser, self.cell_parser = build_parsers()
        self.connection: Connection | None = None  # set by %valohai login for this session
        self._clients: dict[tuple[str, str], Client] = {}
        self.last: dict[str, Any] | None = None  # the session's last execution

    # --- plumbing -------------------------------------------------------------------------

    def client(self) -> Client:
        conn = self.connection or resolve_connection()
        key = (conn.url, conn.token)
        if key not in self._clients:
            self._clients[key] = Client.from_connection(conn)
        return self._clients[key]

    def _guard(self, action: Callable[[], Any]) -> Any:
        try:
            return action()
        except _Exit:
            return None
        except KeyboardInterrupt:
            print("Valohai: interrupted (hint: the execution goes on; see `%valohai status`)",
                  file=sys.stderr)  # fmt: skip
        except ValohaiError as exc:
            print(_one_line(exc), file=sys.stderr)
        except Exception as exc:
            log.debug("%valohai failed", exc_info=True)
            print(_one_line(exc), file=sys.stderr)
        return None

    @line_cell_magic
    def valohai(self, line: str, cell: str | None = None) -> None:
        """Run notebooks, scripts and cells on jupyter-valohai; see ``%valohai --help``."""
        if cell is None:
            self._guard(lambda: self._line(line))
        else:
            self._guard(lambda: self._cell(line, cell))

    def _line(self, line: str) -> None:
        args = self.parser.parse_line(line)
        getattr(self, "cmd_" + args.command)(args)

    def _cell(self, line: str, cell: str) -> None:
        from .submit import RunRequest

        args = self.cell_parser.parse_line(line)
        if not self._nested():
            self._run(args, RunRequest(code=cell))

    @staticmethod
    def _nested() -> bool:
        """True (and says so) inside an execution: a notebook running remotely must not start
        another copy of itself from its own ``%valohai run`` cell (and that one another...)."""
        if not os.environ.get("VH_JOB_ID"):
            return False
        print(f"%valohai: not run inside execution {os.environ['VH_JOB_ID']}.")
        return True

    def _ref(self, given: str | None) -> str:
        """An execution reference the master knows, from an id, a counter or the last run."""
        if not given:
            if self.last is None:
                raise InvalidInput(
                    "No execution yet in this session.",
                    hint="Give an execution id; `%valohai list` shows them.",
                )
            return str(self.last["id"])
        if given.isdigit():
            name = self.project or (self.last or {}).get("project", {}).get("id") or DEFAULT_PROJECT
            return f"{self.client().get_project(name)['id']}:{given}"
        return given

    # --- running --------------------------------------------------------------------------

    def _run(self, args: argparse.Namespace, req: RunRequest) -> None:
        """Submit ``req`` with the options in ``args``; show the view (or one line)."""
        req.parameters = _pairs(args.param, "param")
        req.inputs = _pairs(args.input, "input", multi=True)
        req.environment = args.env or self.environment
        req.image = args.image
        req.title = args.title
        req.project = args.project or self.project
        req.cwd = os.getcwd()
        from .snapshot import DEFAULT_MAX_BYTES
        from .submit import prepare_run, submit_prepared

        # Every local check (parameters, inputs, snapshot size) before the master is looked for.
        limit = self.max_snapshot_bytes or DEFAULT_MAX_BYTES
        prepared = prepare_run(req, default_image=self.image, max_bytes=limit)
        client = self.client()
        execution = submit_prepared(client, prepared, req.project)
        self.last = execution
        if args.no_widget or not self.widget or not self._widgets_shown():
            print(render.summary(execution, str(execution.get("status", ""))))
            return
        display(self._view(execution["id"], client, execution))

    def _view(self, ref: str, client: Client, execution: dict[str, Any] | None = None) -> Any:
        from .widget import ExecutionView

        return ExecutionView(
            ref,
            client,
            max_lines=self.max_log_lines,
            outputs_dir=self.outputs_dir,
            execution=execution,
        )

    def _widgets_shown(self) -> bool:
        """True in a Jupyter kernel (a frontend may show widgets), False in a terminal."""
        return getattr(self.shell, "kernel", None) is not None

    def cmd_run(self, args: argparse.Namespace) -> None:
        from .submit import RunRequest

        if self._nested():
            return
        path = args.path or find_notebook(self.shell.user_ns if self.shell else {})
        self._run(args, RunRequest(path=path, step=args.step))

    # --- looking at executions ------------------------------------------------------------

    def cmd_status(self, args: argparse.Namespace) -> None:
        ref = self._ref(args.id)
        execution = self.client().get_execution(ref)
        status = str(execution.get("status", ""))
        print(render.summary(execution, status) + _duration(execution.get("duration")))
        if execution.get("status_message"):
            print(f"  {execution['status_message']}")
        cells = execution.get("cells") or []
        for cell in cells:
            mark = {"running": ">", "ok": "ok", "error": "ERR"}.get(cell.get("state"), "")
            print(
                f"  [{cell.get('position')}/{len(cells)}] {mark:3} "
                f"{render.human_duration(cell.get('duration')):>8}  {cell.get('source', '')}"
            )

    def cmd_logs(self, args: argparse.Namespace) -> None:
        ref, client = self._ref(args.id), self.client()
        if not args.follow:
            for event in client.events(ref, streams=["stdout", "stderr"]):
                sys.stdout.write(str(event.get("message", "")))
            sys.stdout.flush()
            return
        for event in client.stream_events(ref):
            if event.kind == "log" and event.data.get("stream") in ("stdout", "stderr"):
                sys.stdout.write(str(event.data.get("message", "")))
                sys.stdout.flush()
            elif event.kind == "end":
                print(f"-- {event.data.get('status', 'ended')}")

    def cmd_stop(self, args: argparse.Namespace) -> None:
        ref = self._ref(args.id)
        print(self.client().stop_execution(ref))

    def cmd_deploy(self, args: argparse.Namespace) -> None:
        from .widget.deploy import outcome, wait_version

        ref = self._ref(args.id)
        client = self.client()
        execution_id = client.get_execution(ref)["id"]
        options = {
            "endpoint": args.endpoint,
            "output": args.output,
            "deployment": args.deployment,
            "alias": args.alias,
            "target": args.target,
            "registry": args.registry,
        }
        if self._widgets_shown() and not args.no_wait:
            from .widget.deploy import DeployPanel

            panel = DeployPanel(client, execution_id, **options)
            display(panel)
            print(panel.run())
            return
        version = client.deploy(execution_id, **options)
        print(f"Deployment version {version['name']} created; building.")
        if args.no_wait:
            return
        final = wait_version(
            client, version["id"], on_status=lambda v: print(f"-- {v['status']}", flush=True)
        )
        print(outcome(final)[0])

    def cmd_outputs(self, args: argparse.Namespace) -> None:
        ref = self._ref(args.id)
        outputs = self.client().outputs(ref)
        if not outputs:
            print("No outputs (yet).")
        for datum in outputs:
            size = render.human_size(datum.get("size"))
            print(f"{datum.get('name')}\t{size}\t{datum.get('id')}")

    def cmd_pull(self, args: argparse.Namespace) -> None:
        ref = self._ref(args.id)
        client = self.client()
        execution = client.get_execution(ref)
        if execution.get("status") not in TERMINAL_STATUSES:
            raise InvalidInput(
                f"Execution #{execution.get('counter')} is still {execution.get('status')}.",
                hint="Wait for its end (`%valohai logs --follow`), then pull.",
            )
        folder = execution_dir(execution, self.outputs_dir)
        outputs = client.outputs(execution["id"])
        for datum in outputs:  # an unsafe name refuses the pull before anything is written
            safe_destination(folder, str(datum.get("name", "")))
        paths = [download_output(client, datum, folder) for datum in outputs]
        plural = "" if len(paths) == 1 else "s"
        print(f"Pulled {len(paths)} output{plural} of #{execution.get('counter')} into {folder}")
        notebook = _executed_notebook(execution, paths)
        if notebook:
            link = render.link(render.file_href(notebook), notebook)
            bundle = {"text/plain": f"Executed notebook: {notebook}"}
            if self._widgets_shown():
                bundle["text/html"] = f"Executed notebook: {link}"
            display(bundle, raw=True)

    def cmd_view(self, args: argparse.Namespace) -> None:
        if not self._widgets_shown():
            self.cmd_status(args)
            return
        ref = self._ref(args.id)
        client = self.client()
        execution = client.get_execution(ref)  # an unknown id is one line, not an empty view
        display(self._view(execution["id"], client, execution))

    def cmd_list(self, args: argparse.Namespace) -> None:
        client = self.client()
        if args.what == "projects":
            for project in client.projects():
                mark = "*" if project.get("name") == (self.project or DEFAULT_PROJECT) else " "
                print(f"{mark} {project.get('name')}\t{project.get('id')}")
            return
        if args.what == "environments":
            for env in client.environments():
                print(f"{env.get('slug')}\t{env.get('name')}\t{env.get('id')}")
            return
        executions = client.list_executions(self.project, args.status, args.limit)
        if not executions:
            print("No executions.")
        for ex in executions:
            project = (ex.get("project") or {}).get("name", "")
            print(
                f"#{ex.get('counter')}\t{ex.get('status')}\t{ex.get('step')}\t{project}\t"
                f"{render.human_duration(ex.get('duration'))}\t{ex.get('id')}"
            )

    # --- session settings -----------------------------------------------------------------

    def cmd_project(self, args: argparse.Namespace) -> None:
        if not args.name:
            print(f"Project of this session: {self.project or DEFAULT_PROJECT}")
            return
        found = self.client().ensure_project(args.name)
        self.project = str(found.get("name") or args.name)
        print(f"Project {self.project} ({found.get('id')}) selected for this session.")

    def cmd_login(self, args: argparse.Namespace) -> None:
        token = args.token or getpass.getpass("Valohai API token: ")
        conn = Connection(args.url, token, "login")
        with Client.from_connection(conn) as client:
            user = client.me()  # a wrong URL or token is refused before anything is saved
        path = save_login(conn.url, token)
        self.connection = conn
        name = user.get("username") or user.get("id") or "?"
        print(f"Logged in to {conn.url} as {name}; saved to {path}.")


def _duration(seconds: Any) -> str:
    text = render.human_duration(seconds) if isinstance(seconds, int | float) else ""
    return f", {text}" if text else ""


def _executed_notebook(execution: dict[str, Any], paths: list[str]) -> str | None:
    source = str(execution.get("notebook") or "").replace("\\", "/").rsplit("/", 1)[-1]
    notebooks = [p for p in paths if p.endswith(".ipynb")]
    for path in notebooks:
        if source and os.path.basename(path) == source:
            return path
    return notebooks[0] if notebooks else None


def load_ipython_extension(ip: Any) -> None:
    """Register the magics (``%load_ext jupyter_valohai`` calls this through the package); a
    second call (auto-loaded, then ``%load_ext``) keeps the session's magics and their state."""
    if "valohai" not in ip.magics_manager.magics.get("line", {}):
        ip.register_magics(ValohaiMagics)
