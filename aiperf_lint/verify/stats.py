"""Small, stdlib-only statistics for timing samples (medians, quartiles, bootstrap CI)."""

from __future__ import annotations

import random
import statistics
from collections.abc import Sequence

BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 20261125  # fixed: the same samples always give the same interval


def quartiles(samples: Sequence[float]) -> tuple[float, float, float]:
    """(q1, median, q3) with inclusive quartiles, as the CPU notes report them."""
    if not samples:
        raise ValueError("quartiles of no samples")
    if len(samples) == 1:
        only = float(samples[0])
        return only, only, only
    q1, median, q3 = statistics.quantiles(samples, n=4, method="inclusive")
    return q1, median, q3


def summarize(samples: Sequence[float]) -> dict[str, float]:
    q1, median, q3 = quartiles(samples)
    return {"median": median, "q1": q1, "q3": q3, "iqr": q3 - q1}


def paired_ratios(before: Sequence[float], after: Sequence[float]) -> list[float]:
    """before_r / after_r per interleaved repeat; robust to slow drift of the machine."""
    if len(before) != len(after):
        raise ValueError("paired samples must have the same length")
    return [b / a if a > 0 else float("inf") for b, a in zip(before, after)]


def bootstrap_ci(
    samples: Sequence[float],
    confidence: float = 0.95,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
) -> tuple[float, float]:
    """Percentile-bootstrap confidence interval of the median of ``samples``."""
    if not samples:
        raise ValueError("bootstrap of no samples")
    if len(samples) == 1:
        return float(samples[0]), float(samples[0])
    rng = random.Random(seed)
    n = len(samples)
    medians = sorted(statistics.median(rng.choices(samples, k=n)) for _ in range(resamples))
    tail = (1.0 - confidence) / 2.0
    low_index = int(tail * resamples)
    high_index = min(resamples - 1, int((1.0 - tail) * resamples))
    return medians[low_index], medians[high_index]
