"""Runtime verifier for the fixture pairs (``aiperf-lint verify``).

Runs each pair's before.py and after.py in fresh child processes, checks their
results are equivalent, and measures time and peak memory with interleaved repeats.
Importing this package loads nothing: the CLI imports ``command`` for every run.
"""

NAMED_SIZES = ("small", "default", "large")

__all__ = ["NAMED_SIZES", "load_results"]


def __getattr__(name: str):
    if name == "load_results":  # lazy, so `import aiperf_lint.verify.command` stays cheap
        from aiperf_lint.verify.results import load_results

        return load_results
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
