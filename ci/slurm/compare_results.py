"""Compare the results/ trees of two runs of the workflow (e.g. local and SLURM).

    python ci/slurm/compare_results.py DIR_A DIR_B

Each DIR is a Snakemake working directory; its results/ folder is compared file by file:

* both runs must have produced the same set of files;
* data files (.csv .tsv .json .geojson .npy .npz .pt .md .txt) must be identical: bytes first, and
  when the bytes differ, the parsed content with timing fields left out (columns or keys
  such as ``seconds`` or ``train_pixels_per_second`` that measure the wall clock) and the
  working-directory path replaced by a placeholder;
* figures (.png .pdf .svg) and other files are only checked to exist (their metadata can
  carry dates).

Prints one line per data file and a summary; exits 1 on any difference.
"""

from __future__ import annotations

import io
import json
import re
import sys
from pathlib import Path
from typing import Any

import numpy as np

DATA = {".csv", ".tsv", ".json", ".geojson", ".npy", ".npz", ".pt", ".md", ".txt"}
# Names of fields that measure time, not results.
TIMING = re.compile(r"(^|_)(seconds?|elapsed|duration|walltime|timestamp)$", re.IGNORECASE)
# Snakemake's own marker files inside directory outputs.
IGNORED = {".snakemake_timestamp"}


def files(root: Path) -> set[str]:
    return {
        str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and p.name not in IGNORED
    }


def normalise_text(text: str, workdir: Path) -> str:
    return text.replace(str(workdir.resolve()), "<workdir>")


def drop_timing(value: Any) -> Any:
    """The value with every timing key of every nested dict left out."""
    if isinstance(value, dict):
        return {k: drop_timing(v) for k, v in value.items() if not TIMING.search(str(k))}
    if isinstance(value, list | tuple):
        return type(value)(drop_timing(v) for v in value)
    return value


def same_tree(a: Any, b: Any, where: str = "") -> str | None:
    """None when equal (tensors and arrays bit for bit), else where they first differ."""
    import torch

    if type(a) is not type(b):
        return f"{where}: {type(a).__name__} != {type(b).__name__}"
    if isinstance(a, torch.Tensor):
        if a.dtype != b.dtype or a.shape != b.shape or not torch.equal(a, b):
            return f"{where}: tensors differ"
        return None
    if isinstance(a, np.ndarray):
        return None if same_array(a, b) else f"{where}: arrays differ"
    if isinstance(a, dict):
        if a.keys() != b.keys():
            return f"{where}: keys {sorted(map(str, a.keys() ^ b.keys()))} in one only"
        for k in a:
            if (diff := same_tree(a[k], b[k], f"{where}/{k}")) is not None:
                return diff
        return None
    if isinstance(a, list | tuple):
        if len(a) != len(b):
            return f"{where}: lengths {len(a)} != {len(b)}"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            if (diff := same_tree(x, y, f"{where}[{i}]")) is not None:
                return diff
        return None
    if isinstance(a, float) and np.isnan(a) and np.isnan(b):
        return None
    return None if a == b else f"{where}: {a!r} != {b!r}"


def same_array(a: np.ndarray, b: np.ndarray) -> bool:
    if a.dtype != b.dtype or a.shape != b.shape:
        return False
    if a.dtype.kind in "fc":
        return bool(np.array_equal(a, b, equal_nan=True))
    return bool(np.array_equal(a, b))


def compare_file(path: Path, other: Path, root_a: Path, root_b: Path) -> tuple[bool, str]:
    """(identical, how): how they were found equal, or what differs."""
    raw_a, raw_b = path.read_bytes(), other.read_bytes()
    if raw_a == raw_b:
        return True, "bytes"
    suffix = path.suffix.lower()
    if suffix in {".csv", ".tsv"}:
        import pandas as pd

        sep = "\t" if suffix == ".tsv" else ","
        frames = [
            pd.read_csv(io.StringIO(normalise_text(raw.decode(), root)), sep=sep, dtype=str)
            for raw, root in ((raw_a, root_a), (raw_b, root_b))
        ]
        timing = [c for c in frames[0].columns if TIMING.search(str(c))]
        fa, fb = (f.drop(columns=[c for c in timing if c in f.columns]) for f in frames)
        if list(fa.columns) != list(fb.columns):
            return False, f"columns differ: {list(fa.columns)} != {list(fb.columns)}"
        if fa.shape != fb.shape:
            return False, f"shapes differ: {fa.shape} != {fb.shape}"
        if not fa.equals(fb):
            bad = [c for c in fa.columns if not fa[c].equals(fb[c])]
            return False, f"values differ in columns {bad}"
        return True, f"content, timing columns {timing} left out" if timing else "content"
    if suffix in {".json", ".geojson"}:
        da, db = (
            drop_timing(json.loads(normalise_text(raw.decode(), root)))
            for raw, root in ((raw_a, root_a), (raw_b, root_b))
        )
        diff = same_tree(da, db)
        return (True, "content, timing keys left out") if diff is None else (False, diff)
    if suffix in {".npy", ".npz"}:
        la = np.load(io.BytesIO(raw_a), allow_pickle=False)
        lb = np.load(io.BytesIO(raw_b), allow_pickle=False)
        if suffix == ".npy":
            return (True, "array") if same_array(la, lb) else (False, "arrays differ")
        if sorted(la.files) != sorted(lb.files):
            return False, "array names differ"
        bad = [k for k in la.files if not same_array(la[k], lb[k])]
        return (False, f"arrays {bad} differ") if bad else (True, "arrays")
    if suffix in {".md", ".txt"}:
        ta, tb = normalise_text(raw_a.decode(), root_a), normalise_text(raw_b.decode(), root_b)
        return (True, "text") if ta == tb else (False, "text differs")
    if suffix == ".pt":
        import torch

        ta = torch.load(io.BytesIO(raw_a), map_location="cpu", weights_only=False)
        tb = torch.load(io.BytesIO(raw_b), map_location="cpu", weights_only=False)
        diff = same_tree(drop_timing(ta), drop_timing(tb))
        return (
            (True, "tensors bit for bit, timing keys left out") if diff is None else (False, diff)
        )
    return False, "bytes differ"


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    dir_a, dir_b = (Path(d) for d in argv)
    res_a, res_b = dir_a / "results", dir_b / "results"
    for res in (res_a, res_b):
        if not res.is_dir():
            print(f"FAIL: no results folder at {res}")
            return 1
    files_a, files_b = files(res_a), files(res_b)
    failures = []
    for name in sorted(files_a ^ files_b):
        where = dir_a if name in files_a else dir_b
        failures.append(f"{name}: only in {where}")
    n_data = n_other = n_same = 0
    for name in sorted(files_a & files_b):
        if Path(name).suffix.lower() not in DATA:
            n_other += 1
            continue
        n_data += 1
        same, how = compare_file(res_a / name, res_b / name, dir_a, dir_b)
        # The many identical arrays of the synthetic dataset would drown the interesting lines.
        if not same or not name.startswith(("synthetic/", "cache/")) or how != "bytes":
            print(f"  {'same' if same else 'DIFF'}  {name}  ({how})")
        n_same += same
        if not same:
            failures.append(f"{name}: {how}")
    print(
        f"{n_same} of {n_data} data files under results/ identical; "
        f"{n_other} figures/other files checked to exist in both"
    )
    if failures:
        print("FAIL: the two runs differ:")
        for f in failures:
            print(f"  {f}")
        return 1
    if n_data == 0:
        print("FAIL: no data files to compare")
        return 1
    print("PASS: identical results")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
