"""Snakemake adapter: evaluate one run's model on every pixel of its test patches."""

import json
from pathlib import Path

import torch

from am4cm.assessment import assess_run
from am4cm.runlog import log_to_file

log_to_file(snakemake.log[0], "evaluate_test")
torch.set_num_threads(snakemake.threads)
split = json.loads(Path(snakemake.input["split"]).read_text())
assess_run(
    snakemake.params["root"],
    split["run"],
    split["test"],
    snakemake.input["model"],
    snakemake.output,
    device=snakemake.params["device"],
    n_samples=snakemake.params["n_samples"],
)
