"""Small self-contained HTML pages for ``snakemake --report``, which shows images and HTML inline
but offers CSV and GIF files only as downloads: the QC tables, the folder summary and the render
preview are wrapped in a page each (images embedded as data URIs, no external files)."""

from __future__ import annotations

import base64
import html
import mimetypes
import os
from pathlib import Path

from posepipe.atomic import write_text

STYLE = (
    "body{font-family:system-ui,sans-serif;margin:1em;color:#222}"
    "table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}"
    "th{background:#f0f2f5}td:first-child,th:first-child{text-align:left}.warn{color:#b45309}"
)


def image_tag(path: str | os.PathLike, *, alt: str = "") -> str:
    """An <img> with ``path`` embedded."""
    mime = mimetypes.guess_type(os.fspath(path))[0] or "application/octet-stream"
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:{mime};base64,{data}" style="max-width:100%">'


def table(frame, *, float_format: str = "{:.4g}") -> str:
    """A pandas DataFrame as an HTML table (NaN shown empty)."""
    return frame.to_html(index=False, na_rep="", float_format=float_format.format, border=0, escape=True)


def write_page(path: str | os.PathLike, title: str, parts: list[str], *, style: str = "") -> None:
    """Write a page (atomic) with ``title`` and the HTML ``parts`` in order; ``style``: more CSS."""
    body = "\n".join(parts)
    write_text(
        path,
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{STYLE}{style}</style></head><body><h2>{html.escape(title)}</h2>\n{body}\n</body></html>\n",
    )


def linked_image(src: str, *, alt: str, missing: str) -> str:
    """An <img> of the file at the relative URL ``src`` (a file beside the page, not embedded: it
    may be written after the page), linked to itself; where it cannot be loaded (not written, or the
    page is shown outside its folder, e.g. inside the Snakemake report) the image gives way to the
    text ``missing``."""
    src_q, note = html.escape(src, quote=True), html.escape(missing, quote=True)
    return (
        f'<p><a href="{src_q}"><img alt="{html.escape(alt, quote=True)}" src="{src_q}" style="max-width:100%" '
        f'onerror="this.parentNode.replaceWith(document.createTextNode(this.dataset.missing))" '
        f'data-missing="{note}"></a></p>'
    )


def warnings_list(warnings: list[str]) -> str:
    if not warnings:
        return "<p>No warnings.</p>"
    items = "".join(f"<li>{html.escape(w)}</li>" for w in warnings)
    return f"<p class='warn'>Warnings:</p><ul class='warn'>{items}</ul>"
