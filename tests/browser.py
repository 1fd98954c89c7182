"""Open an HTML report in headless Chromium (Debian's ``chromium``) and report what rendered.

A copy of the page with a small probe script is loaded from the same folder (so relative figure
paths resolve); after the ``load`` event the script records which images failed to load. The DOM
Chromium produced is then parsed: section titles, the warnings box, image counts.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

import numpy as np

PROBE = (
    '<script>window.addEventListener("load", () => {'
    "const broken = [...document.images].filter(i => !i.complete || i.naturalWidth === 0)"
    '.map(i => i.getAttribute("src"));'
    'document.body.setAttribute("data-broken", JSON.stringify(broken));'
    'document.body.setAttribute("data-images", String(document.images.length));'
    "const shown = [...document.images].filter(i => i.getBoundingClientRect().height > 0 && "
    'getComputedStyle(i).opacity !== "0").map(i => i.getAttribute("src"));'
    'document.body.setAttribute("data-visible", JSON.stringify(shown));'
    "});</script>"
)


def browser() -> str | None:
    """The Chromium executable, or None."""
    return shutil.which("chromium") or shutil.which("chromium-browser")


@dataclass
class Rendered:
    sections: list[str] = field(default_factory=list)      # <h2> titles
    subtitles: list[str] = field(default_factory=list)     # <h3> titles
    warnings: list[str] = field(default_factory=list)      # items of the warnings box
    first_block: str = ""                                  # id of the first element in <main>
    n_images: int = -1
    broken: list[str] = field(default_factory=list)
    visible: list[str] = field(default_factory=list)   # images shown on screen after load
    alerts: list[str] = field(default_factory=list)    # text of class="alert" elements


class _DomParser(HTMLParser):
    """Collects :class:`Rendered` from the DOM Chromium dumped."""

    def __init__(self):
        super().__init__()
        self.out = Rendered()
        self._stack: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "body":
            self.out.broken = json.loads(attrs.get("data-broken") or "null")
            self.out.n_images = int(attrs.get("data-images", "-1"))
            self.out.visible = json.loads(attrs.get("data-visible") or "[]")
        if self._stack and self._stack[-1][0] == "main" and not self.out.first_block:
            self.out.first_block = attrs.get("id", "")
        if tag not in ("img", "meta", "br", "hr", "link"):
            self._stack.append((tag, attrs))

    def handle_endtag(self, tag):
        while self._stack:
            if self._stack.pop()[0] == tag:
                break

    def handle_data(self, data):
        text = data.strip()
        if not text or not self._stack:
            return
        tag = self._stack[-1][0]
        in_warnings = any(a.get("class") == "warnings" for _, a in self._stack)
        if tag == "h2":
            self.out.sections.append(text)
        elif tag == "h3":
            self.out.subtitles.append(text)
        elif tag == "li" and in_warnings:
            self.out.warnings.append(text)
        if self._stack[-1][1].get("class") == "alert":
            self.out.alerts.append(text)


def render(html: Path, timeout: float = 60.0) -> Rendered:
    """Load ``html`` in headless Chromium and return what rendered."""
    exe = browser()
    probe = html.with_name(f".probe-{html.name}")
    probe.write_text(html.read_text().replace("</body>", PROBE + "</body>"))
    try:
        dom = subprocess.run(
            [exe, "--headless", "--no-sandbox", "--disable-gpu", "--allow-file-access-from-files",
             "--virtual-time-budget=10000", "--dump-dom", probe.resolve().as_uri()],
            capture_output=True, text=True, timeout=timeout, check=True).stdout
    finally:
        probe.unlink()
    parser = _DomParser()
    parser.feed(dom)
    return parser.out


def print_to_pdf(html: Path, pdf: Path, timeout: float = 60.0) -> bytes:
    """Print ``html`` with headless Chromium (print media styles) and return the PDF."""
    subprocess.run(
        [browser(), "--headless", "--no-sandbox", "--disable-gpu",
         "--allow-file-access-from-files", "--no-pdf-header-footer",
         f"--print-to-pdf={pdf}", html.resolve().as_uri()],
        capture_output=True, timeout=timeout, check=True)
    return pdf.read_bytes()


def has_content(png: Path, min_share: float = 0.01) -> bool:
    """True when at least ``min_share`` of the pixels differ from the background colour."""
    from matplotlib.image import imread

    image = imread(png)[..., :3]
    background = np.median(image.reshape(-1, 3), axis=0)
    differs = np.abs(image - background).max(axis=-1) > 0.05
    return bool(differs.mean() >= min_share)
