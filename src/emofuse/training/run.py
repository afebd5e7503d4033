"""Cross-validation runs, re-exported from the modules that own each part (kept so that
``from emofuse.training.run import open_run, run_cv, train_fold`` goes on working):

- ``training/lifecycle.py``: ``open_run`` and ``RunContext`` (the run folder opened, checked, audited)
- ``training/inputs.py``: the cache folder, transcripts, computing features and text embeddings
- ``training/fold.py``: ``train_fold``, one fold's steps (datasets -> ... -> outputs)
- ``training/scheduler.py``: ``run_cv`` (which folds run where)
- ``summary.py``: ``summarize_run`` and the one summary renderer
"""

from ..summary import pooled_subsets, render, summarize_run
from .fold import build_datasets, fold_augment, predict_probs, train_fold, write_predictions
from .inputs import frontend_config, transcripts
from .lifecycle import (EXECUTION_KEYS, RunContext, is_primary_process, open_run, overlap_summary, plan_folds,
                        write_run_audit)
from .scheduler import run_cv


def results_markdown(summary: dict) -> str:
    """results.md's text (``emofuse.summary.render(summary, "markdown")``)."""
    return render(summary, "markdown")


__all__ = ["EXECUTION_KEYS", "RunContext", "build_datasets", "fold_augment", "frontend_config", "is_primary_process",
           "open_run", "overlap_summary", "plan_folds", "pooled_subsets", "predict_probs", "results_markdown", "run_cv",
           "summarize_run", "train_fold", "transcripts", "write_predictions", "write_run_audit"]
