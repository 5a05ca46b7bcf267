"""index.html in a real browser: Debian's headless Chromium, driven by Selenium 4.

The system chromedriver is named outright (no Selenium Manager, which would go
to the network for one). Without chromium and chromedriver the tests skip on a
workstation, and fail where CI is set: CI must really run them (.ci/run
installs both).

What a reader does with the page, checked: every link opens (an HTML document
loads with no console error, a PDF is a PDF, a data file is there), the page
fits a 1280-pixel screen, and clicking "Net" sorts the departments by net
(the order by hand in test_index.py's docstring).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import pytest
from test_index import BY_COST, BY_NET, MONTHS, report, workspace

from chargeback.resources import sample_workspace

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)
WIDTH, HEIGHT = 1280, 900


def _unavailable() -> str | None:
    """Why the browser tests cannot run here, or None."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[test]')"
    for path in (CHROMIUM, CHROMEDRIVER):
        if not (os.access(path, os.X_OK) or shutil.which(Path(path).name)):
            return f"{path} is missing (Debian: apt install chromium chromium-driver)"
    return None


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    why = _unavailable()
    if why is not None:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the browser tests: {why}")
        pytest.skip(why)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = (
        CHROMIUM if os.access(CHROMIUM, os.X_OK) else str(shutil.which("chromium"))
    )
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    options.add_argument(f"--window-size={WIDTH},{HEIGHT}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver_path = CHROMEDRIVER if os.access(CHROMEDRIVER, os.X_OK) else shutil.which("chromedriver")
    driver = webdriver.Chrome(service=Service(str(driver_path)), options=options)
    driver.set_window_size(WIDTH, HEIGHT)
    try:
        yield driver
    finally:
        driver.quit()


def severe(driver: Any) -> list[dict[str, Any]]:
    """The console's errors since the last call (reading the log empties it)."""
    return [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def open_page(driver: Any, path: Path) -> None:
    driver.get(path.resolve().as_uri())
    assert driver.execute_script("return document.readyState") == "complete"


def check_links(driver: Any, out: Path) -> list[str]:
    """Every <a href> of the open index is relative and resolves to a file that opens."""
    index = out / "index.html"
    hrefs: list[str] = driver.execute_script(
        "return Array.from(document.querySelectorAll('a[href]'), a => a.getAttribute('href'))"
    )
    for href in hrefs:
        parts = urlparse(href)
        assert not parts.scheme and not parts.netloc and not href.startswith("/"), href
        target = out / unquote(parts.path)
        assert target.is_file(), f"{href} does not resolve"
        if target.suffix == ".pdf":
            assert target.read_bytes().startswith(b"%PDF"), href
        elif target.suffix == ".html":
            open_page(driver, target)
            assert driver.title, href
            assert severe(driver) == [], href
    open_page(driver, index)
    severe(driver)
    return hrefs


def department_rows(driver: Any) -> list[str]:
    rows: list[str] = driver.execute_script(
        "return Array.from(document.querySelectorAll('#departments tbody:first-of-type tr'),"
        " tr => tr.dataset.id)"
    )
    return rows


def click_heading(driver: Any, key: str) -> None:
    from selenium.webdriver.common.by import By

    driver.find_element(By.CSS_SELECTOR, f'#departments th[data-sort="{key}"] button').click()


def test_the_index_in_a_browser(browser: Any, tmp_path: Path) -> None:
    root = workspace(tmp_path / "ws")
    out = tmp_path / "out"
    report(root, out, "--from", MONTHS[0], "--to", MONTHS[-1], "--format", "pdf,html")
    open_page(browser, out / "index.html")
    assert severe(browser) == []
    assert browser.execute_script("return window.innerWidth") == WIDTH
    assert browser.execute_script("return document.documentElement.scrollWidth") <= WIDTH
    hrefs = check_links(browser, out)
    # 3 months x (summary, CS value, billing, product) + March's marketing, PDF and HTML
    assert len([h for h in hrefs if h.endswith((".pdf", ".html"))]) == 2 * (3 * 4 + 1)
    assert department_rows(browser) == BY_COST
    click_heading(browser, "net")
    assert department_rows(browser) == BY_NET  # worst first
    net = '#departments th[data-sort="net"]'
    assert browser.execute_script(f"return document.querySelector('{net}').ariaSort") == (
        "ascending"
    )
    click_heading(browser, "net")
    assert department_rows(browser) == BY_NET[::-1]
    click_heading(browser, "cost")
    assert department_rows(browser) == BY_COST
    assert severe(browser) == []
    shot = tmp_path / "index.png"
    assert browser.save_screenshot(str(shot))
    assert shot.read_bytes().startswith(b"\x89PNG")


def test_the_samples_index_in_a_browser(browser: Any, tmp_path: Path) -> None:
    """One month of the packaged sample: its departments with lines, by cost, fit the screen."""
    out = tmp_path / "out"
    report(sample_workspace(), out, "--period", "2026-11", "--format", "html")
    open_page(browser, out / "index.html")
    assert severe(browser) == []
    assert browser.execute_script("return document.documentElement.scrollWidth") <= WIDTH
    hrefs = check_links(browser, out)
    assert "2026-11/summary.html" in hrefs and "2026-11/departments/billing.html" in hrefs
    lines = json.loads((out / "ledger.json").read_text())["lines"]
    costs: dict[str, Decimal] = {}
    for line in lines:  # the book holds November only
        if line["department_id"] != "unattributed":
            dept = line["department_id"]
            costs[dept] = costs.get(dept, Decimal(0)) + Decimal(line["cost"])
    assert department_rows(browser) == sorted(costs, key=lambda d: (-costs[d], d))
