"""Snakemake adapter: validate and index the PASTIS root."""

from am4cm.data.index import index_dataset
from am4cm.io import write_csv
from am4cm.runlog import log_to_file

log = log_to_file(snakemake.log[0], "index_dataset")
log.info("indexing PASTIS root %s", snakemake.params["root"])
index = index_dataset(snakemake.params["root"])
write_csv(index, snakemake.output[0])
log.info("indexed %d patches, folds %s", len(index), sorted(index["Fold"].unique()))
