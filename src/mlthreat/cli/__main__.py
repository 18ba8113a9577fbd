"""`python -m mlthreat.cli`: the command line, as the `mlthreat` console script runs it."""

import sys

from mlthreat.cli import main

sys.exit(main())
