"""``jupyter valohai``: the one console entry point, with a subcommand per role."""

from __future__ import annotations

import sys

from jupyter_core.application import JupyterApp

from . import __version__


class ValohaiApp(JupyterApp):
    """Dispatch ``jupyter valohai <subcommand>``; subcommand apps are imported only when used."""

    name = "jupyter-valohai"
    version = __version__
    description = (
        "jupyter-valohai: run notebooks and scripts on a self-hosted Valohai-style master."
    )
    subcommands = {
        "master": ("master.app.MasterApp", "Run the master (API, scheduler, reaper)."),
        "agent": ("agent.app.AgentApp", "Run an agent that claims and runs executions."),
        "up": (
            "jupyter_valohai.embedded.UpApp",
            "Start the embedded default: MongoDB-wire server, Redis, master, agent and JupyterLab.",
        ),
    }

    def start(self) -> None:
        if self.subapp is None:
            print(self.description)
            print("Subcommands: " + ", ".join(sorted(self.subcommands)))
            print("Run `jupyter valohai <subcommand> --help-all` for its options.")
            self.exit(1)
        super().start()


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``jupyter-valohai`` console script."""
    ValohaiApp.launch_instance(argv=argv if argv is not None else sys.argv[1:])


if __name__ == "__main__":
    main()
