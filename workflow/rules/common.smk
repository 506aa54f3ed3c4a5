import os
from pathlib import Path

from snakemake.utils import validate

validate(config, schema="../schemas/config.schema.yaml")

SYNTHETIC_ROOT = "results/synthetic/PASTIS"
RUNS = [1, 2, 3, 4, 5] if config["runs"] == "all" else sorted(int(r) for r in config["runs"])
ENV = "../../envs/am4cm.yaml"


def pastis_root():
    """The PASTIS root: config key, then PASTIS_PATH, then the synthetic default."""
    return config["pastis_root"] or os.environ.get("PASTIS_PATH", "") or SYNTHETIC_ROOT


def is_synthetic():
    return pastis_root() == SYNTHETIC_ROOT


def get_dataset():
    """Input of the indexing step: the generated folder, or the real metadata file."""
    if is_synthetic():
        return SYNTHETIC_ROOT
    return str(Path(pastis_root()) / "metadata.geojson")


def dataset_root(wildcards, input):
    """The PASTIS root, derived from the input of the indexing step."""
    return input[0] if is_synthetic() else str(Path(input[0]).parent)


def get_final_output():
    """Every result of the study for the configured runs."""
    return expand(
        [
            "results/splits/run{run}.json",
            "results/models/run{run}/model.pt",
            "results/figures/run{run}/training_curves.png",
            "results/evaluation/run{run}/metrics.csv",
        ],
        run=RUNS,
    ) + (
        ["results/evaluation/five_fold_summary.csv"]
        if RUNS == [1, 2, 3, 4, 5]
        else []
    )
