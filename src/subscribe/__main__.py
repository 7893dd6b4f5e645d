"""`python -m subscribe` runs the CLI (the same as the `subscribe` command)."""

from subscribe.cli import main

main()
