"""An executed notebook as inert HTML: nbconvert's cells, then an allow-list sanitizer (nh3).

Whatever a notebook printed or displayed (HTML outputs, markdown with raw HTML, SVG) goes through
nh3 (the ammonia sanitizer): no script, no event handler attribute, no ``javascript:`` URL, images
only as ``data:`` URIs. The page showing it adds two more walls: a sandboxed iframe without
``allow-scripts`` and a Content-Security-Policy without any script source.
"""

from __future__ import annotations

import nbformat
import nh3
from nbconvert import HTMLExporter

#: The notebook frame's own policy: no script at all, styles from the master, pictures inline.
NOTEBOOK_CSP = (
    "default-src 'none'; style-src 'self'; img-src data:; font-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'self'; sandbox"
)

MAX_NOTEBOOK_BYTES = 50 * 1024 * 1024

TAGS = {
    *("a", "abbr", "b", "blockquote", "br", "caption", "code", "col", "colgroup", "dd", "del"),
    *("details", "div", "dl", "dt", "em", "figcaption", "figure", "h1", "h2", "h3", "h4", "h5"),
    *("h6", "hr", "i", "img", "ins", "kbd", "li", "mark", "ol", "p", "pre", "q", "s", "samp"),
    *("small", "span", "strong", "sub", "summary", "sup", "table", "tbody", "td", "tfoot", "th"),
    *("thead", "tr", "u", "ul", "var"),
}
ATTRIBUTES = {
    "*": {"class", "id", "title", "align"},
    "a": {"href"},
    "img": {"src", "alt", "width", "height"},
    "td": {"colspan", "rowspan"},
    "th": {"colspan", "rowspan", "scope"},
    "ol": {"start"},
}


def sanitize(html: str) -> str:
    """Keep structure and classes; drop scripts, handlers, styles, frames and foreign URLs."""
    return nh3.clean(
        html,
        tags=TAGS,
        attributes=ATTRIBUTES,
        url_schemes={"http", "https", "data", "mailto"},
        link_rel="noopener noreferrer nofollow",
        strip_comments=True,
    )


def render_notebook(raw: bytes) -> str:
    """Return the sanitized HTML body of an executed notebook (``.ipynb`` bytes)."""
    nb = nbformat.reads(raw.decode("utf-8", "replace"), as_version=4)
    body, _ = HTMLExporter(template_name="basic").from_notebook_node(nb)
    return sanitize(body)


def page(body: str, stylesheet: str) -> str:
    """The notebook frame's document (``body`` must be sanitized already)."""
    return (
        '<!doctype html><html><head><meta charset="utf-8">'
        f'<link rel="stylesheet" href="{stylesheet}"></head>'
        f'<body class="notebook">{body}</body></html>'
    )
