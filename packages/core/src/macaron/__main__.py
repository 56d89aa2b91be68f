"""``python -m macaron``: the command line, as the images run it (no console script needed)."""

from macaron.cli import main

main()
