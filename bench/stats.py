"""The figures the benchmarks report."""

from __future__ import annotations

import statistics


def percentile(values: list[float], q: float) -> float:
    """The `q`th percentile (0-100) of `values`: the nearest rank, no interpolation."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


def medians(batches: list[dict[str, float]]) -> dict[str, float]:
    """Each figure's median over the batches, to two decimals."""
    return {key: round(statistics.median(b[key] for b in batches), 2) for key in batches[0]}
