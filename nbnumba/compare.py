"""`nbnumba compare`: how alike two detector images are (correlation, RMSE, sums, peak positions),
with optional JSON summary and PNG previews.

Images may be raw float32 (``.bin``, optionally ``.gz``; shape from ``--shape`` or, failing that,
a square), float TIFFs, SMV (``.img``) files or HDF5/NeXus files (``--frame``), in any
combination of the same shape.
"""

from __future__ import annotations

import gzip
import math
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import numpy as np

from .errors import UserError
from .io.images import read_float_image
from .io.jsonreport import write_json_report
from .io.smv import read_smv
from .png import colorize, write_png

# Percentile of both images that maps to white in the previews: Bragg spots are a tiny fraction
# of the pixels, so the maximum would leave everything else black.
PREVIEW_PERCENTILE = 99.5


@dataclass
class Loaded:
    image: np.ndarray  # float64, (slow, fast)
    kind: str


def _raw_bytes(path: Path) -> bytes:
    opener = gzip.open if path.suffix.lower() == ".gz" else open
    try:
        with opener(path, "rb") as f:
            return f.read()
    except (OSError, EOFError, zlib.error) as e:
        raise UserError(f"cannot read {path}: {getattr(e, 'strerror', None) or e}") from None


def _looks_like_smv(path: Path) -> bool:
    if path.suffix.lower() in (".img", ".smv"):
        return True
    if path.suffix.lower() in (".gz", ".tif", ".tiff"):
        return False
    try:
        with open(path, "rb") as f:
            head = f.read(512)
    except OSError as e:
        raise UserError(f"cannot read {path}: {e.strerror or e}") from None
    return head.startswith(b"{") and b"HEADER_BYTES=" in head


def _is_hdf5(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(8) == b"\x89HDF\r\n\x1a\n"
    except OSError:
        return False


def load_image(path, shape: tuple[int, int] | None = None, frame: int = 1) -> Loaded:
    """An image as float64 (slow, fast); ``shape`` is (slow, fast) and is needed only for raw
    files that are not square; ``frame`` (from 1) picks one image of an HDF5/NeXus file."""
    path = Path(path)
    if shape is not None and (len(shape) != 2 or min(shape) <= 0):
        raise UserError(f"--shape needs two positive sizes (slow fast), got {' '.join(map(str, shape))}")
    if _is_hdf5(path):
        from .io.nexus import read_frame
        if frame < 1:
            raise UserError(f"--frame counts from 1, got {frame}")
        return Loaded(read_frame(str(path), frame - 1).astype(np.float64), "hdf5")
    if _looks_like_smv(path):
        smv = read_smv(path)
        if shape is not None and tuple(shape) != smv.data.shape:
            raise UserError(f"{path}: SMV image is {smv.height}x{smv.width} (slow x fast), --shape says "
                            f"{shape[0]}x{shape[1]}")
        return Loaded(smv.data.astype(np.float64), "smv")
    if path.suffix.lower() in (".tif", ".tiff"):
        if shape is None:
            import tifffile

            try:
                image = tifffile.imread(path)
            except Exception as e:  # noqa: BLE001 - tifffile raises many types for a bad file
                raise UserError(f"cannot read {path}: {getattr(e, 'strerror', None) or e}") from None
            if image.ndim != 2:
                raise UserError(f"{path}: no 2-D image in it")
            return Loaded(image.astype(np.float64), "tiff")
        return Loaded(read_float_image(path, tuple(shape)).astype(np.float64), "tiff")
    if shape is None:
        data = _raw_bytes(path)
        side = math.isqrt(len(data) // 4)
        if len(data) == 0 or len(data) % 4 or side * side * 4 != len(data):
            raise UserError(f"{path}: {len(data)} bytes is not a square float32 image; give --shape SLOW FAST")
        return Loaded(np.frombuffer(data, dtype="<f4").reshape(side, side).astype(np.float64), "raw")
    return Loaded(read_float_image(path, tuple(shape)).astype(np.float64), "raw")


def check_roi(roi, shape: tuple[int, int]) -> tuple[int, int, int, int]:
    """Validate (xmin, xmax, ymin, ymax), inclusive, x the fast index, as nanoBragg's -roi."""
    xmin, xmax, ymin, ymax = (int(v) for v in roi)
    slow, fast = shape
    if not (0 <= xmin <= xmax < fast and 0 <= ymin <= ymax < slow):
        raise UserError(f"--roi {xmin} {xmax} {ymin} {ymax} is not inside the {fast}x{slow} image "
                        f"(XMIN XMAX YMIN YMAX, inclusive, 0-based; x is the fast index)")
    return xmin, xmax, ymin, ymax


def local_maxima(image: np.ndarray, count: int) -> np.ndarray:
    """(slow, fast) of the ``count`` brightest 3x3 local maxima, brightest first.

    A pixel qualifies when no neighbour is brighter and at least one is dimmer, so a flat
    background does not count as a peak.  The border repeats the edge pixels: -inf there would
    make every pixel of a flat edge a peak."""
    if count <= 0:
        return np.zeros((0, 2), dtype=np.int64)
    data = np.where(np.isfinite(image), image, -np.inf)
    padded = np.pad(data, 1, mode="edge")
    h, w = data.shape
    neighbours = [padded[1 + ds:1 + ds + h, 1 + df:1 + df + w]
                  for ds in (-1, 0, 1) for df in (-1, 0, 1) if ds or df]
    upper = np.maximum.reduce(neighbours)
    lower = np.minimum.reduce(neighbours)
    peak = np.isfinite(data) & (data >= upper) & (data > lower)
    slow, fast = np.nonzero(peak)
    # Stable sort: equal heights keep raster order, so the choice is reproducible.
    order = np.argsort(-data[slow, fast], kind="stable")[:count]
    return np.stack([slow[order], fast[order]], axis=1).astype(np.int64)


def match_peaks(a: np.ndarray, b: np.ndarray) -> list[tuple[int, int, float]]:
    """One-to-one pairs (index in a, index in b, distance), closest pairs first."""
    if len(a) == 0 or len(b) == 0:
        return []
    dist = np.hypot(*(a[:, None, :] - b[None, :, :]).transpose(2, 0, 1).astype(np.float64))
    pairs = []
    used_a, used_b = set(), set()
    for flat in np.argsort(dist, axis=None, kind="stable"):
        i, j = divmod(int(flat), len(b))
        if i in used_a or j in used_b:
            continue
        used_a.add(i)
        used_b.add(j)
        pairs.append((i, j, float(dist[i, j])))
        if len(pairs) == min(len(a), len(b)):
            break
    return pairs


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation; 1 for identical images (even flat ones), NaN when one is flat."""
    if np.array_equal(a, b):
        return 1.0
    da, db = a - a.mean(), b - b.mean()
    norm = math.sqrt(float(np.dot(da.ravel(), da.ravel())) * float(np.dot(db.ravel(), db.ravel())))
    if norm == 0.0:
        return math.nan
    return max(-1.0, min(1.0, float(np.dot(da.ravel(), db.ravel())) / norm))


def _number(x):
    return None if x is None or not math.isfinite(x) else x


def compare_images(a: np.ndarray, b: np.ndarray, roi=None, peaks: int = 20) -> dict:
    """The metrics of B against A, over the ROI (xmin, xmax, ymin, ymax) when one is given."""
    if a.shape != b.shape:
        raise UserError(f"images differ in shape: {a.shape[1]}x{a.shape[0]} vs {b.shape[1]}x{b.shape[0]} (fast x slow)")
    if roi is not None:
        xmin, xmax, ymin, ymax = check_roi(roi, a.shape)
        a, b = a[ymin:ymax + 1, xmin:xmax + 1], b[ymin:ymax + 1, xmin:xmax + 1]
        origin = np.array([ymin, xmin])
    else:
        origin = np.array([0, 0])
    finite = np.isfinite(a) & np.isfinite(b)
    fa, fb = a[finite], b[finite]
    diff = fb - fa
    sum_a, sum_b = float(fa.sum()), float(fb.sum())
    peaks_a, peaks_b = local_maxima(a, peaks), local_maxima(b, peaks)
    pairs = match_peaks(peaks_a, peaks_b)
    distances = [d for _, _, d in pairs]
    return {
        "pixels": int(a.size),
        "nonfinite_a": int((~np.isfinite(a)).sum()),
        "nonfinite_b": int((~np.isfinite(b)).sum()),
        "correlation": correlation(fa, fb) if fa.size else math.nan,
        "rmse": math.sqrt(float(np.mean(diff * diff))) if diff.size else math.nan,
        "max_abs_diff": float(np.abs(diff).max()) if diff.size else math.nan,
        "sum_a": sum_a,
        "sum_b": sum_b,
        "ratio": sum_b / sum_a if sum_a != 0 else math.nan,
        "peaks": {
            "requested": peaks,
            "found_a": len(peaks_a),
            "found_b": len(peaks_b),
            "matched": len(pairs),
            "mean_distance": float(np.mean(distances)) if distances else math.nan,
            "max_distance": max(distances) if distances else math.nan,
            # Over A's peaks, so a peak missing from B counts against the match.
            "within_1px": (sum(d <= 1.0 + 1e-9 for d in distances) / len(peaks_a)) if len(peaks_a) else math.nan,
            "pairs": [{"a": (peaks_a[i] + origin).tolist(), "b": (peaks_b[j] + origin).tolist(), "distance": d}
                      for i, j, d in pairs],
        },
    }


def write_previews(a: np.ndarray, b: np.ndarray, directory, roi=None) -> dict:
    """a.png and b.png on one grey scale, diff.png (B - A) blue-white-red; returns the scales."""
    if roi is not None:
        xmin, xmax, ymin, ymax = roi
        a, b = a[ymin:ymax + 1, xmin:xmax + 1], b[ymin:ymax + 1, xmin:xmax + 1]
    directory = Path(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"cannot create {directory}: {e.strerror or e}") from None
    both = np.concatenate([a[np.isfinite(a)], b[np.isfinite(b)]])
    vmin = float(both.min()) if both.size else 0.0
    vmax = float(np.percentile(both, PREVIEW_PERCENTILE)) if both.size else 1.0
    if vmax <= vmin and both.size:
        vmax = float(both.max())
    diff = b - a
    finite = np.abs(diff[np.isfinite(diff)])
    limit = float(np.percentile(finite, PREVIEW_PERCENTILE)) if finite.size else 0.0
    if limit <= 0.0 and finite.size:
        limit = float(finite.max())
    paths = {name: directory / f"{name}.png" for name in ("a", "b", "diff")}
    images = {"a": colorize(a, "grey", vmin, vmax), "b": colorize(b, "grey", vmin, vmax),
              "diff": colorize(diff, "diverging", vmax=limit)}
    for name, path in paths.items():
        try:
            write_png(path, images[name])
        except UserError as e:  # a failed write is bad input here: exit 1 means "not alike"
            raise UserError(str(e)) from None
    return {"files": {k: str(v) for k, v in paths.items()}, "grey_range": [vmin, vmax], "diff_limit": limit}


def _fmt(x) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "n/a"
    return f"{x:.9g}"


def format_table(summary: dict) -> str:
    m = summary["metrics"]
    p = m["peaks"]
    roi = summary["roi"]
    region = "full image" if roi is None else "roi x {}..{} y {}..{}".format(*roi)
    verdict = "PASS" if summary["pass"] else "FAIL"
    rows = [
        ("A", f"{summary['a']} ({summary['shape'][1]}x{summary['shape'][0]}, {region})"),
        ("B", summary["b"]),
        ("correlation", f"{_fmt(m['correlation'])}  (threshold {summary['threshold']}) {verdict}"),
        ("rmse", _fmt(m["rmse"])),
        ("max |diff|", _fmt(m["max_abs_diff"])),
        ("sum A", _fmt(m["sum_a"])),
        ("sum B", _fmt(m["sum_b"])),
        ("ratio B/A", _fmt(m["ratio"])),
        ("peaks", f"{p['found_a']} in A, {p['found_b']} in B, {p['matched']} matched: mean "
                  f"{_fmt(p['mean_distance'])} px, max {_fmt(p['max_distance'])} px, "
                  f"{_fmt(None if p['within_1px'] is None else 100 * p['within_1px'])}% within 1 px"),
    ]
    if m["nonfinite_a"] or m["nonfinite_b"]:
        rows.append(("non-finite", f"{m['nonfinite_a']} in A, {m['nonfinite_b']} in B (left out)"))
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)


def _clean(obj):
    """NaN and infinities become null: JSON has no spelling for them."""
    if isinstance(obj, float):
        return _number(obj)
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    return obj


def main(a_path, b_path, roi=None, shape=None, threshold: float = 0.999, peaks: int = 20,
         json_path=None, png_dir=None, out: TextIO | None = None, frame: int = 1) -> int:
    """Print the comparison; 0 when the correlation reaches ``threshold``, 1 otherwise."""
    out = out if out is not None else sys.stdout
    if not math.isfinite(threshold):
        raise UserError(f"--threshold must be a number, got {threshold}")
    if peaks < 0:
        raise UserError(f"--peaks must be 0 or more, got {peaks}")
    shape = tuple(shape) if shape else None
    a = load_image(a_path, shape, frame).image
    b = load_image(b_path, shape, frame).image
    if roi:
        roi = check_roi(roi, a.shape)
    else:
        roi = None
    metrics = compare_images(a, b, roi, peaks)
    passed = bool(math.isfinite(metrics["correlation"]) and metrics["correlation"] >= threshold)
    summary = {"a": str(a_path), "b": str(b_path), "shape": list(a.shape),
               "roi": list(roi) if roi else None, "threshold": threshold, "pass": passed, "metrics": metrics}
    if png_dir is not None:
        summary["previews"] = write_previews(a, b, png_dir, roi)
    print(format_table(_clean(summary)), file=out)
    if json_path is not None:
        write_json_report(json_path, _clean(summary))
    return 0 if passed else 1
