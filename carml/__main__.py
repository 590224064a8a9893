"""`python -m carml` runs the command line."""

import sys

from carml.cli import main

sys.exit(main())
