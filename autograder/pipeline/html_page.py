"""Self-contained HTML pages for the instructor: figures as PNG data URIs, pandas tables, one file.

A page written with :func:`page` needs no server and no network (no script, no font or style sheet
from elsewhere): it can be mailed, archived or opened from a USB stick.
"""
from __future__ import annotations

import base64
import html
import io

import pandas as pd

STYLE = """
body{font-family:system-ui,sans-serif;max-width:78em;margin:1.5em auto;padding:0 1em;color:#222}
h1{font-size:1.6em}h2{margin-top:2em;border-bottom:1px solid #ccc;padding-bottom:.2em}
table{border-collapse:collapse;margin:.6em 0;font-size:.9em}
th,td{padding:.25em .7em;text-align:left;border-bottom:1px solid #e4e4e4;vertical-align:top}
th{background:#f3f3f3}td.num,th.num{text-align:right}
.note{background:#fff8e1;border-left:4px solid #f0b400;padding:.6em 1em}
.muted{color:#777}img{max-width:100%;display:block;margin:.5em 0}
.figures{display:flex;flex-wrap:wrap;gap:1em}.figures img{max-width:48%}
nav a{margin-right:1em}
pre{background:#fafafa;border:1px solid #ddd;padding:.5em;overflow-x:auto;font-size:.8em;white-space:pre-wrap}
.side{display:flex;gap:1em}.side>div{flex:1;min-width:0}
.highlight-red{background:#ffc9c9}.highlight-green{background:#c9f2c9}
"""


def esc(text) -> str:
    return html.escape(str(text))


def figure(fig, alt: str, dpi: int = 90) -> str:
    """A matplotlib figure as an ``<img>`` with a PNG data URI (the figure is closed)."""
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    data = base64.b64encode(buffer.getvalue()).decode()
    return f'<img alt="{esc(alt)}" src="data:image/png;base64,{data}">'


def table(frame: pd.DataFrame, table_id: str | None = None, index: bool = True, digits: int = 2) -> str:
    """A pandas table as HTML (numbers rounded to ``digits``); ``table_id`` names it for tests and links."""
    if frame is None or not len(frame):
        return '<p class="muted">(nothing)</p>'
    shown = frame.copy()
    for column in shown.columns:
        if pd.api.types.is_float_dtype(shown[column]):
            shown[column] = shown[column].round(digits)
    return shown.to_html(index=index, border=0, table_id=table_id, na_rep="", escape=True,
                         classes="data", float_format=lambda v: f"{v:.{digits}f}".rstrip("0").rstrip("."))


def section(anchor: str, title: str, body: str) -> str:
    return f'<section id="{esc(anchor)}"><h2>{esc(title)}</h2>\n{body}\n</section>'


def page(title: str, intro: str, sections: list[tuple[str, str, str]]) -> str:
    """A whole page: ``sections`` is ``[(anchor, title, html)]``, listed in a navigation line at the top."""
    nav = " ".join(f'<a href="#{esc(a)}">{esc(t)}</a>' for a, t, _ in sections)
    body = "\n".join(section(a, t, h) for a, t, h in sections)
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{esc(title)}</title>'
            f"<style>{STYLE}</style></head><body><h1>{esc(title)}</h1>\n{intro}\n<nav>{nav}</nav>\n{body}\n</body></html>")
