"""Workers sharing one Optuna study run exactly the trials asked, and a failed trial is run again.

Optuna's own `optimize(callbacks=[MaxTrialsCallback(n)])` counts after a trial ends, so K workers
overshoot by up to K-1 trials. Here a worker counts and claims (`study.ask()`) under the storage's
budget lock (workbench/core/optuna_storage.py): every trial not failed (waiting, running, pruned or
complete) holds one place of the budget, so the budget is never exceeded, and a failed trial frees
its place.

A dead worker's running trial is failed under the lock by
- the database's heartbeat (`optuna.storages.fail_stale_trials`), for workers on any machine;
- its owner's host, process id and start time (user attributes), when that host is this one and
  the process is gone: the journal storage has no heartbeat, and a resumed search on the same
  machine need not wait for a grace period.

A failed trial - its worker died, or its objective raised (an error, Ctrl-C) - is asked again with
the values it had drawn (Optuna's RetryHeartbeatStaleTrialCallback: a WAITING copy, which the next
`ask` takes first), so that work it left half done (a search candidate's logged run) resumes
rather than a fresh draw repeating it. Its failure and its retry happen under the budget lock, so
the retry takes exactly the place the failure freed. The same values are asked again at most
MAX_RETRIES times: a trial that keeps failing gives its place to a fresh draw.
"""

from __future__ import annotations

import copy
import os
import socket
import time
import warnings
from collections.abc import Callable
from contextlib import AbstractContextManager
from functools import cache
from typing import TYPE_CHECKING

from .pauses import pause_point
from .processes import alive, process_start

if TYPE_CHECKING:
    import optuna

OWNER_ATTR = "workbench_worker"  # "host:pid" of the worker running a trial
OWNER_START_ATTR = "workbench_worker_start"  # when that process started: a reused pid is another process
RETRY_OF_ATTR = "retry_of"  # on a retry: the number of the failed trial it runs again (a user attribute: optuna-dashboard shows it)
MAX_RETRIES = 2  # a failed trial's values are asked again at most twice (three runs in all), then a fresh draw takes the place
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
    trial (its values are asked again, its place kept for them) and propagates. The same call
    resumes a search."""
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
            trial = None
            if len(placed) < n_trials or waiting:  # a waiting trial holds a place already: running it adds none
                pause_point("search_ask")  # a test holds two workers here: without the lock both would ask
                with warnings.catch_warnings():  # this loop beats the heartbeat as optimize() does, below
                    warnings.filterwarnings("ignore", "Heartbeat of storage is supposed to be used with Study.optimize")
                    trial = study.ask()
                _claim(trial)
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
                with budget_lock(study.study_name):  # no other worker may take the freed place before the retry does
                    study.tell(trial, state=optuna.trial.TrialState.FAIL)
                    _ask_again(study, trial.storage.get_trial(trial._trial_id))
                raise
            else:
                study.tell(trial, value)
        ran += 1


def _claim(trial: optuna.Trial) -> None:
    """Say whose the trial is: the start time first, so that a trial whose owner is named always
    has it (one killed in between names no owner, which `_abandoned` reads as dead)."""
    trial.set_user_attr(OWNER_START_ATTR, process_start(os.getpid()))
    trial.set_user_attr(OWNER_ATTR, worker_name())


def _abandoned(trial: optuna.trial.FrozenTrial) -> bool:
    """Whether a running trial's worker is gone. Asked only under the budget lock, where every
    worker claims its trial as it asks for it: a running trial naming no owner was asked by a
    worker killed before it could say whose it is."""
    owner = trial.user_attrs.get(OWNER_ATTR)
    if owner is None:
        return True
    host, _, pid = str(owner).rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False  # another machine's: its heartbeat tells
    start = trial.user_attrs.get(OWNER_START_ATTR)
    return not alive(int(pid)) or (start is not None and process_start(int(pid)) != start)


def _fail_abandoned(study: optuna.Study) -> None:
    """Fail the running trials whose worker is gone, and ask their values again."""
    import optuna

    running = [(t.number, _abandoned(t)) for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)  # in Optuna since 2.9
        optuna.storages.fail_stale_trials(study)  # by the heartbeat; the storage sets no retry callback: asked again below
    for number, gone in running:
        if gone:
            try:
                study.tell(number, state=optuna.trial.TrialState.FAIL)
            except (ValueError, RuntimeError):  # just failed by its heartbeat
                pass
    failed = {t.number: t for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.FAIL,))}
    for number, _ in running:
        if number in failed:  # failed by this look: a worker fails its own trial under the lock too
            _ask_again(study, failed[number])


def _ask_again(study: optuna.Study, failed: optuna.trial.FrozenTrial) -> None:
    """A WAITING copy of a failed trial, its values and attributes kept (with `retry_of`), unless
    its values failed MAX_RETRIES times already."""
    named = copy.deepcopy(failed)
    named.set_user_attr(RETRY_OF_ATTR, failed.number)  # the callback copies the user attributes to the retry
    _retry()(study, named)


@cache
def _retry() -> Callable[[optuna.Study, optuna.trial.FrozenTrial], None]:
    import optuna

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)  # in Optuna since 2.8
        return optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=MAX_RETRIES)
