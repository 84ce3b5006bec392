"""aiperf-lint: find, fix and measure the performance traps of Python AI code."""

__version__ = "0.1.0"
