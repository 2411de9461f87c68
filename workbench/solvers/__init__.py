"""Solvers: how a trial turns its messages into an answer (the contract in base.py)."""
