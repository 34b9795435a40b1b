#!/usr/bin/env python3
"""Render the README's quick-start example through the Python API and save a preview.

    python benchmarks/gallery.py                     # writes reports/gallery.png
    python benchmarks/gallery.py --device cuda --out /tmp/gallery.png

The picture is log-scaled grey: Bragg spots are thousands of times brighter than the diffuse
background, so a linear scale shows only the strongest few.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from nbnumba import api  # noqa: E402 - after the path set-up, so a plain checkout works too
from nbnumba.io.png import colorize, write_png  # noqa: E402

# The README's "Quick start" command, output flags left out.
README_FLAGS = ["-hkl", str(ROOT / "data" / "example.hkl"), "-mat", str(ROOT / "data" / "example.mat"),
                "-lambda", "1.0", "-N", "10", "-distance", "120", "-detpixels", "512", "-pixel", "0.2",
                "-phi", "0", "-osc", "1", "-phisteps", "5", "-mosaic", "0.2", "-mosaic_dom", "5", "-seed", "1"]


def log_preview(image: np.ndarray) -> np.ndarray:
    """RGB pixels of log(1 + I/s), white at the 99.7th percentile.

    s, the 95th percentile of the lit pixels, is high enough that the lattice transform's side
    fringes stay dim, so the spots read as spots rather than as a grid."""
    lit = image[image > 0]
    s = float(np.percentile(lit, 95)) if lit.size else 1.0
    scaled = np.log1p(np.clip(image, 0.0, None) / s)
    return colorize(scaled, "grey", vmin=0.0, vmax=float(np.percentile(scaled, 99.7)) or 1.0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "reports" / "gallery.png")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda", "auto"))
    args = parser.parse_args()

    start = time.perf_counter()
    sim = api.simulation(README_FLAGS)
    result = api.render(sim, device=args.device)
    image = result.image
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_png(args.out, log_preview(image))
    print(f"{args.out}: {image.shape[1]}x{image.shape[0]} pixels, sum {image.sum(dtype=np.float64):.6g}, "
          f"max {image.max():.6g}, rendered in {result.seconds:.2f} s "
          f"({time.perf_counter() - start:.2f} s in all)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
