"""Snakemake adapter: train the pixel-wise LTAE of one run."""

import torch

from am4cm.runlog import log_to_file
from am4cm.training.train import train, train_config_from_dicts

log = log_to_file(snakemake.log[0], "train_model")
torch.set_num_threads(snakemake.threads)
config = train_config_from_dicts(snakemake.params["training"], snakemake.params["model"])
train(
    snakemake.input[0],
    snakemake.output["model"],
    snakemake.output["history"],
    snakemake.params["resume_state"],
    config,
)
