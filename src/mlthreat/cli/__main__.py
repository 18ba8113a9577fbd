"""`python -m mlthreat.cli`: the command line, as the `mlthreat` console script runs it."""

import sys

from mlthreat.cli import console

sys.exit(console())
