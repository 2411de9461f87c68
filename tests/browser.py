"""Drive the workbench UI as a user does: `streamlit run app.py` in a subprocess on a free port,
Debian's headless Chromium through Debian's chromedriver (selenium; nothing is downloaded:
the driver's path is given, so Selenium Manager never runs, and SE_OFFLINE keeps it offline if
it ever did). Used by tests/test_ui_browser.py and bench/bench_ui.py.

    with ui_server(db) as server, browser() as driver:
        ui = UI(driver, server)
        ui.open("results")
        ui.type_text("Log file", str(db))
        ui.screenshot("results")
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx
from selenium import webdriver
from selenium.common.exceptions import NoAlertPresentException, StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement

REPO = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"  # Debian's `chromium`
CHROMEDRIVER = "/usr/bin/chromedriver"  # Debian's `chromium-driver`
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--window-size=1400,1000")
# The URL path of each page of app.py's st.navigation (Streamlit names a page after its file; the
# default page, Design, is served at "/" and "/design" is "Page not found").
PAGES = {"design": "", "run": "run", "results": "results", "rate": "rate", "export": "export"}

os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager's own switch: never fetch a driver or browser

T = TypeVar("T")


def artifacts_dir() -> Path:
    """Where screenshots go: $WORKBENCH_ARTIFACTS, else test-artifacts/ at the repo root."""
    path = Path(os.environ.get("WORKBENCH_ARTIFACTS") or REPO / "test-artifacts")
    path.mkdir(parents=True, exist_ok=True)
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class UIServer:
    """A running `streamlit run app.py`."""

    process: subprocess.Popen[bytes]
    port: int
    db: Path
    output: Path  # the server's stdout and stderr

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_text(self) -> str:
        return self.output.read_text(errors="replace")


def _wait_healthy(server: UIServer, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"streamlit exited with {server.process.returncode}:\n{server.log_text()}")
        try:
            if httpx.get(f"{server.url}/_stcore/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"streamlit did not answer on {server.url} within {timeout} s:\n{server.log_text()}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@contextmanager
def ui_server(db: Path, env: Mapping[str, str] | None = None, *, timeout: float = 60) -> Iterator[UIServer]:
    """`streamlit run app.py` from the repo root, as the README says, on a free port, with
    WORKBENCH_DB=db; stopped (terminate, then kill) on exit. .streamlit/config.toml sets
    headless (no first-run e-mail prompt) and stdin is closed, so a prompt would end it rather
    than hang."""
    port = free_port()
    output = artifacts_dir() / f"streamlit-{port}.log"
    environment = {**os.environ, "WORKBENCH_DB": str(db), "PYTHONPATH": str(REPO), **(env or {})}
    with output.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port)],
            cwd=REPO, env=environment, stdin=subprocess.DEVNULL, stdout=sink, stderr=subprocess.STDOUT,
        )
    server = UIServer(process, port, Path(db), output)
    try:
        _wait_healthy(server, timeout)
        yield server
    finally:
        _stop(process)


@contextmanager
def browser(*, performance_log: bool = False) -> Iterator[WebDriver]:
    """Debian's headless Chromium, 1400x1000, driven by Debian's chromedriver."""
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    if performance_log:  # every network request the page makes, read by network_urls()
        options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def wait_for(condition: Callable[[], T], timeout: float, what: str, poll: float = 0.2) -> T:
    """Poll until condition() is truthy (a stale element counts as not yet); its value."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = condition()
            if value:
                return value
        except StaleElementReferenceException:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {timeout} s for {what}")
        time.sleep(poll)


def _xpath_text(text: str) -> str:
    """An XPath string literal of text (which may hold both quote kinds)."""
    if "'" not in text:
        return f"'{text}'"
    if '"' not in text:
        return f'"{text}"'
    return "concat(" + ", \"'\", ".join(f"'{part}'" for part in text.split("'")) + ")"


class UI:
    """A browser on the workbench: open pages, wait for Streamlit, find widgets by label."""

    def __init__(self, driver: WebDriver, server: UIServer) -> None:
        self.driver = driver
        self.server = server

    # --- pages and Streamlit's state
    def open(self, page: str, timeout: float = 60) -> None:
        """Load a page by name: "design", "run", "results", "rate" or "export" (a key of PAGES)."""
        self.driver.get(f"{self.server.url}/{PAGES[page]}")
        self.wait_ready(timeout)

    def go(self, page: str, timeout: float = 60) -> None:
        """Move to a page as a user does, by its link in the sidebar: the browser keeps its
        Streamlit session, so what one page put in the session (a saved study's path) reaches the next."""
        def link() -> Any:
            for anchor in self.driver.find_elements(By.CSS_SELECTOR, '[data-testid="stSidebarNav"] a'):
                if urlsplit(anchor.get_attribute("href") or "").path.strip("/") == PAGES[page]:
                    return anchor
            return None

        wait_for(link, timeout, f"the sidebar's link to {page}").click()
        wait_for(lambda: urlsplit(self.driver.current_url).path.strip("/") == PAGES[page], timeout, f"the {page} page")
        self.wait_ready(timeout)

    def idle(self) -> bool:
        """Streamlit is connected, its script has run and the running indicator is gone."""
        app = self.driver.find_elements(By.CSS_SELECTOR, '[data-testid="stApp"]')
        return bool(
            app
            and app[0].get_attribute("data-test-script-state") == "notRunning"
            and app[0].get_attribute("data-test-connection-state") == "CONNECTED"
            and not self.driver.find_elements(By.CSS_SELECTOR, '[data-testid="stStatusWidget"]')
            and self.driver.find_elements(By.CSS_SELECTOR, '[data-testid="stMain"]')
        )

    def settled(self, state: Callable[[], bool], what: str, timeout: float = 60, settle: float = 0.5) -> float:
        """Wait until state() has held for `settle` seconds (a rerun an interaction triggers
        starts a moment after it); the time.monotonic() at which it began to hold."""
        deadline = time.monotonic() + timeout
        since: float | None = None
        while time.monotonic() < deadline:
            now = time.monotonic()
            try:
                holds = state()
            except StaleElementReferenceException:  # a rerun replaced the element
                holds = False
            if not holds:
                since = None
            elif since is None:
                since = now
            elif now - since >= settle:
                return since
            time.sleep(0.05)
        raise TimeoutError(f"waited {timeout} s for {what}")

    def wait_ready(self, timeout: float = 60) -> float:
        """Wait until Streamlit finished running the page's script; when it did."""
        return self.settled(self.idle, "the page's script to finish", timeout)

    def drawn(self) -> bool:
        """Idle, every st.dataframe has drawn its cells (the grid draws after the script ends)
        and every image of the main block has loaded or failed to."""
        return self.idle() and bool(self.driver.execute_script(
            """const main = document.querySelector('[data-testid="stMain"]');
            const grids = Array.from(main.querySelectorAll('[data-testid="stDataFrame"]'));
            const images = Array.from(main.querySelectorAll('img'));
            return grids.every(g => g.querySelector('[role="gridcell"]')) && images.every(i => i.complete);"""
        ))

    def wait_drawn(self, timeout: float = 60) -> float:
        """Wait until the page is drawn (see drawn); when it was."""
        return self.settled(self.drawn, "the page's tables and images to draw", timeout)

    def main_text(self) -> str:
        """The main block's text, st.dataframe's cells included (the grid is a canvas; it keeps
        the cells it shows in the DOM for accessibility). Markup turned into elements is no text."""
        return self.driver.execute_script("return document.querySelector('[data-testid=\"stMain\"]').textContent")

    def text(self) -> str:
        """The page's visible text."""
        return self.driver.find_element(By.TAG_NAME, "body").text

    def scroll_to(self, text: str, timeout: float = 10) -> None:
        """Scroll the element whose own text is `text` (a heading, a label) to the top of the window."""
        xpath = f'//*[@data-testid="stMain"]//*[normalize-space(text())={_xpath_text(text)}]'
        element = wait_for(lambda: self.driver.find_elements(By.XPATH, xpath), timeout, f"the text {text!r}")[0]
        self.driver.execute_script("arguments[0].scrollIntoView({block: 'start'})", element)

    def exceptions(self) -> list[str]:
        """The text of every exception box Streamlit shows (a traceback)."""
        return [e.text for e in self.driver.find_elements(By.CSS_SELECTOR, '[data-testid="stException"]')]

    def wait_text(self, text: str, timeout: float = 60) -> None:
        wait_for(lambda: text in self.text(), timeout, f"the text {text!r}")

    def alert_text(self) -> str | None:
        """The text of an open alert() dialog, None when there is none."""
        try:
            return self.driver.switch_to.alert.text
        except NoAlertPresentException:
            return None

    def screenshot(self, name: str, at: str | None = None) -> Path:
        """Save the window as artifacts/NAME.png, scrolled first to the element whose own text is `at`."""
        if at is not None:
            self.scroll_to(at)
        path = artifacts_dir() / f"{name}.png"
        self.driver.save_screenshot(str(path))
        return path

    # --- widgets, found by their label
    def widget(self, testid: str, label: str, timeout: float = 30) -> WebElement:
        """The widget container (data-testid `testid`, e.g. stTextInput) labelled `label`."""
        xpath = f'//*[@data-testid="{testid}"][.//*[@data-testid="stWidgetLabel"][normalize-space(.)={_xpath_text(label)}]]'
        return wait_for(lambda: self.driver.find_elements(By.XPATH, xpath), timeout, f"{testid} {label!r}")[0]

    def text_input(self, label: str, timeout: float = 30) -> WebElement:
        xpath = f"//input[@aria-label={_xpath_text(label)}] | //textarea[@aria-label={_xpath_text(label)}]"
        return wait_for(lambda: self.driver.find_elements(By.XPATH, xpath), timeout, f"the text input {label!r}")[0]

    def type_text(self, label: str, text: str) -> None:
        """Replace a text input's value and commit it (Enter), then wait for the rerun."""
        field = self.text_input(label)
        field.send_keys(Keys.CONTROL, "a")
        field.send_keys(Keys.DELETE)
        field.send_keys(text)
        if field.tag_name == "textarea":
            field.send_keys(Keys.CONTROL, Keys.ENTER)
        else:
            field.send_keys(Keys.ENTER)
        self.wait_ready()

    def button(self, text: str, timeout: float = 30) -> WebElement:
        """A button (or download button) by its text."""
        xpath = f"//button[normalize-space(.)={_xpath_text(text)}]"
        return wait_for(lambda: [b for b in self.driver.find_elements(By.XPATH, xpath) if b.is_displayed()], timeout, f"the button {text!r}")[0]

    def click(self, text: str, timeout: float = 30) -> None:
        """Click a button by its text and wait for the rerun."""
        self.button(text, timeout).click()
        self.wait_ready()

    def _open_list(self, label: str, timeout: float) -> list[WebElement]:
        """Open the selectbox labelled `label` (a combobox); its options."""
        box = self.widget("stSelectbox", label, timeout)
        box.find_element(By.CSS_SELECTOR, 'button[aria-haspopup="listbox"]').click()
        return wait_for(lambda: self.driver.find_elements(By.CSS_SELECTOR, '[role="listbox"] [role="option"]'), timeout, f"the options of {label!r}")

    def select(self, label: str, option: str, timeout: float = 30) -> None:
        """Choose `option` (its text as shown) in the selectbox labelled `label`."""
        items = self._open_list(label, timeout)
        matching = [item for item in items if item.text.strip() == option]
        if not matching:
            raise LookupError(f"{option!r} is not an option of {label!r}: {[item.text for item in items]}")
        matching[0].click()
        self.wait_ready()

    def options(self, label: str, timeout: float = 30) -> list[str]:
        """The options of the selectbox labelled `label`, as shown (opens it, then closes it)."""
        texts = [item.text.strip() for item in self._open_list(label, timeout)]
        self.text_input(label).send_keys(Keys.ESCAPE)
        return texts

    def check(self, label: str, on: bool = True) -> None:
        """Set the checkbox (or toggle) labelled `label`."""
        box = self.widget("stCheckbox", label)
        field = box.find_element(By.CSS_SELECTOR, "input")
        if field.is_selected() != on:
            box.find_element(By.CSS_SELECTOR, "label").click()
            self.wait_ready()

    def choose(self, label: str, option: str) -> None:
        """Pick `option` in the radio group labelled `label`."""
        group = self.widget("stRadio", label)
        group.find_element(By.XPATH, f'.//label[normalize-space(.)={_xpath_text(option)}]').click()
        self.wait_ready()

    def dataframes(self) -> list[WebElement]:
        return self.driver.find_elements(By.CSS_SELECTOR, '[data-testid="stDataFrame"]')

    def images(self) -> list[WebElement]:
        """The page's drawn images (st.image / st.pyplot), loaded in full."""
        return [
            img for img in self.driver.find_elements(By.CSS_SELECTOR, '[data-testid="stMain"] [data-testid="stImage"] img, [data-testid="stMain"] [data-testid="stFullScreenFrame"] img')
            if self.driver.execute_script("return arguments[0].complete && arguments[0].naturalWidth > 0", img)
        ]


def network_urls(driver: WebDriver) -> list[str]:
    """Every URL the browser requested since the last call (needs browser(performance_log=True))."""
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message.get("method") == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return urls

