"""One search worker process for tests/test_search_storage.py: opens STORAGE with the workbench's
helper and runs the study's shared budget of N trials on a toy objective.

usage: python tests/search_worker.py STORAGE STUDY N [--hang MARKER]
With --hang the worker's first trial writes MARKER and sleeps, so that the test can kill it mid-trial.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import optuna

from workbench.core.optuna_storage import open_storage
from workbench.core.shared_trials import run_shared_trials


def main() -> None:
    setting, study_name, n_trials = sys.argv[1], sys.argv[2], int(sys.argv[3])
    hang = Path(sys.argv[5]) if sys.argv[4:5] == ["--hang"] else None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    opened = open_storage(setting, heartbeat_interval=1, grace_period=2)
    study = optuna.load_study(study_name=study_name, storage=opened.storage, sampler=optuna.samplers.RandomSampler())

    def objective(trial: optuna.Trial) -> float:
        x = trial.suggest_float("x", -5.0, 5.0)
        if hang is not None:
            hang.write_text(str(trial.number))
            time.sleep(600)
        time.sleep(0.05)  # long enough for the workers' trials to interleave
        if trial.number % 4 == 3:
            raise optuna.TrialPruned()  # pruned trials take places of the budget too
        return (x - 1.0) ** 2

    ran = run_shared_trials(study, objective, n_trials, opened.budget_lock, poll=0.2)
    print(ran)


if __name__ == "__main__":
    main()
