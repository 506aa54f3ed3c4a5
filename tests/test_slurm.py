"""The SLURM profile (profiles/slurm): planning with it, and a real run through SLURM.

The dry run needs only the executor plugin (the `slurm` extra); the real run needs a SLURM
cluster as well and runs only when ``AM4CM_SLURM`` is set, e.g. on the test cluster of
ci/slurm:  ci/slurm/install.sh && ci/slurm/start.sh && AM4CM_SLURM=1 pytest tests/test_slurm.py
The whole workflow through SLURM, compared with a local run, is ci/slurm/check_workflow.sh.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PROFILE = REPO / "profiles" / "slurm"
TINY_CONFIG = REPO / "ci" / "slurm" / "config.yaml"
SNAKEMAKE = [
    sys.executable,
    "-m",
    "snakemake",
    "--snakefile",
    str(REPO / "Snakefile"),
    "--configfile",
    str(TINY_CONFIG),
    "--profile",
    str(PROFILE),
]

needs_plugin = pytest.mark.skipif(
    importlib.util.find_spec("snakemake_executor_plugin_slurm") is None,
    reason="snakemake-executor-plugin-slurm is not installed (pip install -e '.[slurm]')",
)
needs_cluster = pytest.mark.skipif(
    not os.environ.get("AM4CM_SLURM"),
    reason="no SLURM cluster: set AM4CM_SLURM=1 with one up (ci/slurm/start.sh)",
)


def run(workdir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "PASTIS_PATH"}
    return subprocess.run(
        [*SNAKEMAKE, "--directory", str(workdir), *args],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=600,
    )


def job_resources(output: str, rule: str) -> str:
    """The `resources:` line of the first job of ``rule`` in Snakemake's job listing."""
    match = re.search(rf"^(?:local)?rule {rule}:\n(?:    .*\n)*?    resources: (.*)$", output, re.M)
    assert match, f"no job of rule {rule} in:\n{output}"
    return match.group(1)


@needs_plugin
def test_profile_plans_gpu_rules_on_the_gpu_partition(tmp_path: Path) -> None:
    result = run(tmp_path, "-n")
    assert result.returncode == 0, result.stdout + result.stderr
    for rule in ("train_model", "evaluate_test"):
        resources = job_resources(result.stdout, rule)
        assert "slurm_partition=gpu" in resources and "gpu=1" in resources, resources
    resources = job_resources(result.stdout, "generate_synthetic")
    assert "slurm_partition=cpu" in resources and "gpu=" not in resources, resources
    assert "runtime=30" in resources and "mem_mb=1000" in resources, resources


@needs_plugin
@needs_cluster
@pytest.mark.slow
def test_first_rules_run_as_slurm_jobs(tmp_path: Path) -> None:
    result = run(
        tmp_path,
        "results/splits/run1.json",
        "--max-threads",
        "2",
        "--retries",
        "0",
        "--slurm-init-seconds-before-status-checks",
        "1",
        "--slurm-keep-successful-logs",
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert (tmp_path / "results" / "splits" / "run1.json").is_file()
    submitted = re.findall(r"has been submitted with SLURM jobid (\d+)", output)
    assert len(submitted) == 3, output
    logs = tmp_path / ".snakemake" / "slurm_logs"
    for rule in ("generate_synthetic", "index_dataset", "split_folds"):
        assert list((logs / f"rule_{rule}").rglob("*.log")), f"no sbatch log of {rule}"
    assert not re.search(r"^local(rule|checkpoint) (?!all:)", output, re.M), output
