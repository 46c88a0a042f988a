"""GraphiQL in a real browser: headless Chromium opens the IDE served by a real uvicorn
server, runs the default query, and shows its result, using only the app's own assets.

Needs Debian's `chromium` and `chromium-driver` (.ci/run installs them) and the npm
assets in server/graphiql (`npm ci`, done by dev.py). Skipped with the reason when either
is missing, except under ENTATIVA_REQUIRE_SERVICES=1, where that fails.
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.error import URLError
from urllib.parse import urlsplit
from urllib.request import urlopen

import pytest

from server import graphiql
from tests.services import services_required

if TYPE_CHECKING:
    from selenium.webdriver.chrome.webdriver import WebDriver

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1280,900",
]


def need(ok: bool, message: str) -> None:
    if ok:
        return
    if services_required():
        pytest.fail(message + " and ENTATIVA_REQUIRE_SERVICES=1", pytrace=False)
    pytest.skip(message)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_up(url: str, server: subprocess.Popen[bytes], seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the server exited with {server.returncode}")
        try:
            with urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        except (URLError, OSError):
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {seconds}s")


@pytest.fixture
def server_url(tmp_path: Path, sqlite_template: Path) -> Iterator[str]:
    """A real uvicorn process serving the app on a free 127.0.0.1 port (SQLite)."""
    database = tmp_path / "entativa.db"
    shutil.copy(sqlite_template, database)
    port = free_port()
    env = {
        **os.environ,
        "ENTATIVA_DATA_DIR": str(tmp_path / "data"),
        "ENTATIVA_DATABASE_URL": f"sqlite+aiosqlite:///{database}",
        "ENTATIVA_SECRET_KEY": "browser-test-secret-key-long-enough-for-hs256",
        "ENTATIVA_REDIS_URL": "",
    }
    command = [sys.executable, "-m", "uvicorn", "server.app:create_app", "--factory"]
    command += ["--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
    server = subprocess.Popen(command, cwd=ROOT, env=env)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_until_up(base + "/healthz", server)
        yield base
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[WebDriver]:
    chromium, driver_path = shutil.which("chromium"), shutil.which("chromedriver")
    need(
        chromium is not None and driver_path is not None,
        "Chromium is not installed (apt-get install chromium chromium-driver)",
    )
    need(
        graphiql.local_assets_present(),
        "GraphiQL assets missing: run `npm ci` in server/graphiql",
    )
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(chromium)
    for flag in [*CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'chromium-profile'}"]:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=str(driver_path)), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def requested_urls(driver: WebDriver) -> list[str]:
    """Every URL the page asked the network for (Chromium's performance log)."""
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return urls


RESULT_TEXT = """
const editor = document.querySelector('.result-window .CodeMirror');
return editor ? editor.CodeMirror.getValue() : '';
"""


def test_graphiql_runs_the_default_query_with_local_assets(
    server_url: str, browser: WebDriver, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    driver = browser
    driver.get(server_url + "/graphql")
    wait = WebDriverWait(driver, 30)
    run = wait.until(
        expected_conditions.element_to_be_clickable((By.CSS_SELECTOR, ".graphiql-execute-button"))
    )
    run.click()
    try:
        wait.until(lambda d: '"platform": "SOCIALINK"' in d.execute_script(RESULT_TEXT))
    except Exception:
        driver.save_screenshot(str(tmp_path / "graphiql.png"))
        raise
    result = json.loads(driver.execute_script(RESULT_TEXT))
    assert result == {"data": {"platform": "SOCIALINK", "viewer": None}}

    urls = requested_urls(driver)
    ours = urlsplit(server_url).netloc
    assert any(url.endswith("/graphiql/static/graphiql.js") for url in urls), urls
    elsewhere = [u for u in urls if urlsplit(u).scheme in ("http", "https", "ws", "wss")
                 and urlsplit(u).netloc != ours]
    assert elsewhere == [], f"the page fetched from outside the app: {elsewhere}"
