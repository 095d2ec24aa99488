"""`python -m kitt` is the `kitt` command."""

from kitt.cli import main

main()
