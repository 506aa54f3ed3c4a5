"""Snakemake adapter: score one patch's attention against each reference mask."""

from pathlib import Path

from am4cm.attention.study import score_patch
from am4cm.io import atomic_path, write_csv
from am4cm.runlog import log_to_file

log = log_to_file(snakemake.log[0], "score_patch")
patch_id, split = int(snakemake.wildcards["patch"]), snakemake.wildcards["split"]
suite, samples = score_patch(
    snakemake.params["root"],
    patch_id,
    split,
    snakemake.input["attention"],
    {Path(path).parent.name: path for path in snakemake.input["references"]},
    seed=snakemake.params["seed"],
)
with atomic_path(snakemake.output["counts"]) as tmp:
    suite.save(tmp)
write_csv(samples, snakemake.output["samples"])
log.info("%s patch %d: %d (score, reference) pairs", split, patch_id, len(suite.accumulators))
