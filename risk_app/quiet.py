"""Quiet the libraries' expected notices, so logs hold our messages and real problems.

A freshly initialised classification head ("score.weight MISSING"), optional CPU kernels that
are not installed, transformers' deprecation notices about its own internals and progress bars
for shard writing are not actionable for an analyst or an engineer. The CLI calls this at start
and so do the Dagster definitions.
"""

from __future__ import annotations

import logging
import os
import warnings


def quiet_libraries() -> None:
    """Keep the terminal for our progress bars and messages: the libraries' expected notices
    (a freshly initialised classification head, optional CPU kernels) are not actionable."""
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    # transformers' deprecation notices about its own internals are for library authors.
    warnings.filterwarnings("ignore", category=FutureWarning, module=r"transformers\..*")
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    # transformers' own bars (shard writing, weight loading) would interleave with ours.
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    # Imported after the environment above is set: transformers reads it when it first loads.
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()  # the env var is read only when transformers first loads
    for name in ("bitsandbytes", "mlflow", "alembic", "transformers"):
        logging.getLogger(name).setLevel(logging.ERROR)
    # Dagster's notices about its own beta parameters are for library authors, too.
    warnings.filterwarnings("ignore", message=".*is currently in beta.*")
    warnings.filterwarnings("ignore", category=FutureWarning, module=r"transformers(\..*)?")
