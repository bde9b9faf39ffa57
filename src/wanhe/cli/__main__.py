"""`python -m wanhe.cli …`, as the `wanhe` command."""

from wanhe.cli.main import main

main()
