"""Snakemake adapter: the official 5-fold summary from the five test confusion matrices."""

from am4cm.assessment import summarise_runs
from am4cm.io import write_csv
from am4cm.runlog import log_to_file

log = log_to_file(snakemake.log[0], "summarise_folds")
paths = {str(run): path for run, path in enumerate(snakemake.input, start=1)}
summary = summarise_runs(paths)
write_csv(summary, snakemake.output[0])
log.info("pooled 5-fold scores:\n%s", summary.to_string(index=False))
