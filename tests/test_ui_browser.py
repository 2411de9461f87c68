"""The UI in a real browser: `streamlit run app.py` (tests/browser.py starts it as the README
says, on a free port) driven by Debian's headless Chromium. It listens on 127.0.0.1 only and the
pages it serves make no request elsewhere; user text is shown as text; every page opens; and the
whole flow on the embedded model: design, run, read, rate."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import duckdb
import pytest
import yaml

from browser import PAGES, REPO, UI, network_urls, ui_server, wait_for
from conftest import sim_study, write_study
from workbench import api

# A condition name and a model response that a page rendering markup would turn into an image,
# a fetch of 127.0.0.1:9 (nothing listens there) or a script.
XSS_CONDITION = "<img src=x onerror=alert(1)>"
XSS_RESPONSE = "![x](http://127.0.0.1:9/x.png) <script>alert(2)</script> 42"
XSS_FETCH = "127.0.0.1:9"


# --- 127.0.0.1 only, nothing sent anywhere

def _socket_inodes(pid: int) -> set[str]:
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = fd.readlink().as_posix()
        except OSError:  # closed meanwhile
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:["):-1])
    return inodes


def _address(hex_address: str) -> str:
    """/proc/net/tcp's local address (little-endian words of hex) as text."""
    raw = bytes.fromhex(hex_address)
    words = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
    return socket.inet_ntop(socket.AF_INET if len(raw) == 4 else socket.AF_INET6, words)


def listening_sockets(pid: int) -> list[tuple[str, int]]:
    """(address, port) of every TCP socket the process listens on (Linux's /proc; psutil is no
    dependency of the project, and this is all of it the test needs)."""
    inodes = _socket_inodes(pid)
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state == "0A" and inode in inodes:  # 0A: LISTEN
                address, port = local.split(":")
                found.append((_address(address), int(port, 16)))
    return found


def other_addresses() -> list[str]:
    """This machine's IPv4 addresses that are not loopback."""
    listing = subprocess.run(["ip", "-4", "-o", "addr"], capture_output=True, text=True, check=True).stdout
    addresses = re.findall(r"\binet (\d+\.\d+\.\d+\.\d+)/", listing)
    return [a for a in addresses if not a.startswith("127.")]


def _refused(address: str, port: int) -> bool:
    try:
        socket.create_connection((address, port), timeout=3).close()
    except ConnectionRefusedError:
        return True
    return False


def test_ui_listens_on_loopback_only(tmp_path: Path) -> None:
    with ui_server(tmp_path / "workbench.duckdb") as server:
        listening = listening_sockets(server.process.pid)
        assert (("127.0.0.1", server.port)) in listening
        assert {address for address, _ in listening} == {"127.0.0.1"}, listening
        others = other_addresses()
        assert others, "no non-loopback address to try"  # the CI machine has a network interface
        assert all(_refused(address, server.port) for address in others), others


def test_no_usage_statistics() -> None:
    # The options `streamlit run app.py` reads (the user's ~/.streamlit and the repo's .streamlit)
    read = "import json, streamlit.config as c; print(json.dumps([c.get_option(o) for o in ('browser.gatherUsageStats', 'server.address', 'server.headless')]))"
    shown = subprocess.run([sys.executable, "-c", read], cwd=REPO, capture_output=True, text=True, check=True).stdout
    assert json.loads(shown) == [False, "127.0.0.1", True]


# --- every page opens, and loads nothing from elsewhere

@pytest.mark.slow  # about 12 s: a server, a browser, five pages
def test_every_page_opens_on_an_empty_log_and_loads_only_from_127_0_0_1(tmp_path: Path, ui_for) -> None:
    ui = ui_for(tmp_path / "empty" / "workbench.duckdb", performance_log=True)
    for page in PAGES:
        ui.open(page)
        ui.screenshot(f"smoke-{page}")
        assert ui.exceptions() == [], page
        assert "Page not found" not in ui.text(), page
    hosts = {urlsplit(url).hostname for url in network_urls(ui.driver) if urlsplit(url).scheme not in ("data", "blob")}
    assert hosts == {"127.0.0.1"}, hosts


# --- user text is shown as text

def xss_log(tmp_path: Path) -> Path:
    """A simulated run whose condition NP01 is renamed to XSS_CONDITION (study validation refuses
    such names, so the log is rewritten after the run) and whose EP02 responses are XSS_RESPONSE."""
    db = tmp_path / "xss.duckdb"
    api.run(write_study(tmp_path / "xss.yaml", sim_study()), db)
    with duckdb.connect(str(db)) as con:  # the run is over and compacted: its rows are all in the file
        (spec_json,) = con.execute("SELECT spec_json FROM runs").fetchone()
        spec = json.loads(spec_json)
        for condition in spec["conditions"]:
            if condition["name"] == "NP01":
                condition["name"] = XSS_CONDITION
        con.execute("UPDATE runs SET spec_json = ?", [json.dumps(spec)])
        for table in ("conditions", "trials", "rounds"):
            con.execute(f"UPDATE {table} SET condition = ? WHERE condition = 'NP01'", [XSS_CONDITION])
        con.execute("UPDATE trials SET response_text = ? WHERE condition = 'EP02'", [XSS_RESPONSE])
        con.execute("UPDATE calls SET response_text = ? WHERE trial_id IN (SELECT trial_id FROM trials WHERE condition = 'EP02')", [XSS_RESPONSE])
    assert XSS_CONDITION in json.dumps(api.compare(db).to_json())
    return db


def assert_shown_as_text(ui: UI, *texts: str) -> None:
    ui.wait_drawn()
    for text in texts:
        wait_for(lambda: text in ui.main_text(), 10, f"the text {text!r}")
    assert ui.driver.execute_script("return document.querySelectorAll('img[src=\"x\"]').length") == 0
    assert not ui.driver.execute_script("return Array.from(document.scripts).some(s => s.text.includes('alert('))")
    assert ui.alert_text() is None
    assert not [url for url in network_urls(ui.driver) if XSS_FETCH in url]


@pytest.mark.slow  # about 20 s: a simulated run, a server, a browser, two pages
def test_user_text_is_shown_as_text(tmp_path: Path, ui_for) -> None:
    db = xss_log(tmp_path)
    ui = ui_for(db, performance_log=True)
    ui.open("run")
    ui.screenshot("xss-run")
    assert_shown_as_text(ui, api.list_runs(db).runs[0]["run_id"])  # the runs table lists the run

    ui.open("results")
    ui.screenshot("xss-results")
    assert ui.exceptions() == []
    assert_shown_as_text(ui, XSS_CONDITION)

    ui.check("Only changed outcomes", False)
    ui.screenshot("xss-paired", at="Paired view")
    assert_shown_as_text(ui, XSS_CONDITION, XSS_RESPONSE)


# --- the whole flow on the embedded model

PROGRESS = re.compile(r"(\d+) of (\d+) trials")
RATED = re.compile(r"(\d+) of (\d+) rated")
RATING = {"scales": [{"name": "quality", "min": 1, "max": 5}]}  # one scale: one radio labelled "Rating"


@pytest.mark.slow
@pytest.mark.local_model
def test_design_run_read_and_rate_on_the_embedded_model(tmp_path: Path, local_server, ui_for) -> None:
    ui = ui_for(tmp_path / "flow.duckdb")
    study = tmp_path / "small.yaml"

    ui.open("design")
    ui.type_text("Study file", str(REPO / "studies" / "quickstart.yaml"))
    ui.click("Open")
    ui.type_text("n", "4")
    ui.wait_text("Valid")
    ui.type_text("Rating (YAML: the Rate page's scales, e.g. {scales: [{name: quality, min: 1, max: 5}]})", json.dumps(RATING))
    ui.wait_text("Valid")
    ui.type_text("Save as", str(study))
    ui.click("Save")
    ui.screenshot("flow-1-design")
    assert study.exists()
    assert yaml.safe_load(study.read_text())["rating"] == RATING  # set in the form

    ui.go("run")
    assert ui.text_input("Study file").get_attribute("value") == str(study)
    ui.click("Start run")
    seen: list[int] = []

    def finished() -> bool:
        match = PROGRESS.search(ui.text())
        if match:
            done, total = int(match[1]), int(match[2])
            if not seen or seen[-1] != done:
                seen.append(done)
                ui.screenshot(f"flow-2-run-{done}")
            return done == total
        return False

    wait_for(finished, 600, "the run to finish", poll=1)
    assert seen == sorted(seen) and len(seen) > 1, seen  # the progress grew while the run ran
    # the process ends after the last trial (it folds the log together): Start run comes back then
    wait_for(lambda: ui.button("Start run").is_enabled(), 120, "the run's process to end", poll=1)
    ui.wait_ready()
    ui.screenshot("flow-3-run-done")
    assert ui.exceptions() == []

    ui.go("results")
    assert ui.dataframes()
    wait_for(ui.images, 60, "a figure")
    ui.screenshot("flow-4-results")
    ui.select("Example", ui.options("Example")[0])
    ui.wait_drawn()
    paired = ui.main_text()
    assert all(condition in paired for condition in ("control", "EP02", "NP01"))
    ui.screenshot("flow-5-paired", at="Paired view")

    ui.go("rate")
    ui.type_text("Rater", "tester")
    for i in range(3):
        ui.choose("Rating", "3")
        ui.click("Save rating")
        ui.screenshot(f"flow-6-rate-{i + 1}")
    match = RATED.search(ui.text())
    assert match and int(match[1]) == 3, ui.text()
    queue = api.rating_queue(tmp_path / "flow.duckdb", api.list_runs(tmp_path / "flow.duckdb").runs[-1]["run_id"], "tester")
    assert queue.done == 3, queue.progress_text()  # the three ratings are in the log


def test_the_app_refuses_to_serve_when_not_bound_to_loopback() -> None:
    """Started outside the checkout (no .streamlit/config.toml), Streamlit would listen on every
    address: the app then shows one line saying how to start it, and no page."""
    from streamlit import config
    from streamlit.testing.v1 import AppTest

    before = config.get_option("server.address")
    try:
        for address, served in ((None, False), ("0.0.0.0", False), ("127.0.0.1", True)):
            config.set_option("server.address", address)
            at = AppTest.from_file(str(REPO / "app.py"), default_timeout=60).run()
            assert not at.exception
            if served:
                assert [t.value for t in at.title] == ["Design"] and not at.error
            else:
                assert not at.title and len(at.error) == 1 and "127.0.0.1" in at.error[0].value, address
    finally:
        config.set_option("server.address", before)
