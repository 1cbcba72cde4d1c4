"""`python -m pi_match.cli`."""

from . import console

console()
