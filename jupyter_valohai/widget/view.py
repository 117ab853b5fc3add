"""``ExecutionView``: one execution, live, as an ipywidgets box.

A background thread reads the execution's event stream (server-sent events: the master pushes,
nothing polls), folds each event into a :class:`~.state.ViewState` with the pure :func:`.reduce`,
and copies the state onto the view's traits and panes. The stream replays from the start, so a
view created again by id (after a kernel restart, say) reaches the same state. On status events
the execution is fetched again (status, duration, cells); at its end, its outputs.
"""

from __future__ import annotations

import html
import logging
import threading
import time
from typing import Any

import ipywidgets as widgets
from traitlets import Bool, Dict, Float, Int, List, Unicode

from jupyter_valohai.client import Client, Event
from jupyter_valohai.errors import ValohaiError

from . import render
from .local import DEFAULT_OUTPUTS_DIR, download_output, execution_dir
from .state import DEFAULT_MAX_LINES, ViewState, reduce

log = logging.getLogger(__name__)

#: The panes are redrawn at most this often (traits change with every event).
RENDER_INTERVAL = 0.25
DEPLOY_NOTE = "Deploy an output with an endpoint of the valohai.yaml"
NO_ENDPOINT_NOTE = "Nothing to deploy: the valohai.yaml defines no endpoint"


class ExecutionView(widgets.VBox):
    """A live view of one execution: status, cells, logs, metrics, outputs, Stop and Deploy.

    ``ExecutionView("e-...")`` follows the execution from its first event (a view made again by id
    reaches the same state); ``client`` defaults to ``Client.from_connection()``; ``execution``
    (the master's JSON, if at hand) is shown before the stream answers; ``follow=False`` makes a
    view that only shows what :meth:`apply` is given.
    """

    execution_id = Unicode(help="The execution shown.")
    status = Unicode("", help="The execution's status (queued, started, complete...).")
    status_message = Unicode("", help="The last status event's message.")
    duration = Float(None, allow_none=True, help="Seconds since the execution started.")
    current_cell = Int(None, allow_none=True, help="Index of the running notebook cell.")
    cells: List[dict[str, Any]] = List(
        help="Cells of a notebook execution: index, position, source, state..."
    )
    log_lines: List[str] = List(
        help="The last log lines (carriage-return redraws collapsed, ANSI kept)."
    )
    max_lines = Int(DEFAULT_MAX_LINES, help="How many log lines the view keeps.")
    metrics = Dict(help="Metric name -> its values in order, from metadata events.")
    outputs: List[dict[str, Any]] = List(help="Outputs once ended: dicts of name, size, id.")
    ended = Bool(False, help="True once the execution reached a final status.")
    error = Unicode("", help="Why the live updates stopped, if they failed.")
    local_paths = Dict(help="Output name -> where it was downloaded.")
    outputs_dir = Unicode(DEFAULT_OUTPUTS_DIR, help="Folder (in the working dir) for downloads.")

    def __init__(
        self,
        execution_id: str,
        client: Client | None = None,
        *,
        max_lines: int = DEFAULT_MAX_LINES,
        outputs_dir: str = DEFAULT_OUTPUTS_DIR,
        execution: dict[str, Any] | None = None,
        follow: bool = True,
        **kwargs: Any,
    ) -> None:
        self._own_client = client is None
        self._client = client or Client.from_connection()
        self._lock = threading.RLock()
        self._state = ViewState(execution_id, max_lines=max_lines)
        self._done = threading.Event()
        self._closed = False
        self._last_render = 0.0
        self._render_timer: threading.Timer | None = None
        self._lines_marks: dict[str, Any] = {}
        self._chart: Any = None
        self._build()
        super().__init__(children=self._children(), **kwargs)
        self.execution_id, self.max_lines, self.outputs_dir = execution_id, max_lines, outputs_dir
        if execution:  # known already (just created): shown at once, before the stream answers
            self.apply(Event("execution", None, execution))
        self._thread = threading.Thread(
            target=self._follow, name=f"valohai-view-{execution_id}", daemon=True
        )
        if follow:
            self._thread.start()
        else:
            self._done.set()

    # --- layout ---------------------------------------------------------------------------

    def _build(self) -> None:
        self._header = widgets.HTML()
        self._cells_pane = widgets.HTML()
        self._log_pane = widgets.HTML()
        self._stop = widgets.Button(description="Stop", icon="stop", tooltip="Stop the execution")
        self._stop.on_click(lambda _: self._act(self.stop))
        self._pull = widgets.Button(
            description="Pull", icon="download", tooltip="Download every output", disabled=True
        )
        self._pull.on_click(lambda _: self._act(self.pull))
        self._deploy = widgets.Button(
            description="Deploy", icon="rocket", tooltip=NO_ENDPOINT_NOTE, disabled=True
        )
        self._deploy.on_click(lambda _: self._act(self._deploy_clicked))
        self._deploy_box = widgets.VBox()
        self.deploy_panel: Any = None
        self._endpoints: list[str] = []
        self._buttons = widgets.HBox([self._stop, self._pull, self._deploy])
        self._message = widgets.HTML()
        self._links = widgets.HTML()
        self._chart_box = widgets.Box(layout=widgets.Layout(display="none"))
        self._outputs_box = widgets.VBox()

    def _children(self) -> list[widgets.Widget]:
        return [
            self._header,
            self._buttons,
            self._message,
            self._deploy_box,
            self._cells_pane,
            self._log_pane,
            self._chart_box,
            self._outputs_box,
            self._links,
        ]

    def __repr__(self) -> str:
        return render.summary(self._state.execution or {"id": self.execution_id}, self.status)

    # --- live updates ---------------------------------------------------------------------

    def _follow(self) -> None:
        try:
            self._fetch_execution()
            for event in self._client.stream_events(self.execution_id):
                if self._closed:
                    return
                self.apply(event)
                kind, stream = event.kind, event.data.get("stream")
                if kind == "end" or (kind == "log" and stream == "status"):
                    self._fetch_execution()
                if kind == "end":
                    self._fetch_outputs()
                    self._fetch_endpoints()
                    break
        except ValohaiError as exc:
            self._failed(str(exc))
        except Exception as exc:  # the thread must say why it stopped, whatever it was
            log.exception("ExecutionView %s stopped", self.execution_id)
            self._failed(f"{type(exc).__name__}: {exc} (hint: please report this)")
        finally:
            self._done.set()
            self._render()

    def _failed(self, text: str) -> None:
        if not self._closed:
            self.error = text
            self._message.value = f"<span style='color:#d93025'>Valohai: {html.escape(text)}</span>"

    def _fetch_execution(self) -> None:
        self.apply(Event("execution", None, self._client.get_execution(self.execution_id)))

    def _fetch_endpoints(self) -> None:
        try:
            self._endpoints = list(self._client.execution_endpoints(self.execution_id))
        except ValohaiError:
            self._endpoints = []

    def _fetch_outputs(self) -> None:
        self.apply(Event("outputs", None, {"results": self._client.outputs(self.execution_id)}))

    def apply(self, event: Event) -> None:
        """Fold one event into the view (what the live thread does for each event)."""
        with self._lock:
            before = self._state
            self._state = state = reduce(before, event)
            with self.hold_trait_notifications():
                self.status, self.status_message = state.status, state.status_message
                self.duration, self.current_cell = state.duration, state.current_cell
                if state.cells is not before.cells:
                    self.cells = [dict(c) for c in state.cells]
                if state.lines is not before.lines:
                    self.log_lines = state.log_lines
                if state.metrics is not before.metrics:
                    self.metrics = {k: list(v) for k, v in state.metrics.items()}
                if state.outputs is not before.outputs:
                    self.outputs = [
                        {k: o[k] for k in ("name", "size", "id")} for o in state.outputs
                    ]
                self.ended = state.ended
        self._schedule_render(force=state.ended or state.outputs is not before.outputs)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the live updates stop (the execution ended); False on timeout."""
        return self._done.wait(timeout)

    # --- drawing --------------------------------------------------------------------------

    def _schedule_render(self, force: bool = False) -> None:
        with self._lock:
            wait = RENDER_INTERVAL - (time.monotonic() - self._last_render)
            if force or wait <= 0:
                self._render()
            elif self._render_timer is None:
                self._render_timer = threading.Timer(wait, self._render)
                self._render_timer.daemon = True
                self._render_timer.start()

    def _render(self) -> None:
        with self._lock:
            self._render_timer = None
            self._last_render = time.monotonic()
            if self._closed:
                return
            state = self._state
            self._header.value = render.header(
                state.execution, state.status, state.duration, state.status_message
            )
            self._cells_pane.value = render.cells_table(list(state.cells), state.current_cell)
            self._log_pane.value = render.log_pane(list(state.lines)) if state.lines else ""
            self._stop.disabled = state.ended
            self._pull.disabled = not state.outputs
            deployable = bool(state.outputs and self.status == "complete" and self._endpoints)
            self._deploy.disabled = not deployable
            self._deploy.tooltip = DEPLOY_NOTE if deployable else NO_ENDPOINT_NOTE
            self._draw_metrics(state)
            self._draw_outputs(state)

    def _draw_metrics(self, state: ViewState) -> None:
        if not state.metrics:
            return
        import bqplot  # imported on the first metric: a view without metrics never needs it

        if self._chart is None:
            self._scales = {"x": bqplot.LinearScale(), "y": bqplot.LinearScale()}
            axes = [
                bqplot.Axis(scale=self._scales["x"], label="step"),
                bqplot.Axis(scale=self._scales["y"], orientation="vertical", label="value"),
            ]
            self._chart = bqplot.Figure(
                marks=[],
                axes=axes,
                title="Metrics",
                legend_location="top-left",
                layout=widgets.Layout(height="260px", width="100%"),
                fig_margin={"top": 40, "bottom": 40, "left": 60, "right": 20},
            )
            self._chart_box.children = [self._chart]
            self._chart_box.layout.display = "flex"
        for name, values in state.metrics.items():
            mark = self._lines_marks.get(name)
            if mark is None:
                mark = bqplot.Lines(
                    scales=self._scales,
                    labels=[name],
                    display_legend=True,
                    colors=[bqplot.CATEGORY10[len(self._lines_marks) % 10]],
                )
                self._lines_marks[name] = mark
                self._chart.marks = [*self._chart.marks, mark]
            if len(mark.y) != len(values):
                with mark.hold_sync():
                    mark.x, mark.y = list(range(len(values))), list(values)

    def _draw_outputs(self, state: ViewState) -> None:
        if not state.outputs or self._outputs_box.children:
            return
        rows: list[widgets.Widget] = [widgets.HTML("<b>Outputs</b>")]
        for out in state.outputs:
            name = str(out["name"])
            download = widgets.Button(description="Download", icon="download")
            download.on_click(lambda _, n=name: self._act(lambda: self._show_path(n)))
            load = widgets.Button(description="Load path", tooltip=f"valohai_paths[{name!r}]")
            load.on_click(lambda _, n=name: self._act(lambda: self._load_path(n)))
            label = widgets.HTML(
                f"<code>{html.escape(name)}</code>&ensp;{render.human_size(out['size'])}"
            )
            rows.append(widgets.HBox([label, download, load]))
        self._outputs_box.children = rows

    # --- actions --------------------------------------------------------------------------

    def _act(self, action: Any) -> None:
        """Run a button's action; show its result or its one-line error under the buttons."""
        try:
            result = action()
        except ValohaiError as exc:
            self._failed(str(exc))
        except Exception as exc:
            log.exception("ExecutionView action failed")
            self._failed(f"{type(exc).__name__}: {exc} (hint: please report this)")
        else:
            if isinstance(result, str):
                self._message.value = html.escape(result)

    def stop(self) -> str:
        """Ask the master to stop the execution; return its message."""
        return str(self._client.stop_execution(self.execution_id))

    def deploy(self, wait: bool = True, **options: Any) -> Any:
        """Deploy an output with an endpoint of the execution's valohai.yaml (``endpoint``,
        ``output``, ``deployment``, ``alias``, ``target``, ``registry``); show the build and,
        once it runs, the URL and a "try it" box. ``wait=False`` returns while it builds."""
        from .deploy import DeployPanel

        panel = DeployPanel(self._client, self.execution_id, **options)
        self.deploy_panel = panel
        self._deploy_box.children = [panel]
        if wait:
            return panel.run()
        return panel.start()

    def _deploy_clicked(self) -> str:
        self.deploy(wait=False)
        return "Deploying..."

    def folder(self) -> str:
        """The folder (relative to the working directory) this execution's outputs go to."""
        return execution_dir(self._state.execution or {"id": self.execution_id}, self.outputs_dir)

    def path(self, name: str) -> str:
        """The local path of output ``name``, downloaded into :meth:`folder` if not yet there."""
        if name in self.local_paths:
            return str(self.local_paths[name])
        datum = next((o["datum"] for o in self._state.outputs if o["name"] == name), None)
        if datum is None:
            known = ", ".join(o["name"] for o in self._state.outputs) or "(none yet)"
            raise ValohaiError(f"No output {name!r}.", hint=f"Outputs: {known}.")
        local = download_output(self._client, datum, self.folder())
        self.local_paths = {**self.local_paths, name: local}
        self._show_links()
        return local

    def pull(self) -> str:
        """Download every output; return a line saying where they are."""
        for out in self._state.outputs:
            self.path(str(out["name"]))
        count = len(self._state.outputs)
        return f"{count} output{'' if count == 1 else 's'} in {self.folder()}"

    def notebook_path(self) -> str | None:
        """The downloaded executed notebook, if there is one."""
        source = str(self._state.execution.get("notebook") or "")
        base = source.replace("\\", "/").rsplit("/", 1)[-1]
        names = [n for n in self.local_paths if n.endswith(".ipynb")]
        name = base if base in self.local_paths else (names[0] if names else None)
        return str(self.local_paths[name]) if name else None

    def _show_path(self, name: str) -> str:
        return f"{name} saved to {self.path(name)}"

    def _load_path(self, name: str) -> str:
        local = self.path(name)
        try:
            from IPython import get_ipython

            shell = get_ipython()
        except ImportError:
            shell = None
        if shell is not None:
            shell.user_ns.setdefault("valohai_paths", {})[name] = local
            return f"valohai_paths[{name!r}] = {local!r}"
        return local

    def _show_links(self) -> None:
        notebook = self.notebook_path()
        if notebook:
            href = render.lab_href(notebook)
            self._links.value = "Executed notebook: " + render.link(href, notebook)

    def close(self) -> None:
        """Stop the live updates and close the widgets."""
        self._closed = True
        if self._render_timer is not None:
            self._render_timer.cancel()
        if self._own_client:
            self._client.close()
        for child in [*self._children(), self._stop, self._pull, self._deploy]:
            if child is self._deploy_box and self.deploy_panel is not None:
                self.deploy_panel.close()
            child.close()
        super().close()
