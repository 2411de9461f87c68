"""A search's Optuna storage (workbench/core/optuna_storage.py) and workers sharing it
(workbench/core/shared_trials.py), on a real PostgreSQL server started from Debian's binaries
(tests/postgres.py) and on a journal file: worker processes run exactly the trials asked together,
a killed worker's trial is failed and its place run again, and bad settings are one line."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import optuna
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from workbench.core.errors import UserError
from workbench.core.optuna_storage import check_storage, open_storage
from workbench.core.shared_trials import OWNER_ATTR

REPO = Path(__file__).resolve().parent.parent
WORKER = REPO / "tests" / "search_worker.py"
N_TRIALS = 12


def _worker(setting: str, study: str, n: int, *extra: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    return subprocess.Popen([sys.executable, str(WORKER), setting, study, str(n), *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, stdin=subprocess.DEVNULL)


def _finish(process: subprocess.Popen[str]) -> int:
    try:
        out, err = process.communicate(timeout=60)
    except subprocess.TimeoutExpired:  # a worker waiting for ever on a trial nobody fails
        process.kill()
        process.communicate()
        raise
    assert process.returncode == 0, err
    return int(out.strip().splitlines()[-1])


def _new_study(setting: str, name: str) -> optuna.Study:
    return optuna.create_study(study_name=name, storage=open_storage(setting).storage)


def _states(study: optuna.Study) -> Counter[str]:
    return Counter(t.state.name for t in study.get_trials(deepcopy=False))


def _setting(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return str(tmp_path / "search.journal") if kind == "journal" else str(request.getfixturevalue("postgres_url"))


@pytest.fixture(params=["journal", "postgresql"])
def storage_setting(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return _setting(request.param, request, tmp_path)


def test_two_workers_run_exactly_the_trials_asked(storage_setting: str) -> None:
    name = f"shared-{time.monotonic_ns()}"
    study = _new_study(storage_setting, name)
    workers = [_worker(storage_setting, name, N_TRIALS) for _ in range(2)]
    ran = [_finish(w) for w in workers]

    states = _states(study)
    assert states["COMPLETE"] + states["PRUNED"] == N_TRIALS == sum(ran)
    assert states["PRUNED"] > 0 and set(states) <= {"COMPLETE", "PRUNED"}
    owners = {t.user_attrs[OWNER_ATTR] for t in study.get_trials(deepcopy=False)}
    assert owners == {f"{os.uname().nodename}:{w.pid}" for w in workers}  # both took part


# Only a database keeps heartbeats: a journal search is shared by workers of one machine.
@pytest.mark.parametrize(("kind", "owner_elsewhere"), [("journal", False), ("postgresql", False), ("postgresql", True)], ids=["journal", "postgresql-same-host", "postgresql-other-host"])
def test_a_killed_worker_s_trial_is_failed_and_the_search_resumes(kind: str, owner_elsewhere: bool, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    storage_setting = _setting(kind, request, tmp_path)
    name = f"killed-{time.monotonic_ns()}"
    study = _new_study(storage_setting, name)
    marker = tmp_path / "hanging"
    hanging = _worker(storage_setting, name, N_TRIALS, "--hang", str(marker))
    deadline = time.monotonic() + 60
    while not marker.exists():
        assert hanging.poll() is None and time.monotonic() < deadline, hanging.stderr.read() if hanging.stderr else ""
        time.sleep(0.05)
    hanging.send_signal(signal.SIGKILL)
    hanging.communicate()
    (stuck,) = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))
    if owner_elsewhere:  # as if it had run on another machine: only its stopped heartbeat tells
        study._storage.set_trial_user_attr(stuck._trial_id, OWNER_ATTR, "elsewhere:1")

    assert _finish(_worker(storage_setting, name, N_TRIALS)) == N_TRIALS
    states = _states(study)
    assert states["FAIL"] == 1 and states["COMPLETE"] + states["PRUNED"] == N_TRIALS
    assert study.trials[stuck.number].state == optuna.trial.TrialState.FAIL


def test_a_search_stored_in_postgresql_reads_back(postgres: Any) -> None:
    """One process: the helper's storage holds a study that a second opening reads back whole,
    through Optuna's RDBStorage on psycopg 3."""
    opened = open_storage(postgres.url)
    assert opened.shown == postgres.url.replace("postgresql://", "postgresql+psycopg://")
    study = optuna.create_study(study_name=f"single-{time.monotonic_ns()}", storage=opened.storage, sampler=optuna.samplers.RandomSampler(seed=1))
    study.optimize(lambda t: (t.suggest_float("x", -1, 1) - 0.5) ** 2, n_trials=5)
    again = optuna.load_study(study_name=study.study_name, storage=open_storage(postgres.url).storage)
    assert [t.params for t in again.trials] == [t.params for t in study.trials]
    assert again.best_value == study.best_value


def test_the_password_comes_from_pgpassword(postgres: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from postgres import PASSWORD

    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.pgpass of the machine's
    monkeypatch.delenv("PGPASSWORD", raising=False)
    with pytest.raises(UserError) as refused:
        open_storage(postgres.password_url)
    assert "\n" not in str(refused.value) and str(refused.value).startswith("search.storage: cannot use")

    monkeypatch.setenv("PGPASSWORD", PASSWORD)
    study = optuna.create_study(storage=open_storage(postgres.password_url).storage)
    study.optimize(lambda t: t.suggest_int("k", 0, 3), n_trials=2)
    assert len(study.trials) == 2


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://user:hunter2-secret@127.0.0.1/search",
        "postgresql+psycopg://user:hunter2-secret@db.example/search",
        "postgresql://user@127.0.0.1/search?password=hunter2-secret",
        "postgres://127.0.0.1/search?sslpassword=hunter2-secret",
    ],
)
def test_a_password_in_the_url_is_refused(url: str) -> None:
    with pytest.raises(UserError) as refused:
        check_storage(url, file="study.yaml")
    message = str(refused.value)
    assert message.startswith("study.yaml: search.storage: a password in the URL") and "PGPASSWORD" in message
    assert "hunter2" not in message and "\n" not in message


@pytest.mark.parametrize(
    ("setting", "says"),
    [
        ("", "must be a journal file path"),
        ("mysql://root@127.0.0.1/db", "the scheme 'mysql' is not allowed"),
        ("redis://127.0.0.1:6379", "the scheme 'redis' is not allowed"),
        ("postgresql+asyncpg://u@127.0.0.1/db", "is not allowed"),
        ("sqlite://", "an SQLite storage needs a file"),
        ("postgresql://u@127.0.0.1:notaport/db", "not a database URL"),
        ("/nonexistent-dir/search.journal", "the directory '/nonexistent-dir' does not exist"),
        ("postgresql://u@127.0.0.1:9/db", "cannot use postgresql+psycopg://u@127.0.0.1:9/db: "),
    ],
)
def test_a_bad_storage_is_one_line(setting: str, says: str, tmp_path: Path) -> None:
    with pytest.raises(UserError) as bad:
        open_storage(setting, base_dir=tmp_path, file="study.yaml")
    message = str(bad.value)
    assert message.startswith("study.yaml: search.storage: ") and says in message and "\n" not in message


@pytest.mark.parametrize("setting", ["search.journal", "sqlite:///search.sqlite"])
def test_a_relative_file_is_taken_from_the_log_s_directory(setting: str, tmp_path: Path) -> None:
    opened = open_storage(setting, base_dir=tmp_path)
    optuna.create_study(storage=opened.storage).optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    stored = tmp_path / setting.removeprefix("sqlite:///")
    assert stored.stat().st_size > 0 and str(stored) in opened.shown


def test_a_directory_is_no_journal(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="is a directory"):
        open_storage(".", base_dir=tmp_path)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    scheme=st.sampled_from(["postgresql", "postgres", "postgresql+psycopg", "sqlite", "mysql", "http", "", "p+q", "ftp"]),
    rest=st.text(st.characters(codec="utf-8", exclude_characters="\n"), max_size=40),
    # `~` on both sides: a secret that is no word of a message (`passwo` is in "password")
    secret=st.text(st.characters(min_codepoint=33, max_codepoint=126, exclude_characters="@/:?#[]%~"), min_size=4, max_size=10).map(lambda s: f"~{s}~"),
)
def test_generated_urls_are_checked_in_one_line_and_never_show_a_password(scheme: str, rest: str, secret: str) -> None:
    for setting in (f"{scheme}://{rest}", f"{scheme}://u:{secret}@{rest}"):
        try:
            checked = check_storage(setting)
        except UserError as exc:
            message = str(exc)
            assert message.startswith("search.storage: ") and "\n" not in message
            assert secret not in message.removeprefix("search.storage: ") or secret in setting.replace(f":{secret}@", "")
            continue
        assert checked.url is not None and checked.url.password is None
        assert secret not in checked.shown or secret in setting.replace(f":{secret}@", "")


def test_the_server_fixture_leaves_nothing_running() -> None:
    from postgres import bin_dir, postgres_server

    binaries = bin_dir()
    if binaries is None:
        pytest.skip("PostgreSQL is not installed; .ci/run installs Debian's postgresql")
    with postgres_server(binaries) as server:
        pid = server.postmaster_pid()
        assert pid is not None and _running(pid)
        assert check_storage(server.url).url is not None
    assert not _running(pid) and not server.directory.exists()


def _running(pid: int) -> bool:
    """Alive and not a zombie waiting for a parent that never reaps it."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
