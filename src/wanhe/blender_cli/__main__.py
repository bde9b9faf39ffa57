"""`python -m wanhe.blender_cli …`: the `blender` command."""

from __future__ import annotations

import sys

from wanhe.blender_cli.main import main

if __name__ == "__main__":
    sys.exit(main())
