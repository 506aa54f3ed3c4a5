"""Snakemake adapter: build the on-disk pixel cache of one run."""

import json
from pathlib import Path

from am4cm.runlog import log_to_file
from am4cm.training.cache import SamplingConfig, build_cache

log = log_to_file(snakemake.log[0], "sample_pixels")
split = json.loads(Path(snakemake.input["split"]).read_text())
summary = build_cache(
    snakemake.params["root"],
    split,
    SamplingConfig(**snakemake.params["sampling"]),
    snakemake.output[0],
)
log.info(
    "run %s: %d train and %d val pixels; band statistics from %s",
    summary["run"],
    summary["train_pixels"],
    summary["val_pixels"],
    summary["stats_source"],
)
