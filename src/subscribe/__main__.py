"""`python -m subscribe` runs the CLI (the same as the `subscribe` command)."""

from .cli import main

main()
