"""Prompt-Affect Workbench: study spec -> trials -> runner -> store -> statistics -> exports."""

import os

# litellm fetches its model cost map from the network on import unless told otherwise.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

__version__ = "0.1.0"
