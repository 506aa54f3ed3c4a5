"""Snakemake adapter: overview figure of the last patch of the index (tile t32ulu, T = 38)."""

import pandas as pd

from am4cm.data.pastis import has_cloud_truth, open_s2, read_cloud_truth, read_labels, read_metadata
from am4cm.figures.patch import plot_synthetic_patch
from am4cm.runlog import log_to_file

log_to_file(snakemake.log[0], "plot_dataset_patch")
root = snakemake.params["root"]
patch = pd.read_csv(snakemake.input["index"]).iloc[-1]
patch_id, n_dates = int(patch["ID_PATCH"]), int(patch["T"])
dates = read_metadata(root).set_index("ID_PATCH").loc[patch_id, "dates"]
plot_synthetic_patch(
    open_s2(root, patch_id, n_dates),
    read_labels(root, patch_id),
    read_cloud_truth(root, patch_id, n_dates) if has_cloud_truth(root) else None,
    list(dates),
    snakemake.output[0],
    f"PASTIS patch {patch_id} (tile {patch['TILE']}, fold {patch['Fold']})",
)
