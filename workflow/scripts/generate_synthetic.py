"""Snakemake adapter: write the synthetic PASTIS default."""

from am4cm.data.synthetic import SyntheticConfig, generate_synthetic_pastis
from am4cm.runlog import log_to_file

log = log_to_file(snakemake.log[0], "generate_synthetic")
config = SyntheticConfig(
    seed=snakemake.params["seed"],
    patches_per_fold=snakemake.params["patches_per_fold"],
    patch_size=snakemake.params["patch_size"],
)
log.info("generating a synthetic PASTIS with %s into %s", config, snakemake.output[0])
patch_ids = generate_synthetic_pastis(snakemake.output[0], config)
log.info("wrote %d patches", len(patch_ids))
