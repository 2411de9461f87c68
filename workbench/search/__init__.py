"""Optuna searches over candidate conditions, each scored through the same runner as `workbench run`."""
