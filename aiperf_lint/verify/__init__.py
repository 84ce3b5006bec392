"""Runtime verifier for the fixture pairs (``aiperf-lint verify``).

Runs each pair's before.py and after.py in fresh child processes, checks their
results are equivalent, and measures time and peak memory with interleaved repeats.
Importing this package loads only the standard library.
"""

from aiperf_lint.verify.results import load_results

__all__ = ["load_results"]
