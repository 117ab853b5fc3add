"""``c.Valohai``: where the server extension finds the master, and the defaults of its runs."""

from __future__ import annotations

from traitlets import Bool, Float, Int, Unicode, default
from traitlets.config import LoggingConfigurable

from ..embedded import default_data_dir
from ..snapshot import DEFAULT_MAX_BYTES


class Valohai(LoggingConfigurable):
    """The jupyter-valohai server extension's settings (``c.Valohai.*``)."""

    master_url = Unicode(
        "",
        help="URL of the master (e.g. http://host:8780). Empty: VH_MASTER_URL + VH_TOKEN, "
        "VH_CONNECTION_FILE, the `%valohai login` file, else the embedded default.",
    ).tag(config=True)
    token = Unicode(
        "",
        help="API token of the master. Empty with master_url set: the token saved by "
        "`%valohai login` for that URL.",
    ).tag(config=True)
    default_project = Unicode(
        "", help="Project of runs that name none (empty: a project called 'default')."
    ).tag(config=True)
    environment = Unicode(
        "", help="Environment (id, slug or name) of runs that name none (empty: the master's)."
    ).tag(config=True)
    image = Unicode("", help="Docker image of runs that name none (empty: python:3.11).").tag(
        config=True
    )
    data_dir = Unicode(
        help="Data dir of the embedded default (default: $VH_DATA_DIR or "
        "~/.local/share/jupyter-valohai); a `jupyter valohai up` already running there is reused."
    ).tag(config=True)
    embedded = Bool(
        True,
        help="With no master configured, start the embedded default (`jupyter valohai up "
        "--no-lab`) beside Jupyter, and stop it with Jupyter.",
    ).tag(config=True)
    embedded_port = Int(
        0, help="Port of the embedded master's API (0: a free port, picked at start)."
    ).tag(config=True)
    embedded_agents = Int(1, help="Number of local agents of the embedded default.").tag(
        config=True
    )
    startup_timeout = Float(
        120.0, help="Seconds to wait for the embedded default to be ready."
    ).tag(config=True)
    max_snapshot_bytes = Int(
        DEFAULT_MAX_BYTES, help="Size limit of a run's code snapshot, in bytes."
    ).tag(config=True)

    @default("data_dir")
    def _data_dir_default(self) -> str:
        return default_data_dir()
