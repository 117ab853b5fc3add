"""The executed notebook's HTML: nbconvert's cells through the nh3 allow-list."""

from __future__ import annotations

import nbformat
import pytest

from master.web.notebook import render_notebook, sanitize

HOSTILE = [
    ("<script>window.pwned = 1</script>x", "<script"),
    ('<img src="x" onerror="alert(1)">', "onerror"),
    ('<svg onload="alert(1)"><circle/></svg>', "<svg"),
    ('<a href="javascript:alert(1)">x</a>', "javascript:"),
    ('<iframe src="https://example.org"></iframe>', "<iframe"),
    ('<div style="background:url(javascript:alert(1))">x</div>', "style="),
    ("<style>body{display:none}</style>", "<style"),
    ('<form action="https://example.org"><input></form>', "<form"),
    ('<object data="x.swf"></object>', "<object"),
    ('<math><mi xlink:href="javascript:alert(1)">x</mi></math>', "javascript:"),
    ('<img src="https://tracker.example/p.gif">', None),  # kept; the frame's CSP blocks it
]


@pytest.mark.parametrize(("html", "gone"), HOSTILE)
def test_sanitize_removes_script_vectors(html: str, gone: str | None) -> None:
    clean = sanitize(html)
    if gone:
        assert gone not in clean.lower(), clean


def test_render_keeps_text_and_pictures_and_drops_script() -> None:
    nb = nbformat.v4.new_notebook()
    png = (
        "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhf"
        "DwAChwGA60e6kgAAAABJRU5ErkJggg=="
    )
    nb.cells = [
        nbformat.v4.new_markdown_cell("# Title <img src=x onerror=alert(1)>"),
        nbformat.v4.new_code_cell(
            "print('<b>')",
            outputs=[
                nbformat.v4.new_output("stream", name="stdout", text="<script>x</script>\n"),
                nbformat.v4.new_output(
                    "display_data",
                    data={"text/html": "<table><tr><td onclick='x()'>1</td></tr></table>"},
                ),
                nbformat.v4.new_output("display_data", data={"image/png": png}),
            ],
        ),
    ]
    html = render_notebook(nbformat.writes(nb).encode())
    assert "&lt;script&gt;x&lt;/script&gt;" in html  # printed text stays text
    assert "<script" not in html and "onclick" not in html and "onerror" not in html
    assert "<td>1</td>" in html
    assert f'src="data:image/png;base64,{png}"' in html
    assert "Title" in html
