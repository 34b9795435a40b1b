"""The one-line warning for an image whose counts sit at the detector's ceiling: a saturated image
teaches nothing (the pixel values say only "more than 65535"), and it usually means a fluence or a
sample that no experiment has (the README's realistic image says how to choose them)."""

from __future__ import annotations

import numpy as np

LIMIT = 0.01  # warn above this fraction of overloaded pixels


def overload_warning(counts: np.ndarray, name: str) -> str | None:
    """The warning for `counts` (the image `name` holds) when more than 1 % of its pixels are at
    the largest value its type holds, else None."""
    ceiling = np.iinfo(counts.dtype).max
    overloaded = int(np.count_nonzero(counts == ceiling))
    if overloaded <= LIMIT * counts.size:
        return None
    return (f"nbnumba: warning: {overloaded} of {counts.size} pixels ({100.0 * overloaded / counts.size:.3g} %) of "
            f"the {name} are overloaded at {ceiling} ADU: lower -fluence (or -flux) or the samples' size "
            "(-N, -bg_thick); the README's realistic image shows how to choose them")
