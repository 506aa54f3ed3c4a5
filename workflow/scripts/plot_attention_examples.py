"""Snakemake adapter: attention figures of one test patch (chosen dates, whole series)."""

import numpy as np
import pandas as pd

from am4cm.attention.study import plot_patch_examples, val_threshold
from am4cm.runlog import log_to_file

log_to_file(snakemake.log[0], "plot_attention_examples")
reference = snakemake.params["reference"]
plot_patch_examples(
    snakemake.params["root"],
    int(snakemake.params["patch"]),
    snakemake.input["attention"],
    np.load(snakemake.input["reference"]),
    reference,
    val_threshold(pd.read_csv(snakemake.input["table"]), "mean_x_T", reference),
    snakemake.output["dates"],
    snakemake.output["series"],
    int(snakemake.wildcards["run"]),
)
