"""Debian's chromium, headless, driven by Selenium through Debian's chromedriver (the same build, so
the two always match; `make browser` installs both, and `make test` runs it first).

Every session gets a fresh profile and ends with `quit()`, which stops the browser and the driver:
no process outlives the test. Nothing is downloaded: both paths are given, so Selenium Manager
never runs.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service

# What a root sandbox needs (see the README), and nothing that talks to the internet.
FLAGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
]


def _found(*names: str) -> str:
    for name in names:
        path = shutil.which(name)
        if path:
            return path
    raise RuntimeError(f"{names[0]} is not installed: `make browser` installs Debian's chromium and chromium-driver")


@contextmanager
def browser(width: int = 1600, height: int = 1200) -> Iterator[webdriver.Chrome]:
    with tempfile.TemporaryDirectory(prefix="chromium-") as profile:
        options = Options()
        options.binary_location = _found("chromium", "chromium-browser")
        for flag in [*FLAGS, f"--user-data-dir={profile}", f"--window-size={width},{height}"]:
            options.add_argument(flag)
        driver = webdriver.Chrome(options=options, service=Service(executable_path=_found("chromedriver")))
        try:
            yield driver
        finally:
            driver.quit()
