import sys

from aiperf_lint.cli import main

sys.exit(main())
