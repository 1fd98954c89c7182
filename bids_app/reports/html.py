"""A small HTML page builder for the participant and group reports.

Pages are self-contained (inline CSS, no script, no network); figures are PNG files in a
``figures/`` folder next to the page, referenced by relative paths. Warnings are shown at the
top of the page.
"""

from __future__ import annotations

import hashlib
import html
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

_CSS = """
body { font-family: -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif; margin: 0;
       color: #1d2330; background: #fafbfc; }
header { background: #24364f; color: white; padding: 18px 32px; }
header h1 { margin: 0; font-size: 24px; } header p { margin: 4px 0 0; opacity: .85; }
nav { background: #eef1f5; padding: 8px 32px; font-size: 14px; position: sticky; top: 0; }
nav a { margin-right: 14px; color: #24364f; text-decoration: none; }
main { padding: 12px 32px 48px; max-width: 1200px; }
section { background: white; border: 1px solid #dde2ea; border-radius: 6px; padding: 6px 20px 16px;
          margin: 18px 0; }
h2 { font-size: 19px; border-bottom: 1px solid #e4e8ee; padding-bottom: 6px; }
h3 { font-size: 15px; margin-bottom: 4px; }
.warnings { background: #fff4e5; border: 1px solid #f0b35c; border-radius: 6px;
            padding: 8px 20px; margin: 18px 0; }
.warnings li { margin: 4px 0; }
.ok { color: #2a7a3b; }
table { border-collapse: collapse; font-size: 13px; margin: 8px 0; }
th, td { border: 1px solid #dde2ea; padding: 3px 8px; text-align: left; }
th { background: #f1f4f8; }
figure { margin: 10px 0; } figure img { max-width: 100%; border: 1px solid #eceff3; }
figcaption { font-size: 13px; color: #4a5566; }
pre { background: #f4f6f8; padding: 10px; overflow-x: auto; font-size: 12px; }
.muted { color: #6b7585; font-size: 13px; }
.alert { color: #b52b27; font-weight: bold; }
.flicker .frames { position: relative; }
.flicker .frame { display: none; }
.flicker label { font-size: 13px; margin-right: 12px; cursor: pointer; }
.flicker input:nth-of-type(1):checked ~ .frames .frame-0,
.flicker input:nth-of-type(2):checked ~ .frames .frame-1,
.flicker input:nth-of-type(3):checked ~ .frames .frame-2 { display: block; }
.flicker input.auto:checked ~ .frames .frame-0 { display: block; position: absolute; top: 0;
    left: 0; animation: flick 1.6s steps(1) infinite; }
.flicker input.auto:checked ~ .frames .frame-1 { display: block; }
@keyframes flick { 0% { opacity: 1; } 50% { opacity: 0; } }
@media print {
  nav, .flicker input, .flicker label { display: none; }
  .flicker .frame { display: block !important; position: static !important;
                    animation: none !important; opacity: 1 !important; }
  figure { break-inside: avoid; }
}
"""


@dataclass
class Section:
    """One titled block of the page."""

    title: str
    parts: list[str] = field(default_factory=list)

    @property
    def anchor(self) -> str:
        return "".join(c if c.isalnum() else "-" for c in self.title.lower()).strip("-")

    def text(self, text: str, *, alert: bool = False) -> Section:
        """A paragraph; ``alert`` shows it in red bold (e.g. a template fit)."""
        cls = ' class="alert"' if alert else ""
        self.parts.append(f"<p{cls}>{html.escape(text)}</p>")
        return self

    def raw(self, markup: str) -> Section:
        self.parts.append(markup)
        return self

    def subtitle(self, text: str) -> Section:
        self.parts.append(f"<h3>{html.escape(text)}</h3>")
        return self

    def figure(self, relpath: str, caption: str, alt: str | None = None) -> Section:
        self.parts.append(
            f'<figure><img src="{html.escape(relpath)}" alt="{html.escape(alt or caption)}">'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>"
        )
        return self

    def flicker(self, frames: Sequence[tuple[str, str]], caption: str) -> Section:
        """Two or three PNGs of one size shown in turn (fMRIPrep's flicker view), with CSS
        only: a radio button per frame, and one that alternates the first two frames
        automatically. Printed, every frame is shown one below the other.

        ``frames`` are (label, page-relative path) pairs."""
        if not 2 <= len(frames) <= 3:
            raise ValueError(f"a flicker view shows 2 or 3 frames, got {len(frames)}")
        group = "flicker-" + hashlib.sha1(frames[0][1].encode()).hexdigest()[:10]
        inputs, images = [], []
        for k, (label, relpath) in enumerate(frames):
            ident = f"{group}-{k}"
            inputs.append(f'<input type="radio" name="{group}" id="{ident}"'
                          f'{" checked" if k == 0 else ""}><label for="{ident}">'
                          f"{html.escape(label)}</label>")
            images.append(f'<img class="frame frame-{k}" src="{html.escape(relpath)}" '
                          f'alt="{html.escape(label)}">')
        inputs.append(f'<input type="radio" class="auto" name="{group}" id="{group}-auto">'
                      f'<label for="{group}-auto">flicker {html.escape(frames[0][0])} / '
                      f"{html.escape(frames[1][0])}</label>")
        self.parts.append(f'<figure class="flicker">{"".join(inputs)}<div class="frames">'
                          f'{"".join(images)}</div><figcaption>{html.escape(caption)}'
                          "</figcaption></figure>")
        return self

    def table(self, frame: pd.DataFrame, *, max_rows: int = 60, floatfmt: str = "{:.3g}") -> Section:
        self.parts.append(table_html(frame, max_rows=max_rows, floatfmt=floatfmt))
        return self

    def items(self, pairs: Iterable[tuple[str, object]]) -> Section:
        rows = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>"
                       for k, v in pairs)
        self.parts.append(f"<table>{rows}</table>")
        return self

    def preformatted(self, text: str) -> Section:
        self.parts.append(f"<pre>{html.escape(text)}</pre>")
        return self


def table_html(frame: pd.DataFrame, *, max_rows: int = 60, floatfmt: str = "{:.3g}") -> str:
    """An HTML table of a data frame (at most ``max_rows`` rows, with a note when cut)."""
    if frame.empty:
        return '<p class="muted">(none)</p>'
    shown = frame.head(max_rows)
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in shown.columns)
    body = []
    for _, row in shown.iterrows():
        cells = []
        for value in row:
            if isinstance(value, float):
                text = "n/a" if pd.isna(value) else floatfmt.format(value)
            else:
                text = str(value)
            cells.append(f"<td>{html.escape(text)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    note = (f'<p class="muted">First {max_rows} of {len(frame)} rows; the full table is in the '
            "outputs.</p>" if len(frame) > max_rows else "")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>{note}"


def render_page(title: str, subtitle: str, sections: Sequence[Section],
                warnings: Sequence[str] = ()) -> str:
    """The complete HTML page."""
    nav = "".join(f'<a href="#{s.anchor}">{html.escape(s.title)}</a>' for s in sections)
    if warnings:
        items = "".join(f"<li>{html.escape(w)}</li>" for w in warnings)
        warn = (f'<div class="warnings" id="warnings"><h2>Warnings ({len(warnings)})</h2>'
                f"<ul>{items}</ul></div>")
    else:
        warn = '<p class="ok" id="warnings">No warnings.</p>'
    body = "".join(
        f'<section id="{s.anchor}"><h2>{html.escape(s.title)}</h2>{"".join(s.parts)}</section>'
        for s in sections
    )
    return (
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>"
        f"<header><h1>{html.escape(title)}</h1><p>{html.escape(subtitle)}</p></header>"
        f"<nav>{nav}</nav><main>{warn}{body}</main></body></html>\n"
    )


def markdown_to_html(text: str) -> str:
    """The small Markdown subset of the methods text: headings, paragraphs, numbered lists.

    A leading level-1 heading is dropped: the page's section already carries the title."""
    out = []
    blocks = text.strip().split("\n\n")
    if blocks and blocks[0].startswith("# "):
        blocks = blocks[1:]
    for block in blocks:
        block = block.strip()
        if block.startswith("#"):
            level = min(len(block) - len(block.lstrip("#")) + 1, 4)
            out.append(f"<h{level}>{html.escape(block.lstrip('#').strip())}</h{level}>")
        elif block[:2].rstrip(".").isdigit() or block.startswith("1."):
            items = [line.split(".", 1)[1].strip() for line in block.splitlines() if "." in line]
            out.append("<ol>" + "".join(f"<li>{html.escape(i)}</li>" for i in items) + "</ol>")
        else:
            out.append(f"<p>{html.escape(block.replace(chr(10), ' '))}</p>")
    return "".join(out)


def write_page(path: Path, page: str) -> Path:
    """Write a report page atomically."""
    from bids_app.io.derivatives import atomic_write_text

    return atomic_write_text(Path(path), page)
