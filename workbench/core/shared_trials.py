"""Workers sharing one Optuna study run exactly the trials asked, and a killed worker's trial is
taken over.

Optuna's own `optimize(callbacks=[MaxTrialsCallback(n)])` counts after a trial ends, so K workers
overshoot by up to K-1 trials. Here a worker counts and claims (`study.ask()`) under the storage's
budget lock (workbench/core/optuna_storage.py): every trial not failed (waiting, running, pruned or
complete) holds one place of the budget, so the budget is never exceeded, and a trial failed
because its worker died frees its place for another.

A dead worker's running trial is failed under the lock by
- the database's heartbeat (`optuna.storages.fail_stale_trials`), for workers on any machine;
- its owner's host and process id (the `workbench_worker` user attribute), when that host is this
  one and the process is gone: the journal storage has no heartbeat, and a resumed search on the
  same machine need not wait for a grace period.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING

from .processes import alive

if TYPE_CHECKING:
    import optuna

OWNER_ATTR = "workbench_worker"  # "host:pid" of the worker running a trial
_POLL = 0.5  # seconds between looks while other workers' trials run and the budget is full


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def run_shared_trials(
    study: optuna.Study,
    objective: Callable[[optuna.Trial], float | list[float]],
    n_trials: int,
    budget_lock: Callable[[str], AbstractContextManager[None]],
    *,
    poll: float = _POLL,
) -> int:
    """Run trials of `study` until it holds `n_trials` trials that did not fail, all finished;
    return how many this worker ran. `budget_lock` is the storage's (SearchStorage.budget_lock).
    A trial whose objective raises `optuna.TrialPruned` is pruned; any other exception fails the
    trial (its place is taken again) and propagates. The same call resumes a search."""
    import optuna
    from optuna.storages._heartbeat import get_heartbeat_thread

    ran = 0
    while True:
        with budget_lock(study.study_name):
            _fail_abandoned(study)
            trials = study.get_trials(deepcopy=False)
            placed = [t for t in trials if t.state != optuna.trial.TrialState.FAIL]
            waiting = any(t.state == optuna.trial.TrialState.WAITING for t in placed)
            running = any(t.state == optuna.trial.TrialState.RUNNING for t in placed)
            trial = study.ask() if len(placed) < n_trials or waiting else None
            if trial is not None:
                trial.set_user_attr(OWNER_ATTR, worker_name())
        if trial is None:
            if not running:
                return ran
            time.sleep(poll)  # the budget is full of others' running trials: one may yet fail
            continue
        # Optuna's own heartbeat thread (what optimize() uses): beats while the trial runs when
        # the storage keeps heartbeats (a database does), nothing otherwise.
        with get_heartbeat_thread(trial._trial_id, trial.storage):
            try:
                value = objective(trial)
            except optuna.TrialPruned:
                study.tell(trial, state=optuna.trial.TrialState.PRUNED)
            except BaseException:
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
                raise
            else:
                study.tell(trial, value)
        ran += 1


def _fail_abandoned(study: optuna.Study) -> None:
    import optuna

    optuna.storages.fail_stale_trials(study)
    host = socket.gethostname()
    for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        owner_host, _, pid = str(trial.user_attrs.get(OWNER_ATTR, "")).rpartition(":")
        if owner_host == host and pid.isdigit() and not alive(int(pid)):
            try:
                study.tell(trial.number, state=optuna.trial.TrialState.FAIL)
            except (ValueError, RuntimeError):  # finished meanwhile by its owner or another worker
                pass
