"""`nbnumba compare`: how alike two detector images are (correlation, RMSE, sums, peak positions),
with optional JSON summary and PNG previews.

Images may be raw float32 (``.bin``, optionally ``.gz``; shape from ``--shape`` or, failing that,
a square), float TIFFs, SMV (``.img``) files or HDF5/NeXus files (``--frame``), in any
combination of the same shape.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import TextIO

import click
import numpy as np

from ..errors import UserError
from ..io.any_image import load_image
from ..io.atomic import check_distinct, together
from ..io.jsonreport import write_json_report
from ..io.png import colorize, write_png
from ..runtime.guard import guarded

# Percentile of both images that maps to white in the previews: Bragg spots are a tiny fraction
# of the pixels, so the maximum would leave everything else black.
PREVIEW_PERCENTILE = 99.5


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
    previews = [Path(png_dir) / f"{name}.png" for name in ("a", "b", "diff")] if png_dir is not None else []
    check_distinct([str(path) for path in [*previews, *([json_path] if json_path is not None else [])]],
                   [str(a_path), str(b_path)])
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
    with together():  # the previews and the report replace earlier files only when all are written
        if png_dir is not None:
            summary["previews"] = write_previews(a, b, png_dir, roi)
        if json_path is not None:
            write_json_report(json_path, _clean(summary))
    print(format_table(_clean(summary)), file=out)
    return 0 if passed else 1


@click.command("compare")
@click.argument("a", type=click.Path())
@click.argument("b", type=click.Path())
@click.option("--roi", nargs=4, type=int, default=None, metavar="XMIN XMAX YMIN YMAX",
              help="compare only this region (inclusive, x the fast index, as -roi)")
@click.option("--shape", nargs=2, type=int, default=None, metavar="SLOW FAST",
              help="size of raw float images (default: square)")
@click.option("--threshold", type=float, default=0.999, show_default=True, help="lowest correlation that passes")
@click.option("--peaks", type=int, default=20, show_default=True, help="local maxima to match in each image")
@click.option("--json", "json_path", type=click.Path(), default=None, help="write the comparison as JSON")
@click.option("--png-dir", type=click.Path(), default=None, help="write a.png, b.png and diff.png previews here")
@click.option("--frame", type=int, default=1, show_default=True,
              help="image of an HDF5/NeXus file (from 1: a sweep's frame, a batch's row)")
def compare(a, b, roi, shape, threshold, peaks, json_path, png_dir, frame) -> None:
    """Compare two images (float .bin/.bin.gz, TIFF, SMV or HDF5/NeXus); exit 1 when the correlation is below threshold."""
    def run_compare():
        sys.exit(main(a, b, roi=roi, shape=shape, threshold=threshold, peaks=peaks,
                              json_path=json_path, png_dir=png_dir, frame=frame))

    guarded(run_compare)
