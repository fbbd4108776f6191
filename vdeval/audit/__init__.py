"""`vdeval audit`: does each metric catch the failure it is meant to catch?

core.py runs it (clean vs corrupted world clips through the run's featurize and score stages;
AUROC and Spearman per metric and corruption), rendering.py writes its table, Markdown and
heatmap, natural_calibration.py checks frozen_motion on natural footage, cli.py is the command.
"""
from vdeval.audit.core import (
    DEFAULT_METRICS,
    TEXT_CORRUPTIONS,
    AuditResult,
    auroc,
    default_metrics,
    flag_accuracy,
    own_failure,
    run_audit,
    severity_spearman,
    swap_caption,
)
from vdeval.audit.rendering import plot_heatmap, to_markdown, wide_table, write_audit

__all__ = ["DEFAULT_METRICS", "TEXT_CORRUPTIONS", "AuditResult", "auroc", "default_metrics", "flag_accuracy", "own_failure",
           "run_audit", "severity_spearman", "swap_caption", "plot_heatmap", "to_markdown", "wide_table",
           "write_audit"]
