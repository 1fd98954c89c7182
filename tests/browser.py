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
    "});</script>"
)


def browser() -> str | None:
    """The Chromium executable, or None."""
    return shutil.which("chromium") or shutil.which("chromium-browser")


@dataclass
class Rendered:
    sections: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    n_images: int = -1
    broken: list[str] = field(default_factory=list)
    first_block: str = ""


class _DomParser(HTMLParser):
    def __init__(self):
        super().__init__()
        self.out, self._in_h2, self._in_warn_li, self._main_seen = Rendered(), False, False, 0

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "body":
            self.out.broken = json.loads(attrs.get("data-broken", "null") or "null")
            self.out.n_images = int(attrs.get("data-images", "-1"))
        if tag == "main":
            self._main_seen = 1
        elif self._main_seen == 1 and tag in ("div", "p"):
            self.out.first_block = attrs.get("id", "")
            self._main_seen = 2
        self._in_h2 = tag == "h2"
        if tag == "li" and self._warn_depth:
            self._in_warn_li = True
        if tag == "div" and attrs.get("class") == "warnings":
            self._warn_depth = True

    _warn_depth = False

    def handle_endtag(self, tag):
        if tag == "h2":
            self._in_h2 = False
        if tag == "li":
            self._in_warn_li = False
        if tag == "div":
            self._warn_depth = False

    def handle_data(self, data):
        if self._in_h2 and data.strip():
            self.out.sections.append(data.strip())
        if self._in_warn_li and data.strip():
            self.out.warnings.append(data.strip())


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


def has_content(png: Path, min_share: float = 0.01) -> bool:
    """True when at least ``min_share`` of the pixels differ from the background colour."""
    from matplotlib.image import imread

    image = imread(png)[..., :3]
    background = np.median(image.reshape(-1, 3), axis=0)
    differs = np.abs(image - background).max(axis=-1) > 0.05
    return bool(differs.mean() >= min_share)
