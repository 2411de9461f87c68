"""Paired statistics over the log: tests, intervals and effect sizes, multiplicity, pooling
across tasks, power. The plain functions take sequences or arrays so scripts can call them;
`compare` builds the comparison table that the CLI, the exports and the UI show."""

from .effects import Estimate, cohens_h, newcombe_paired, odds_ratio_discordant, paired_diff_ci, relative_diff_ci, wilson
from .frame import RunData, load_run, trial_frame
from .multiplicity import adjust
from .paired import PairedTable, PairedTestResult, cochran_q, friedman, mcnemar, paired_t, permutation_test, wilcoxon
from .pooling import ModelEffect, PooledEffect, gee_effects, random_effects
from .power import PowerPlan, independent_discordance, power_paired_binary
from .table import ALL_TASKS, FAMILIES, TESTS, Comparison, ComparisonRow, ConditionRow, PooledRow, compare, condition_table

__all__ = [
    "ALL_TASKS", "FAMILIES", "TESTS", "Comparison", "ComparisonRow", "ConditionRow", "Estimate", "ModelEffect", "PairedTable",
    "PairedTestResult", "PooledEffect", "PooledRow", "PowerPlan", "RunData", "adjust", "cochran_q", "cohens_h", "compare",
    "condition_table", "friedman", "gee_effects", "independent_discordance", "load_run", "mcnemar", "newcombe_paired",
    "odds_ratio_discordant", "paired_diff_ci", "paired_t", "permutation_test", "power_paired_binary", "random_effects",
    "relative_diff_ci", "trial_frame", "wilcoxon", "wilson",
]
