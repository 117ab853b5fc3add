"""The magics' argument parsing, notebook finding and one-line errors, without a kernel."""

from __future__ import annotations

from pathlib import Path

import pytest

from jupyter_valohai.errors import InvalidInput, NotFound, ValohaiError
from jupyter_valohai.magics import ValohaiMagics, _pairs, build_parsers, find_notebook


def test_run_options_parse() -> None:
    main, cell = build_parsers()
    args = main.parse_args(
        ["run", "nb.ipynb", "--param", "lr=0.5", "-p", "msg=a=b", "--input", "d=s3://b/k",
         "--env", "gpu", "--image", "img:1", "--title", "t", "--project", "p", "--no-widget"]
    )  # fmt: skip
    assert (args.command, args.path, args.env, args.image, args.title, args.project) == (
        "run",
        "nb.ipynb",
        "gpu",
        "img:1",
        "t",
        "p",
    )
    assert args.no_widget
    assert _pairs(args.param, "param") == {"lr": "0.5", "msg": "a=b"}
    assert cell.parse_args(["--param", "n=1"]).param == ["n=1"]
    assert main.parse_args(["logs", "e-1", "-f"]).follow


def test_repeated_inputs_make_lists() -> None:
    assert _pairs(["d=a://1", "d=a://2", "e=a://3"], "input", multi=True) == {
        "d": ["a://1", "a://2"],
        "e": "a://3",
    }
    with pytest.raises(InvalidInput, match="NAME=VALUE"):
        _pairs(["=x"], "param")


def test_bad_arguments_are_invalid_input_with_the_usage_as_hint() -> None:
    main, _ = build_parsers()
    with pytest.raises(InvalidInput) as info:
        main.parse_line("run --bogus")
    assert "unrecognized arguments: --bogus" in info.value.message
    assert info.value.hint and info.value.hint.startswith("usage: %valohai run")
    with pytest.raises(InvalidInput):
        main.parse_args([])


def test_the_notebook_is_found_from_jupyter_or_vs_code(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "sub").mkdir()
    nb = tmp_path / "sub" / "nb.ipynb"
    nb.write_text("{}")
    cwd = str(tmp_path / "sub")
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    with pytest.raises(InvalidInput, match="Cannot tell which notebook"):
        find_notebook({}, cwd)
    assert find_notebook({"__vsc_ipynb_file__": str(nb)}, cwd) == "nb.ipynb"
    monkeypatch.setenv("JPY_SESSION_NAME", str(nb))  # absolute, as jupyter-server sets it
    assert find_notebook({}, cwd) == "nb.ipynb"
    monkeypatch.setenv("JPY_SESSION_NAME", "sub/nb.ipynb")  # relative to the server's root
    assert find_notebook({}, cwd) == "nb.ipynb"
    monkeypatch.setenv("JPY_SESSION_NAME", "a1b2-session-id")  # not a notebook path
    with pytest.raises(InvalidInput):
        find_notebook({}, cwd)


@pytest.mark.parametrize(
    ("error", "line"),
    [
        (NotFound("No project.", hint="Create it."), "Valohai: No project. (hint: Create it.)"),
        (ValohaiError("Bad\nthing."), "Valohai: Bad thing. (hint: see `%valohai --help`)"),
        (RuntimeError("boom"), "Valohai: unexpected RuntimeError: boom (hint: this is a bug"),
    ],
)  # fmt: skip
def test_every_failure_is_one_line_on_stderr(
    error: Exception, line: str, capsys: pytest.CaptureFixture[str]
) -> None:
    magics = ValohaiMagics(shell=None)

    def fail() -> None:
        raise error

    assert magics._guard(fail) is None
    out, err = capsys.readouterr()
    assert out == ""
    assert len(err.splitlines()) == 1 and err.startswith(line), err


def test_help_prints_and_stops(capsys: pytest.CaptureFixture[str]) -> None:
    magics = ValohaiMagics(shell=None)
    magics.valohai("--help")
    out, err = capsys.readouterr()
    assert "usage: %valohai" in out and err == ""


def test_nothing_runs_inside_an_execution(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("VH_JOB_ID", "e-123")
    magics = ValohaiMagics(shell=None)
    magics.valohai("run nb.ipynb")
    magics.valohai("--no-widget", "print(1)")
    out, err = capsys.readouterr()
    assert out.splitlines() == ["%valohai: not run inside execution e-123."] * 2 and err == ""
