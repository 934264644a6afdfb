"""Headless Chromium for the report's browser test and `make screenshots`: Playwright drives the
Debian package's binary (Playwright's own browser download does not work offline)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

# The width a reader's laptop shows the report at; the browser test holds the page to it.
WIDTH = 1280
HEIGHT = 900
INSTALL = (
    "install Debian's chromium (`apt-get install -y chromium`; `.ci/run` does it when it is "
    "missing) or point LOANRISK_CHROMIUM at a Chromium binary"
)


class BrowserMissing(RuntimeError):
    """No Chromium binary, or no Playwright: the message says how to install it."""


def chromium_path() -> str:
    """The Chromium binary: $LOANRISK_CHROMIUM, else `chromium` on the PATH, else Debian's."""
    for candidate in (
        os.environ.get("LOANRISK_CHROMIUM"),
        shutil.which("chromium"),
        "/usr/bin/chromium",
    ):
        if candidate and Path(candidate).is_file():
            return candidate
    raise BrowserMissing(f"no Chromium found: {INSTALL}")


@contextmanager
def browser() -> Iterator:
    """A headless Chromium (a Playwright `Browser`), closed afterwards."""
    path = chromium_path()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        raise BrowserMissing(
            "Playwright is not installed: `pip install -c constraints.txt -e '.[dev]'`"
        ) from exc
    with sync_playwright() as pw:
        # --no-sandbox: CI and this machine run as root, where Chromium's sandbox refuses to start.
        chromium = pw.chromium.launch(
            executable_path=path, args=["--no-sandbox", "--disable-gpu", "--no-first-run"]
        )
        try:
            yield chromium
        finally:
            chromium.close()


def new_page(chromium, width: int = WIDTH, height: int = HEIGHT):
    """A page of `width` x `height` CSS pixels at device scale 1 (screenshots at that size)."""
    return chromium.new_page(viewport={"width": width, "height": height}, device_scale_factor=1)
