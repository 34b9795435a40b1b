"""What a fit refines: the parameter names of the derivative passes (nbnumba.derivatives, in their
flag units), the groups a command line may name instead, the parameters refined here on the host
(`scale`, `bg_scale`), and bounds."""

from __future__ import annotations

import math

import numpy as np

from ..errors import UserError

GROUPS = {
    "rot": ("rotx", "roty", "rotz"),
    "cell": ("a", "b", "c", "alpha", "beta", "gamma"),
    "edges": ("a", "b", "c"),
    "beam": ("Xbeam", "Ybeam"),
    "detector_rot": ("detector_rotx", "detector_roty", "detector_rotz"),
}
# the model image is scale * I(p) + bg_scale * B: both linear, refined without the kernels
HOST = ("scale", "bg_scale")
# N: Na, Nb and Nc scaled together, its value the geometric mean (Na Nb Nc)^(1/3).  The Gaussian and
# top-hat spots depend on the three only through their product, so that N is what they determine.
JOINT = ("N",)
# the physical domain of each parameter where it has one (flag units); a user's -bounds narrows it
DOMAIN = {"a": (0.0, math.inf), "b": (0.0, math.inf), "c": (0.0, math.inf), "alpha": (0.0, 180.0),
          "beta": (0.0, 180.0), "gamma": (0.0, 180.0), "Na": (1.0, math.inf), "Nb": (1.0, math.inf),
          "Nc": (1.0, math.inf), "N": (1.0, math.inf), "scale": (0.0, math.inf), "bg_scale": (0.0, math.inf),
          "distance": (0.0, math.inf), "lambda": (0.0, math.inf), "mosaic": (0.0, 90.0)}


# Without -bounds, each parameter stays in a range about its start, as wide as a starting model's
# errors and no wider, so that a step of the optimizer from a poor start cannot run off to a
# degenerate model (an edge at 0, spots so sharp that they miss every pixel): (kind, size), kind
# "plus" (start +- size), "times" (start * or / size) or "part" (start +- size * |start|).
RANGE = {"rotx": ("plus", 2.0), "roty": ("plus", 2.0), "rotz": ("plus", 2.0),
         "a": ("part", 0.05), "b": ("part", 0.05), "c": ("part", 0.05),
         "alpha": ("plus", 3.0), "beta": ("plus", 3.0), "gamma": ("plus", 3.0),
         "Na": ("times", 4.0), "Nb": ("times", 4.0), "Nc": ("times", 4.0), "N": ("times", 4.0),
         "scale": ("times", 1e4), "bg_scale": ("times", 1e4), "distance": ("part", 0.1),
         "Xbeam": ("plus", 5.0), "Ybeam": ("plus", 5.0), "detector_rotx": ("plus", 2.0),
         "detector_roty": ("plus", 2.0), "detector_rotz": ("plus", 2.0), "lambda": ("part", 0.02),
         "mosaic": ("times", 4.0)}


def default_range(name: str, start: float) -> tuple[float, float]:
    kind, size = RANGE.get(name, ("plus", math.inf))
    if kind == "plus":
        return start - size, start + size
    if kind == "part":
        return start - size * abs(start), start + size * abs(start)
    return (start / size, start * size) if start > 0 else (0.0, size)


def known_names() -> tuple[str, ...]:
    from ..derivatives import NAMES
    return tuple(NAMES) + HOST + JOINT


def expand(words, fixed=()) -> list[str]:
    """The parameter names of `words` (names or groups, a list or one comma-separated string),
    less those of `fixed`, each once, in the order given."""
    known = known_names()

    def names(spec) -> list[str]:
        items = spec.split(",") if isinstance(spec, str) else list(spec)
        out = []
        for item in (w.strip() for w in items):
            if not item:
                continue
            if item in GROUPS:
                out.extend(GROUPS[item])
            elif item in known:
                out.append(item)
            else:
                raise UserError(f"unknown parameter {item!r} to refine (known: {', '.join(known)}; groups: "
                                f"{', '.join(GROUPS)})")
        return out

    chosen = names(words)
    dropped = set(names(fixed))
    result = []
    for name in chosen:
        if name not in dropped and name not in result:
            result.append(name)
    if not result:
        raise UserError("-refine: nothing left to refine (name parameters such as rotx,roty,rotz,cell,N,scale)")
    cells = [n for n in result if n in ("Na", "Nb", "Nc", "N")]
    if "N" in cells and len(cells) > 1:
        raise UserError(f"-refine names N (Na, Nb and Nc together) and {', '.join(c for c in cells if c != 'N')}")
    return result


def check_shape(names: list[str], shape: str) -> None:
    """Na, Nb, Nc apart only where the crystal shape tells them apart."""
    apart = [n for n in names if n in ("Na", "Nb", "Nc")]
    if len(apart) > 1 and shape in ("GAUSS", "TOPHAT"):
        raise UserError(f"{', '.join(apart)}: the {shape.lower()} spots depend on Na Nb Nc only through their product, "
                        "so they cannot be refined apart; refine N (the three together)")


def parse_bounds(text: str | None) -> dict:
    """`name:low:high,...` (either side may be empty: unbounded) as {name: (low, high)}."""
    bounds = {}
    if not text:
        return bounds
    for item in text.split(","):
        parts = item.strip().split(":")
        if len(parts) != 3:
            raise UserError(f"-bounds: {item!r} is not name:low:high")
        name, low, high = parts
        try:
            lo = float(low) if low.strip() else -math.inf
            hi = float(high) if high.strip() else math.inf
        except ValueError:
            raise UserError(f"-bounds: {item!r} has a bound that is not a number") from None
        if math.isnan(lo) or math.isnan(hi) or not lo < hi:
            raise UserError(f"-bounds: {item!r} needs low < high")
        bounds[name] = (lo, hi)
    return bounds


def bounds_for(names: list[str], start: np.ndarray, given: dict) -> list[tuple[float, float]]:
    """Each parameter's (low, high): the user's (else the range about its start, RANGE) within its
    domain; the start must lie inside."""
    unknown = sorted(set(given) - set(names))
    if unknown:
        raise UserError(f"-bounds names {', '.join(unknown)}, which is not refined")
    out = []
    for name, value in zip(names, start):
        low, high = DOMAIN.get(name, (-math.inf, math.inf))
        wanted = given[name] if name in given else default_range(name, value)
        low, high = max(low, wanted[0]), min(high, wanted[1])
        if not low <= value <= high:
            raise UserError(f"-bounds: the start of {name}, {value:.10g}, lies outside [{low:g}, {high:g}]")
        out.append((low, high))
    return out
