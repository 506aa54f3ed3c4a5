"""Read a PASTIS root folder exactly as released, and reject anything else early and clearly.

Layout (see README, "Data"): ``metadata.geojson`` (one feature per patch, EPSG:2154),
``NORM_S2_patch.json``, ``DATA_S2/S2_{ID}.npy`` int16 (T, 10, H, W),
``ANNOTATIONS/TARGET_{ID}.npy`` (3, H, W) with the class in channel 0 (uint8, or a 2-byte
integer type in 19 real files), ``ANNOTATIONS/ParcelIDs_{ID}.npy`` int32 (H, W). The
synthetic default adds ``CLOUDS/CLOUD_{ID}.npy`` (cloud truth), which real PASTIS lacks.

Every check reads only ``.npy`` headers and file sizes, so a whole dataset is validated in
seconds; S2 arrays are opened memory-mapped and never read whole.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd

from am4cm.data import facts

METADATA_FILE = "metadata.geojson"
NORM_FILE = "NORM_S2_patch.json"
REQUIRED_PROPERTIES = ("ID_PATCH", "Fold", "TILE", "dates-S2")
HEADER_READERS = {
    (1, 0): np.lib.format.read_array_header_1_0,
    (2, 0): np.lib.format.read_array_header_2_0,
}
LABEL_DTYPES = (np.uint8, np.int8, np.uint16, np.int16, np.int32, np.int64)


class PastisFormatError(ValueError):
    """A file of a PASTIS root is missing or does not match the released format."""

    def __init__(self, path: Path | str, problem: str) -> None:
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{path}: {problem}")


@dataclass(frozen=True)
class NpyHeader:
    """Shape and dtype of a ``.npy`` file, read from its header alone."""

    shape: tuple[int, ...]
    dtype: np.dtype
    data_offset: int


def s2_path(root: Path | str, patch_id: int) -> Path:
    """Path of a patch's Sentinel-2 time series."""
    return Path(root) / "DATA_S2" / f"S2_{patch_id}.npy"


def target_path(root: Path | str, patch_id: int) -> Path:
    """Path of a patch's semantic target (class in channel 0)."""
    return Path(root) / "ANNOTATIONS" / f"TARGET_{patch_id}.npy"


def parcels_path(root: Path | str, patch_id: int) -> Path:
    """Path of a patch's parcel id map."""
    return Path(root) / "ANNOTATIONS" / f"ParcelIDs_{patch_id}.npy"


def cloud_truth_path(root: Path | str, patch_id: int) -> Path:
    """Path of a patch's synthetic cloud truth (absent in real PASTIS)."""
    return Path(root) / facts.CLOUD_TRUTH_DIR / f"CLOUD_{patch_id}.npy"


def check_root(root: Path | str) -> Path:
    """Return ``root`` as a Path if it looks like a PASTIS root, else raise naming what is missing."""
    root = Path(root)
    if not root.is_dir():
        raise PastisFormatError(root, "is not a folder (expected a PASTIS root)")
    missing = [
        name for name in (METADATA_FILE, "DATA_S2", "ANNOTATIONS") if not (root / name).exists()
    ]
    if missing:
        raise PastisFormatError(
            root,
            f"is not a PASTIS root: missing {', '.join(missing)} "
            "(expected metadata.geojson, DATA_S2/ and ANNOTATIONS/)",
        )
    return root


def parse_dates(value: object, path: Path, patch_id: int) -> tuple[dt.date, ...]:
    """Parse a ``dates-S2`` property, given as a dict or as a JSON string, into ordered dates."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as error:
            raise PastisFormatError(path, f"patch {patch_id}: dates-S2 is not JSON") from error
    if not isinstance(value, dict) or not value:
        raise PastisFormatError(path, f"patch {patch_id}: dates-S2 must be a non-empty object")
    try:
        indexed = sorted((int(key), facts.parse_yyyymmdd(date)) for key, date in value.items())
    except (TypeError, ValueError) as error:
        raise PastisFormatError(path, f"patch {patch_id}: bad dates-S2 entry ({error})") from error
    if [index for index, _ in indexed] != list(range(len(indexed))):
        raise PastisFormatError(path, f"patch {patch_id}: dates-S2 keys are not 0..T-1")
    dates = tuple(date for _, date in indexed)
    if any(later <= earlier for earlier, later in itertools.pairwise(dates)):
        raise PastisFormatError(path, f"patch {patch_id}: dates-S2 are not strictly increasing")
    return dates


def read_metadata(root: Path | str) -> pd.DataFrame:
    """Read ``metadata.geojson`` into a table with one row per patch, sorted by ID_PATCH.

    Columns: ID_PATCH, Fold, TILE, N_Parcel, Parcel_Cover, T, dates (tuple of calendar
    dates) and days (tuple of day offsets from 2018-09-01).
    """
    path = check_root(root) / METADATA_FILE
    try:
        collection = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise PastisFormatError(path, f"cannot be read as GeoJSON ({error})") from error
    features = collection.get("features") if isinstance(collection, dict) else None
    if not features:
        raise PastisFormatError(path, "has no features (expected one per patch)")
    rows = []
    for number, feature in enumerate(features):
        properties = feature.get("properties") or {}
        missing = [key for key in REQUIRED_PROPERTIES if key not in properties]
        if missing:
            raise PastisFormatError(
                path, f"feature {number} lacks the properties {', '.join(missing)}"
            )
        patch_id = int(properties["ID_PATCH"])
        fold = int(properties["Fold"])
        if fold not in facts.FOLDS:
            raise PastisFormatError(path, f"patch {patch_id}: unknown fold {fold} (expected 1-5)")
        dates = parse_dates(properties["dates-S2"], path, patch_id)
        rows.append(
            {
                "ID_PATCH": patch_id,
                "Fold": fold,
                "TILE": str(properties["TILE"]).lower(),
                "N_Parcel": int(properties.get("N_Parcel", -1)),
                "Parcel_Cover": float(properties.get("Parcel_Cover", np.nan)),
                "T": len(dates),
                "dates": dates,
                "days": tuple(int(day) for day in facts.day_offsets(dates)),
            }
        )
    table = pd.DataFrame(rows).sort_values("ID_PATCH", ignore_index=True)
    duplicated = table["ID_PATCH"][table["ID_PATCH"].duplicated()].tolist()
    if duplicated:
        raise PastisFormatError(path, f"duplicate ID_PATCH values {duplicated[:5]}")
    return table


def read_footprints(root: Path | str) -> gpd.GeoDataFrame:
    """Patch footprints (ID_PATCH, Fold, TILE, geometry) in Lambert-93, from ``metadata.geojson``."""
    path = check_root(root) / METADATA_FILE
    try:
        frame = gpd.read_file(path, columns=["ID_PATCH", "Fold", "TILE"])
    except Exception as error:  # pyogrio raises its own error types for unreadable files
        raise PastisFormatError(path, f"cannot be read as GeoJSON ({error})") from error
    if frame.crs is None or frame.crs.to_epsg() != facts.EPSG:
        raise PastisFormatError(path, f"has CRS {frame.crs}, expected {facts.CRS}")
    return frame.sort_values("ID_PATCH", ignore_index=True)


def read_npy_header(path: Path) -> NpyHeader:
    """Read a ``.npy`` header and check that the file holds all the data it announces."""
    if not path.is_file():
        raise PastisFormatError(path, "is missing")
    try:
        with path.open("rb") as handle:
            version = np.lib.format.read_magic(handle)
            if version not in HEADER_READERS:
                raise ValueError(f"unsupported .npy format version {version}")
            shape, fortran_order, dtype = HEADER_READERS[version](handle)
            data_offset = handle.tell()
    except (OSError, ValueError) as error:
        raise PastisFormatError(path, f"is not a valid .npy file ({error})") from error
    if fortran_order:
        raise PastisFormatError(path, "is stored in Fortran order (expected C order)")
    expected = data_offset + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    actual = path.stat().st_size
    if actual < expected:
        raise PastisFormatError(
            path, f"is truncated: {actual} bytes, header announces {expected} for {shape}"
        )
    return NpyHeader(shape=tuple(shape), dtype=dtype, data_offset=data_offset)


def check_s2_header(path: Path, n_dates: int) -> NpyHeader:
    """Check an S2 array header: int16, (T, 10, H, W) with T equal to the patch's dates."""
    header = read_npy_header(path)
    if header.dtype != np.int16:
        raise PastisFormatError(path, f"has dtype {header.dtype}, expected int16")
    if len(header.shape) != 4:
        raise PastisFormatError(path, f"has shape {header.shape}, expected (T, 10, H, W)")
    n_time, n_bands, height, width = header.shape
    if n_bands != facts.N_BANDS:
        raise PastisFormatError(path, f"has {n_bands} bands, expected {facts.N_BANDS}")
    if n_time != n_dates:
        raise PastisFormatError(
            path, f"has T={n_time} dates but its dates-S2 in metadata.geojson lists {n_dates}"
        )
    if height != width or height == 0:
        raise PastisFormatError(path, f"has a non-square frame {height}x{width}")
    return header


def check_target_header(path: Path, size: int) -> NpyHeader:
    """Check a TARGET header: an integer (3, H, W) array (uint8 or a 2-byte type)."""
    header = read_npy_header(path)
    if header.dtype.type not in LABEL_DTYPES:
        raise PastisFormatError(path, f"has dtype {header.dtype}, expected an integer type")
    if len(header.shape) != 3 or header.shape[1:] != (size, size):
        raise PastisFormatError(path, f"has shape {header.shape}, expected (3, {size}, {size})")
    return header


def check_parcels_header(path: Path, size: int) -> NpyHeader:
    """Check a ParcelIDs header: an integer (H, W) array."""
    header = read_npy_header(path)
    if header.dtype.kind not in "iu" or header.shape != (size, size):
        raise PastisFormatError(
            path, f"has {header.dtype} {header.shape}, expected integers ({size}, {size})"
        )
    return header


def check_patch(root: Path | str, patch_id: int, n_dates: int) -> int:
    """Check the headers of all files of one patch; return the patch size (H = W)."""
    size = check_s2_header(s2_path(root, patch_id), n_dates).shape[-1]
    check_target_header(target_path(root, patch_id), size)
    check_parcels_header(parcels_path(root, patch_id), size)
    truth = cloud_truth_path(root, patch_id)
    if truth.exists():
        header = read_npy_header(truth)
        if header.shape != (n_dates, size, size) or header.dtype != np.uint8:
            raise PastisFormatError(
                truth,
                f"has {header.dtype} {header.shape}, expected uint8 ({n_dates}, {size}, {size})",
            )
    return size


def check_files_present(root: Path | str) -> pd.DataFrame:
    """Check that every patch of ``metadata.geojson`` has its S2, TARGET and ParcelIDs files.

    Only file existence is checked (a few thousand ``stat`` calls), so the workflow can run it
    when it is planned, and a copy that holds the metadata but not the arrays fails at once,
    naming the first missing file. Returns the metadata table.
    """
    metadata = read_metadata(root)
    for patch_id in metadata["ID_PATCH"]:
        for path in (
            s2_path(root, patch_id),
            target_path(root, patch_id),
            parcels_path(root, patch_id),
        ):
            if not path.is_file():
                raise PastisFormatError(
                    path, f"is missing (patch {patch_id} of {METADATA_FILE}); is the copy complete?"
                )
    return metadata


def open_s2(root: Path | str, patch_id: int, n_dates: int) -> np.memmap:
    """Open a patch's S2 series memory-mapped, read-only: int16 (T, 10, H, W)."""
    path = s2_path(root, patch_id)
    check_s2_header(path, n_dates)
    return np.load(path, mmap_mode="r")


def read_labels(root: Path | str, patch_id: int) -> np.ndarray:
    """Read the semantic classes (TARGET channel 0) as uint8 (H, W), whatever the file's integer type."""
    path = target_path(root, patch_id)
    header = read_npy_header(path)
    if len(header.shape) != 3 or header.dtype.type not in LABEL_DTYPES:
        raise PastisFormatError(path, f"has {header.dtype} {header.shape}, expected (3, H, W) ints")
    classes = np.load(path, mmap_mode="r")[0]
    low, high = int(classes.min()), int(classes.max())
    if low < 0 or high >= facts.N_CLASSES:
        raise PastisFormatError(
            path, f"holds labels {low}..{high}, outside 0..{facts.N_CLASSES - 1}"
        )
    return np.asarray(classes, dtype=np.uint8)


def read_parcels(root: Path | str, patch_id: int) -> np.ndarray:
    """Read the parcel id map as int32 (H, W); 0 means no parcel."""
    path = parcels_path(root, patch_id)
    header = read_npy_header(path)
    if header.dtype.kind not in "iu" or len(header.shape) != 2:
        raise PastisFormatError(path, f"has {header.dtype} {header.shape}, expected (H, W) ints")
    return np.load(path).astype(np.int32, copy=False)


def has_cloud_truth(root: Path | str) -> bool:
    """True for the synthetic default, which ships a cloud truth folder."""
    return (Path(root) / facts.CLOUD_TRUTH_DIR).is_dir()


def read_cloud_truth(root: Path | str, patch_id: int, n_dates: int) -> np.ndarray:
    """Read the synthetic cloud truth: uint8 (T, H, W), codes in ``facts.CLOUD_TRUTH_CODES``."""
    path = cloud_truth_path(root, patch_id)
    header = read_npy_header(path)
    if header.dtype != np.uint8 or len(header.shape) != 3 or header.shape[0] != n_dates:
        raise PastisFormatError(
            path, f"has {header.dtype} {header.shape}, expected uint8 ({n_dates}, H, W)"
        )
    return np.load(path)
