import json
import os
from pathlib import Path

from snakemake.utils import validate

from am4cm.attention.study import primary_reference
from am4cm.data.pastis import check_files_present
from am4cm.data.splits import spread_selection

validate(config, schema="../schemas/config.schema.yaml")

SYNTHETIC_ROOT = "results/synthetic/PASTIS"
RUNS = (
    [1, 2, 3, 4, 5]
    if config["runs"] == "all"
    else sorted(int(r) for r in config["runs"])
)
ENV = "../../envs/am4cm.yaml"


def pastis_root():
    """The PASTIS root: config key, then PASTIS_PATH, then the synthetic default."""
    return config["pastis_root"] or os.environ.get("PASTIS_PATH", "") or SYNTHETIC_ROOT


def is_synthetic():
    return pastis_root() == SYNTHETIC_ROOT


# A real PASTIS copy is checked once, when the run is planned, not again in every job.
if workflow.is_main_process and not is_synthetic():
    check_files_present(pastis_root())


def get_dataset():
    """Input of the indexing step: the generated folder, or the real metadata file."""
    if is_synthetic():
        return SYNTHETIC_ROOT
    return str(Path(pastis_root()) / "metadata.geojson")


def dataset_root(wildcards, input):
    """The PASTIS root, derived from the input of the indexing step."""
    return input[0] if is_synthetic() else str(Path(input[0]).parent)


REFERENCES = (["truth"] if is_synthetic() else []) + config["clouds"]["references"]
PRIMARY_REFERENCE = primary_reference(REFERENCES)


def get_attention_patches(wildcards, split):
    """Val or test patches of a run whose attention is studied (known once the split exists)."""
    path = checkpoints.split_folds.get(run=wildcards.run).output[0]
    patch_ids = json.loads(Path(path).read_text())[split]
    return spread_selection(patch_ids, config["attention"][f"{split}_patches"])


def get_score_files(wildcards, suffix=".npz"):
    """Per-patch score files of a run: its val patches, then its test patches."""
    return [
        f"results/attention/run{wildcards.run}/scores/{split}_{patch}{suffix}"
        for split in ("val", "test")
        for patch in get_attention_patches(wildcards, split)
    ]


def get_example_patch(wildcards):
    """The test patch drawn in the example attention figures: the first one studied."""
    return get_attention_patches(wildcards, "test")[0]


def get_example_attention(wildcards):
    return f"results/attention/run{wildcards.run}/patches/ATT_{get_example_patch(wildcards)}.npz"


def get_example_reference(wildcards):
    return (
        f"results/clouds/{PRIMARY_REFERENCE}/CLOUD_{get_example_patch(wildcards)}.npy"
    )


def get_final_output():
    """Every result of the study for the configured runs."""
    return (
        ["results/figures/dataset_patch.png", "results/attention/runs_summary.csv"]
        + expand(
            [
                "results/splits/run{run}.json",
                "results/models/run{run}/model.pt",
                "results/figures/run{run}/training_curves.png",
                "results/evaluation/run{run}/metrics.csv",
                "results/attention/run{run}/summary.md",
                "results/figures/run{run}/attention_dates.png",
            ],
            run=RUNS,
        )
        + (
            ["results/evaluation/five_fold_summary.csv"]
            if RUNS == [1, 2, 3, 4, 5]
            else []
        )
    )
