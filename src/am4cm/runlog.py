"""Logging for workflow scripts: everything a step says goes to its Snakemake log file."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path


def log_to_file(path: Path | str, name: str) -> logging.Logger:
    """Send stderr (progress bars, warnings, tracebacks) and log records of a step to ``path``.

    Uncaught exceptions are printed to stderr by Python, so they land in the log too.
    """
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("TQDM_MININTERVAL", "5")  # a log file gets a progress line every 5 s
    stream = open(path, "w", buffering=1)  # noqa: SIM115 (kept open for the whole step)
    sys.stderr = stream
    logging.basicConfig(
        stream=stream,
        level=logging.INFO,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
        force=True,
    )
    return logging.getLogger(name)
