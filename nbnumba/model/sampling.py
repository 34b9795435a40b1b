"""The reference's rules that fill in step counts, ranges and step sizes from what was given."""

from __future__ import annotations

import math


def steps_range_step(steps: int, span: float, step: float, *, count_only_span: float,
                     span_only_halves: bool) -> tuple[int, float, float]:
    """Divergence, dispersion and sensor layers: (steps, range, step) from the given subset.

    Negative (or zero) means "not given".  `count_only_span` is the range assumed when only a
    count is given; `span_only_halves` selects the sensor rule (two layers of half the thickness)
    over the divergence rule (two steps of the full range) when only a range is given.
    """
    if steps <= 0:
        if span < 0.0:
            if step <= 0.0:
                return 1, 0.0, 0.0
            return 2, step, step
        if step <= 0.0:
            if span_only_halves:
                return 2, span, span / 2
            return 2, span, span
        return math.ceil(span / step), span, step
    if span < 0.0:
        if step <= 0.0:
            return steps, count_only_span, count_only_span / steps
        return 2, step, step
    if step <= 0.0:
        if steps <= 1:
            steps = 2
        return steps, span, span / (steps - 1)
    return steps, span, step


def sane(steps: int, span: float, step: float) -> tuple[int, float, float]:
    """A zero or negative range or step collapses to a single step, as the reference does."""
    if span <= 0.0 or step <= 0.0 or steps <= 0:
        return 1, 0.0, 0.0
    return steps, span, step


def phi_steps(phisteps: int, osc: float, phistep: float, rtd: float) -> tuple[int, float, float]:
    """(phisteps, osc, phistep) for the spindle sweep."""
    if phisteps < 0:
        if osc < 0.0:
            if phistep <= 0.0:
                return 1, 0.0, 0.0
            return 2, phistep, phistep
        if phistep <= 0.0:
            return 2, osc, osc / 2.0
        return math.ceil(osc / phistep), osc, phistep
    if phisteps == 0:
        phisteps = 1
    if osc < 0.0:
        if phistep <= 0.0:
            osc = 1.0 / rtd
            return phisteps, osc, osc / phisteps
        return 2, phistep, phistep
    if phistep < 0.0:
        return phisteps, osc, osc / phisteps
    return phisteps, osc, phistep


def mosaic_domains(domains: int, spread: float) -> tuple[int, float, list[str]]:
    """(domains, spread, warnings)."""
    if domains <= 0:
        if spread < 0.0:
            return 1, 0.0, []
        if spread == 0.0:
            return 1, spread, []
        return 10, spread, ["WARNING: finite mosaicity with only one domain! upping to 10 mosaic domains"]
    if spread < 0.0:
        return 1, 0.0, ["WARNING: no mosaic spread specified.  setting mosaic_domains = 1"]
    if spread == 0.0:
        return 1, spread, ["WARNING: zero mosaic spread specified.  setting mosaic_domains = 1"]
    return domains, spread, []
