import os
import sys

# `python -m aiperf_lint` puts the current directory first on sys.path, so a
# `libcst.py` or `pandas.py` in the project being linted would be imported
# (executed) by our own imports. The linter needs nothing from there.
if sys.path and sys.path[0] in ("", os.getcwd()):
    del sys.path[0]

from aiperf_lint.cli import main

sys.exit(main())
