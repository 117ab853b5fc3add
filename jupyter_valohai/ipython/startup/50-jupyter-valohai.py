# Installed by jupyter-valohai as <sys.prefix>/etc/ipython/startup/50-jupyter-valohai.py.
#
# IPython runs every *.py in the startup folders of its config dirs (the profile's, then
# <sys.prefix>/etc/ipython and /etc/ipython) when a shell or kernel starts, so `%valohai` is there
# without `%load_ext jupyter_valohai`. A file of its own name never clobbers another package's
# ipython_config.py. Set JUPYTER_VALOHAI_AUTOLOAD=0 to skip it; a failure never stops IPython.


def _jupyter_valohai_autoload() -> None:
    import os

    if os.environ.get("JUPYTER_VALOHAI_AUTOLOAD", "1").lower() in ("0", "false", "no", "off"):
        return
    try:
        from IPython import get_ipython

        shell = get_ipython()
        if shell is not None:
            # Not through the extension manager: a later `%load_ext jupyter_valohai` (as the docs
            # and old notebooks say) then loads quietly instead of printing "already loaded".
            from jupyter_valohai import load_ipython_extension

            load_ipython_extension(shell)
    except Exception as exc:  # e.g. uninstalled from this environment: say so, start anyway
        import sys

        print(f"jupyter-valohai: %valohai not loaded: {exc}", file=sys.stderr)


_jupyter_valohai_autoload()
del _jupyter_valohai_autoload
