"""Snakemake adapter: the attention study's headline numbers of every configured run."""

import pandas as pd

from am4cm.attention.study import headline_across_runs
from am4cm.io import write_csv
from am4cm.runlog import log_to_file

log = log_to_file(snakemake.log[0], "summarise_attention")
tables = {
    run: pd.read_csv(path)
    for run, path in zip(snakemake.params["runs"], snakemake.input, strict=True)
}
summary = headline_across_runs(tables)
write_csv(summary, snakemake.output[0])
log.info("headline numbers of runs %s:\n%s", list(tables), summary.to_string(index=False))
