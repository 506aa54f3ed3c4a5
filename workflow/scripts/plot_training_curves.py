"""Snakemake adapter: training-curve figure of one run."""

import pandas as pd

from am4cm.figures.training import plot_training_curves
from am4cm.runlog import log_to_file

log_to_file(snakemake.log[0], "plot_training_curves")
plot_training_curves(
    pd.read_csv(snakemake.input[0]),
    snakemake.output[0],
    f"Pixel-wise LTAE, run {snakemake.wildcards['run']}: training and validation",
)
