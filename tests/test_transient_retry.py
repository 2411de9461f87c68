"""Errored trials do not stay wrong forever: a resume runs again the trials that ended in a
transient error (server unreachable, timeout, rate limit, 5xx), keeping their earlier attempts in
the log, at most MAX_ATTEMPTS times in all; permanent errors (bad request...) stay errors. Every
reader sees one row per trial, its latest attempt."""

from __future__ import annotations

import json
import socket
import threading
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from conftest import run_cli, sim_study, write_study
from workbench import api
from workbench.run.retry import MAX_ATTEMPTS
from workbench.store import query


def _flaky_study(tmp_path: Path, error_rate: float, n: int) -> Path:
    study = sim_study(name="flaky", tasks=[{"task": "ii/sum", "n": n}])  # 3 conditions: 3n trials
    study["models"][0]["max_retries"] = 0  # a failed call fails its trial at once
    study["models"][0]["simulate"] = {"default_accuracy": 0.7, "error_rate": error_rate}
    return write_study(tmp_path / "s.yaml", study)


def _by_trial(db: Path, sql: str) -> dict[str, tuple[Any, ...]]:
    return {row["trial_id"]: tuple(row.values()) for row in query(db, sql)}


def test_a_resume_runs_again_exactly_the_trials_that_ended_in_transient_errors(tmp_path: Path) -> None:
    path, db = _flaky_study(tmp_path, error_rate=0.3, n=20), tmp_path / "log.duckdb"
    first = run_cli("run", str(path), "--db", str(db), "--json")
    assert first.returncode == 0, first.stderr
    errored = set(_by_trial(db, "SELECT trial_id FROM trials WHERE status = 'error'"))
    assert 5 <= len(errored) == json.loads(first.stdout)["errors"] < 60
    assert f"{len(errored)} trials ended in transient errors (server error); run the same command again to retry them" in " ".join(first.stderr.split())
    before = _by_trial(db, "SELECT trial_id, attempt, status, error, finished_at FROM trial_attempts")
    assert api.plan(path, db).to_json()["trials_done"] == 60 - len(errored)  # the plan of the resume runs them too

    again = api.run(path, db).to_json()
    # only the errored trials, once each (one call per trial here)
    assert again["model_calls"] == again["retried"] == len(errored)
    attempts = query(db, "SELECT trial_id, attempt, status, error, finished_at FROM trial_attempts")
    assert Counter(r["attempt"] for r in attempts) == {1: 60, 2: len(errored)}
    assert {r["trial_id"] for r in attempts if r["attempt"] == 2} == errored
    # the earlier attempts are kept as they were logged
    assert {r["trial_id"]: tuple(r.values()) for r in attempts if r["attempt"] == 1} == before
    assert query(db, "SELECT count(*) AS n FROM call_attempts WHERE attempt = 1 AND error IS NOT NULL")[0]["n"] == len(errored)

    # every reader counts each trial once: its latest attempt
    latest = query(db, "SELECT count(*) AS n, count(DISTINCT trial_id) AS trials, count(*) FILTER (WHERE status = 'error') AS errors FROM trials")[0]
    assert latest["n"] == latest["trials"] == 60 and latest["errors"] == again["errors"] < len(errored)
    for table in ("calls", "scores"):  # a trial's rows of its latest attempt only
        stale = f"SELECT count(*) AS n FROM {table} c JOIN trials t USING (trial_id) WHERE c.attempt <> t.attempt"
        assert query(db, stale)[0]["n"] == 0, table
    assert query(db, "SELECT count(*) AS n FROM calls")[0]["n"] == 60
    for extractor in ("flexible", "strict"):  # the run's own extractor's scores, and a diagnostic one's
        compared = api.compare(db, extractor=extractor).to_json()
        assert sum(r["n"] for r in compared["rows"] if r["task"] == "ii/sum") == 60
        assert sum(r["errors"] for r in compared["rows"] if r["task"] == "ii/sum") == again["errors"]
    listed = api.list_runs(db).runs
    assert [(r["trials_done"], r["errors"]) for r in listed] == [(60, again["errors"])]


def test_retries_stop_after_the_last_attempt_and_errors_stay_in_the_denominator(tmp_path: Path) -> None:
    path, db = _flaky_study(tmp_path, error_rate=1.0, n=4), tmp_path / "log.duckdb"  # the service never answers
    sessions = [api.run(path, db).to_json() for _ in range(MAX_ATTEMPTS)]
    last = run_cli("run", str(path), "--db", str(db), "--json")
    assert last.returncode == 0 and f"12 trials still ended in transient errors after {MAX_ATTEMPTS} attempts" in " ".join(last.stderr.split())
    sessions.append(json.loads(last.stdout))
    assert [s["model_calls"] for s in sessions] == [12] * MAX_ATTEMPTS + [0]
    assert [s["transient_errors"] for s in sessions] == [12] * (MAX_ATTEMPTS - 1) + [0, 0]
    assert [s["transient_exhausted"] for s in sessions] == [0] * (MAX_ATTEMPTS - 1) + [12, 12]
    assert all(s["errors"] == 12 and s["trials_done"] == 12 for s in sessions)
    assert all(sum(c["n"] for c in s["conditions"]) == 12 and sum(c["errors"] for c in s["conditions"]) == 12 for s in sessions)
    assert query(db, "SELECT max(attempt) AS a, count(*) AS n FROM trial_attempts")[0] == {"a": MAX_ATTEMPTS, "n": 12 * MAX_ATTEMPTS}


class _Stub(BaseHTTPRequestHandler):
    """An OpenAI-compatible endpoint: model `bad` always refuses the request (400, permanent);
    model `flaky` is unavailable (503, transient) while `down` is set, then answers."""

    down = threading.Event()
    hits: Counter[str] = Counter()

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        model = json.loads(self.rfile.read(int(self.headers["Content-Length"])))["model"]
        self.hits[model] += 1
        if model == "bad":
            self._reply(400, {"error": {"message": "bad request", "type": "invalid_request_error"}})
        elif self.down.is_set():
            self._reply(503, {"error": {"message": "overloaded", "type": "server_error"}})
        else:
            message = {"role": "assistant", "content": "42"}
            self._reply(200, {"id": "c", "object": "chat.completion", "created": 0, "model": model,
                              "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
                              "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}})

    def _reply(self, code: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        return None


@pytest.fixture
def stub(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-stub-0000")  # litellm's OpenAI client wants one; the stub ignores it
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Stub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _Stub.hits.clear()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


def test_permanent_errors_are_not_retried_and_transient_ones_are(tmp_path: Path, stub: str) -> None:
    study = sim_study(name="stubbed", tasks=[{"task": "ii/sum", "n": 3}], conditions=[{"name": "control"}, {"name": "EP02", "stimuli": ["EP02"]}])
    study["models"] = [{"id": f"openai/{name}", "api_base": stub, "max_retries": 0, "timeout_s": 30} for name in ("bad", "flaky")]
    path, db = write_study(tmp_path / "s.yaml", study), tmp_path / "log.duckdb"
    _Stub.down.set()
    first = api.run(path, db)
    assert first.errors == 12 and first.transient_kinds == {"unavailable": 6}
    kinds = {r["model"]: r["kinds"] for r in query(db, "SELECT model, list(DISTINCT error_kind) AS kinds FROM calls GROUP BY model")}
    assert kinds == {"openai/bad": ["bad_request"], "openai/flaky": ["unavailable"]}
    hits = dict(_Stub.hits)
    _Stub.down.clear()

    second = api.run(path, db)
    assert second.retried == 6 and second.model_calls == 6  # the flaky model's trials, not the bad one's
    assert _Stub.hits["bad"] == hits["bad"] and _Stub.hits["flaky"] > hits["flaky"]
    assert second.errors == 6 and second.transient_errors == 0 and second.transient_exhausted == 0
    statuses = {(r["model"], r["status"]): r["n"] for r in query(db, "SELECT model, status, count(*) AS n FROM trials GROUP BY ALL")}
    assert statuses == {("openai/bad", "error"): 6, ("openai/flaky", "ok"): 6}
    third = api.run(path, db)
    assert third.model_calls == 0 and third.errors == 6  # the permanent errors stay errors


class _Proxy:
    """A TCP forwarder on 127.0.0.1 to the model server: stopping it closes its port and every
    open connection, which is what a client sees of a server killed mid-run."""

    def __init__(self, target: int, port: int = 0) -> None:
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", port))
        self.port = self.listener.getsockname()[1]
        self.open: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target))
            self.open += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=_pipe, args=(a, b), daemon=True).start()

    def stop(self) -> None:
        for sock in (self.listener, *self.open):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()


def _pipe(source: socket.socket, sink: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            sink.sendall(data)
    except OSError:
        pass


@pytest.mark.slow
@pytest.mark.local_model
def test_trials_cut_off_by_a_killed_local_server_complete_on_resume(tmp_path: Path, local_server: Any) -> None:
    from urllib.parse import urlparse

    proxy = _Proxy(urlparse(local_server.api_base).port)
    study = {
        "name": "killed-server",
        "models": [{"id": "local/default", "api_base": f"http://127.0.0.1:{proxy.port}/v1", "max_retries": 0, "params": {"temperature": 0.0, "max_tokens": 8}}],
        "conditions": [{"name": "control"}, {"name": "EP02", "stimuli": ["EP02"]}],
        "tasks": [{"task": "ii/sum", "n": 2}],
        "seed": 0,
        "concurrency": 1,  # one trial at a time: the first lands, the server goes, three fail
    }
    path, db = write_study(tmp_path / "s.yaml", study), tmp_path / "log.duckdb"

    def kill_after_one(report: api.Progress) -> None:
        if report.done == 1:
            proxy.stop()

    first = api.run(path, db, progress=kill_after_one)
    assert first.errors == 3 and first.transient_kinds == {"connection": 3}
    proxy = _Proxy(proxy.target, proxy.port)  # the server is back on its port
    try:
        second = api.run(path, db)
    finally:
        proxy.stop()
    assert second.retried == 3 and second.model_calls == 3 and second.errors == 0 and second.trials_done == 4
    assert query(db, "SELECT count(*) AS n FROM trial_attempts WHERE attempt = 1 AND status = 'error'")[0]["n"] == 3
    assert query(db, "SELECT count(*) AS n, count(*) FILTER (WHERE status = 'error') AS errors FROM trials")[0] == {"n": 4, "errors": 0}
