"""`python -m pi_match.cli`."""

import sys

from . import main

sys.exit(main())
