"""The browser suite: Playwright driving Debian's /usr/bin/chromium against a live server.

Screenshots of every page, at a laptop's and a phone's width, go to SCREENSHOTS
(QLUED_SCREENSHOTS, default .cache/screenshots/), whose path is printed at the end.
Without chromium or Playwright the suite is skipped, unless QLUED_BROWSER_REQUIRED is
set (tests/run_all.sh sets it, after tests/browser/ensure_chromium.sh installed both).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = Path(os.environ.get("QLUED_SCREENSHOTS", ROOT / ".cache" / "screenshots"))
VIEWPORTS = {"laptop": (1280, 800), "phone": (390, 844)}

# Playwright's sync API keeps an event loop in this thread; the ORM calls the tests make
# between its calls are synchronous all the same.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "browser: drives the dashboard in headless chromium")


def pytest_terminal_summary(terminalreporter: Any) -> None:
    shots = sorted(SCREENSHOTS.glob("*.png")) if SCREENSHOTS.is_dir() else []
    if shots:
        terminalreporter.write_line(f"browser screenshots ({len(shots)}): {SCREENSHOTS}/")


def _missing() -> str | None:
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is not installed (tests/browser/ensure_chromium.sh installs it)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright is not installed (tests/browser/ensure_chromium.sh installs it)"
    return None


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    reason = _missing()
    if reason:
        if os.environ.get("QLUED_BROWSER_REQUIRED"):
            pytest.fail(reason)
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    if SCREENSHOTS.is_dir():
        shutil.rmtree(SCREENSHOTS)  # this run's pictures only
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-dev-shm-usage"]
        )
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    width, height = VIEWPORTS["laptop"]
    context = browser.new_context(viewport={"width": width, "height": height})
    context.set_default_timeout(15_000)
    opened = context.new_page()
    yield opened
    context.close()


def shoot(page: Any, name: str) -> None:
    """Full-page screenshots of what `page` shows, at each width of VIEWPORTS."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for width_name, (width, height) in VIEWPORTS.items():
        page.set_viewport_size({"width": width, "height": height})
        page.screenshot(path=str(SCREENSHOTS / f"{name}-{width_name}.png"), full_page=True)
    width, height = VIEWPORTS["laptop"]
    page.set_viewport_size({"width": width, "height": height})


@pytest.fixture
def spooler(storage: Any, medium_login: dict) -> Iterator[subprocess.Popen]:
    """The built-in spooler serving fermions on the test's storage, for as long as the test."""
    command = [sys.executable, "-m", "spooler", "--name", "alqor", "--type", "local"]
    command += ["--login", json.dumps(medium_login), "--backends", "fermions"]
    process = subprocess.Popen(command, cwd=ROOT, stderr=subprocess.DEVNULL)
    yield process
    process.terminate()
    process.wait(timeout=30)
