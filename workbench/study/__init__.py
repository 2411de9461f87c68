"""Studies: the spec (spec.py), sweeps (sweep.py) and their expansion into trials (expand.py)."""
