"""Shared fixtures: small synthetic PASTIS folders in the real layout, written to tmp dirs."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from am4cm.data.synthetic import SyntheticConfig, generate_synthetic_pastis

REPO = Path(__file__).resolve().parents[1]
TINY = SyntheticConfig(seed=3, patches_per_fold=1, patch_size=32)


@pytest.fixture(scope="session")
def tiny_pastis(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A read-only-by-convention synthetic PASTIS: 5 patches of 32 x 32, one per fold."""
    root = tmp_path_factory.mktemp("tiny") / "PASTIS"
    generate_synthetic_pastis(root, TINY, progress=False)
    return root


@pytest.fixture
def pastis_copy(tiny_pastis: Path, tmp_path: Path) -> Path:
    """A private copy of the tiny dataset that a test may break."""
    return Path(shutil.copytree(tiny_pastis, tmp_path / "PASTIS"))
