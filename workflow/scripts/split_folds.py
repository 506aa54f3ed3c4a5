"""Snakemake adapter: train/val/test patch IDs of one official run."""

import pandas as pd

from am4cm.data.splits import split_run
from am4cm.io import write_json
from am4cm.runlog import log_to_file

log = log_to_file(snakemake.log[0], "split_folds")
split = split_run(pd.read_csv(snakemake.input[0]), int(snakemake.wildcards["run"]))
write_json(split, snakemake.output[0])
log.info("run %s: %s", split["run"], {name: len(split[name]) for name in ("train", "val", "test")})
