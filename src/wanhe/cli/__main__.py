"""`python -m wanhe.cli …`, as the `wanhe` command."""

from wanhe.cli import main

main()
