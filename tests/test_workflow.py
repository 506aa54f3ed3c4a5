"""The Snakemake workflow itself: planning, config validation and real runs of its rules."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from conftest import REPO, TINY

SNAKEMAKE = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile")]


def write_config(workdir: Path, **overrides: object) -> Path:
    """A small workflow config in ``workdir``: the tiny synthetic dataset unless overridden."""
    config = {
        "synthetic": {
            "seed": TINY.seed,
            "patches_per_fold": TINY.patches_per_fold,
            "patch_size": TINY.patch_size,
        },
        "runs": [1],
        **overrides,
    }
    path = workdir / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def snakemake(workdir: Path, *args: str, env: dict[str, str] | None = None):
    config = workdir / "config.yaml"
    return subprocess.run(
        [*SNAKEMAKE, "--directory", str(workdir), "--configfile", str(config), *args],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )


def test_dry_run_plans_the_default_chain(tmp_path: Path) -> None:
    write_config(tmp_path)
    result = snakemake(tmp_path, "-n", "--cores", "1")
    assert result.returncode == 0, result.stdout + result.stderr
    for rule in ("generate_synthetic", "index_dataset", "split_folds"):
        assert rule in result.stdout


def test_bad_config_value_is_rejected_naming_the_key(tmp_path: Path) -> None:
    write_config(tmp_path, runs=[7])
    result = snakemake(tmp_path, "-n", "--cores", "1")
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "instance['runs']" in output and "[7]" in output


def test_pastis_path_environment_variable_selects_a_real_root(
    tmp_path: Path, tiny_pastis: Path
) -> None:
    write_config(tmp_path)
    env = {**os.environ, "PASTIS_PATH": str(tiny_pastis)}
    result = snakemake(tmp_path, "-n", "--cores", "1", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "generate_synthetic" not in result.stdout
    assert "index_dataset" in result.stdout


@pytest.mark.slow
def test_first_rules_run_on_the_synthetic_default(tmp_path: Path) -> None:
    write_config(tmp_path)
    result = snakemake(tmp_path, "--cores", "2", "results/splits/run1.json")
    assert result.returncode == 0, result.stdout + result.stderr
    index = pd.read_csv(tmp_path / "results/index/patches.csv")
    assert len(index) == 5 and sorted(index["Fold"]) == [1, 2, 3, 4, 5]
    split = json.loads((tmp_path / "results/splits/run1.json").read_text())
    assert split["train_folds"] == [1, 2, 3]
    assert set(split["test"]) == set(index.loc[index["Fold"] == 5, "ID_PATCH"])
    for log in ("generate_synthetic.log", "index_dataset.log", "split_folds/run1.log"):
        assert (tmp_path / "logs" / log).stat().st_size > 0
    rerun = snakemake(tmp_path, "-n", "--cores", "1", "results/splits/run1.json")
    assert "Nothing to be done" in rerun.stdout + rerun.stderr


@pytest.mark.slow
def test_a_broken_real_root_fails_at_indexing_naming_the_file(
    tmp_path: Path, pastis_copy: Path
) -> None:
    features = json.loads((pastis_copy / "metadata.geojson").read_text())["features"]
    patch_id = features[0]["properties"]["ID_PATCH"]
    path = pastis_copy / "DATA_S2" / f"S2_{patch_id}.npy"
    os.truncate(path, path.stat().st_size // 2)
    write_config(tmp_path, pastis_root=str(pastis_copy))
    result = snakemake(tmp_path, "--cores", "1", "results/index/patches.csv")
    assert result.returncode != 0
    log = (tmp_path / "logs/index_dataset.log").read_text()
    assert f"S2_{patch_id}.npy: is truncated" in log
    assert not (tmp_path / "results/index/patches.csv").exists()


def test_a_metadata_only_copy_fails_when_planned(tmp_path: Path, tiny_pastis: Path) -> None:
    """A dry run against a PASTIS folder without S2 arrays fails early, naming the first one."""
    copy = tmp_path / "PASTIS"
    (copy / "ANNOTATIONS").mkdir(parents=True)
    (copy / "DATA_S2").mkdir()
    shutil.copy(tiny_pastis / "metadata.geojson", copy)
    for path in (tiny_pastis / "ANNOTATIONS").iterdir():
        shutil.copy(path, copy / "ANNOTATIONS")
    first = min(
        json.loads((copy / "metadata.geojson").read_text())["features"],
        key=lambda f: f["properties"]["ID_PATCH"],
    )
    work = tmp_path / "work"
    work.mkdir()
    write_config(work, pastis_root=str(copy))
    result = snakemake(work, "-n", "--cores", "1")
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert f"DATA_S2/S2_{first['properties']['ID_PATCH']}.npy: is missing" in output
    assert not (work / "results").exists()


def wait_for(path: Path, text: str, process: subprocess.Popen, timeout: float = 120) -> None:
    """Wait until ``path`` contains ``text`` (or fail if the process ends or time runs out)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and text in path.read_text():
            return
        assert process.poll() is None, f"snakemake ended before {path} said {text!r}"
        time.sleep(0.2)
    raise AssertionError(f"{path} never said {text!r}")


@pytest.mark.slow
def test_a_killed_run_resumes_without_redoing_finished_steps(tmp_path: Path) -> None:
    """Kill the whole workflow (SIGKILL) mid-training; after ``--unlock`` the rerun resumes
    training from its last epoch and redoes nothing that had finished; a changed learning
    rate then reruns training and nothing upstream of it."""
    long_training = {"epochs": 60, "patience": 60, "batch_size": 64}
    small_model = {"n_head": 2, "d_k": 2, "d_model": 8, "mlp": [8, 8], "decoder": [8]}
    write_config(tmp_path, training=long_training, model=small_model)
    target = "results/models/run1/model.pt"
    config = tmp_path / "config.yaml"
    process = subprocess.Popen(
        [
            *SNAKEMAKE,
            "--directory",
            str(tmp_path),
            "--configfile",
            str(config),
            "--cores",
            "1",
            target,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_for(tmp_path / "logs/train_model/run1.log", "epoch 3:", process)
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    index = tmp_path / "results/index/patches.csv"
    index_written = index.stat().st_mtime_ns
    assert not (tmp_path / target).exists()

    assert snakemake(tmp_path, "--unlock").returncode == 0  # a SIGKILL leaves Snakemake's lock
    result = snakemake(tmp_path, "--cores", "1", target)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "rule index_dataset" not in result.stdout + result.stderr
    assert index.stat().st_mtime_ns == index_written
    assert "resuming after epoch" in (tmp_path / "logs/train_model/run1.log").read_text()
    history = pd.read_csv(tmp_path / "results/models/run1/history.csv")
    assert list(history["epoch"]) == list(range(1, len(history) + 1))

    write_config(tmp_path, training={**long_training, "learning_rate": 0.01}, model=small_model)
    plan = snakemake(tmp_path, "-n", "--cores", "1", target)
    planned = plan.stdout + plan.stderr
    assert "rule train_model" in planned
    for untouched in ("sample_pixels", "split_folds", "index_dataset", "generate_synthetic"):
        assert f"rule {untouched}" not in planned


@pytest.mark.slow
def test_the_whole_study_runs_for_five_runs_and_reports(tmp_path: Path) -> None:
    """Every rule of the study on a tiny dataset, all five runs, then the HTML report."""
    write_config(
        tmp_path,
        runs="all",
        sampling={"pixels_per_patch": 200},
        model={"n_head": 2, "d_k": 2, "d_model": 8, "mlp": [8, 8], "decoder": [8]},
        training={"epochs": 2, "batch_size": 128},
        evaluation={"sample_maps": 1},
        attention={"val_patches": 1, "bootstrap": 10},
        clouds={"references": ["spectral", "multitemporal"]},
    )
    result = snakemake(tmp_path, "--cores", "2")
    assert result.returncode == 0, result.stdout + result.stderr
    results = tmp_path / "results"
    summary = pd.read_csv(results / "evaluation/five_fold_summary.csv")
    assert list(summary["run"].astype(str)) == ["1", "2", "3", "4", "5", "pooled"]
    for run in range(1, 6):
        answer = (results / f"attention/run{run}/summary.md").read_text()
        assert "AUC" in answer and "truth" in answer
        table = pd.read_csv(results / f"attention/run{run}/cloud_scores.csv")
        assert {"truth", "spectral", "multitemporal"} <= set(table["reference"])
        for figure in ("attention_dates", "attention_roc_pr", "confusion_matrix"):
            assert (results / f"figures/run{run}/{figure}.png").stat().st_size > 10_000
    across = pd.read_csv(results / "attention/runs_summary.csv")
    assert list(dict.fromkeys(across["run"].astype(str))) == [
        "1",
        "2",
        "3",
        "4",
        "5",
        "mean",
        "std",
    ]
    report = snakemake(tmp_path, "--report", str(tmp_path / "report.html"))
    assert report.returncode == 0, report.stdout + report.stderr
    html = (tmp_path / "report.html").read_text()
    assert html.count("data:image/png") >= 5 * 9
