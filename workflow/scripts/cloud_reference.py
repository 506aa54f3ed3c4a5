"""Snakemake adapter: one reference cloud mask of one patch."""

from am4cm.clouds.masks import write_reference_mask
from am4cm.runlog import log_to_file

log = log_to_file(snakemake.log[0], "cloud_reference")
reference, patch_id = snakemake.wildcards["reference"], int(snakemake.wildcards["patch"])
write_reference_mask(snakemake.params["root"], patch_id, reference, snakemake.output[0])
log.info("patch %d: %s mask written", patch_id, reference)
