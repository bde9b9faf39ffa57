"""`wanhe addon build`: write the Blender add-on's extension zip."""


from pathlib import Path
from typing import Annotated

import typer

from wanhe.cli.common import fail, out

addon_app = typer.Typer(
    rich_markup_mode=None,  # click's plain help: rich's help renderer costs 0.15-0.3 s
    help="The Blender add-on: submit, watch and download from Blender.",
    no_args_is_help=True)


@addon_app.command("build")
def build_command(
    output: Annotated[Path, typer.Option("--output", "-o", help="folder to write the zip to")]
    = Path("dist"),
) -> None:
    """Write wanhe_farm-VERSION.zip: install it in Blender (Preferences › Get Extensions ›
    Install from Disk, or `blender --command extension install-file -r user_default ZIP`)."""
    from wanhe.addon.build import BuildError, build

    try:
        path = build(output)
    except (BuildError, OSError) as exc:
        fail(str(exc))
    out.print(str(path), highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.add_typer(addon_app, name="addon")
