"""Build the example story reel's folder: the storyboard, two board images and the rigged
talking head (`make_scenes.py story-rig`), everything generated here.

    .venv/bin/python examples/make_story.py OUT_DIR [--size WxH] [--fps N]

Then: ``wanhe story render OUT_DIR/story.yaml --output OUT_DIR/reel``. ``--size`` and
``--fps`` override the film's (the tests make a tiny, fast reel that way).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def draw_board(path: Path, sky: tuple[int, int, int], ground: tuple[int, int, int],
               lanterns: int) -> None:
    """A storyboard panel: sky, ground, a few lantern dots; 640x360."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (640, 360), sky)
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 240, 640, 360), fill=ground)
    for n in range(lanterns):
        x = 60 + n * (520 // max(1, lanterns - 1) if lanterns > 1 else 0)
        draw.ellipse((x - 14, 90 + (n % 2) * 30, x + 14, 118 + (n % 2) * 30),
                     fill=(250, 170, 40))
    draw.line((0, 240, 640, 240), fill=(20, 20, 20), width=3)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)


def build(out: Path, size: tuple[int, int] | None = None, fps: float | None = None,
          samples: int | None = None) -> Path:
    import yaml

    out.mkdir(parents=True, exist_ok=True)
    draw_board(out / "boards" / "market.png", (40, 40, 90), (90, 60, 40), 5)
    draw_board(out / "boards" / "river.png", (20, 30, 60), (30, 60, 110), 2)
    text = (HERE / "story" / "story.yaml").read_text(encoding="utf-8")
    if size or fps or samples:
        board = yaml.safe_load(text)
        if size:
            board["film"]["width"], board["film"]["height"] = size
        if fps:
            board["film"]["fps"] = fps
        for scene in board["scenes"]:
            for shot in scene["shots"]:
                if "blender" in shot and fps:
                    frames = round(2.0 * fps)  # the rig shot: two seconds
                    shot["blender"]["frames"] = f"1-{frames}"
                if "blender" in shot and samples:
                    shot["blender"]["samples"] = samples
        text = yaml.safe_dump(board, allow_unicode=True, sort_keys=False)
    (out / "story.yaml").write_text(text, encoding="utf-8")
    resolution = f"{size[0]}x{size[1]}" if size else "320x180"
    subprocess.run([sys.executable, str(HERE / "make_scenes.py"), "story-rig",
                    str(out / "rig.blend"), "--resolution", resolution], check=True,
                   capture_output=True)
    return out / "story.yaml"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="make_story.py", description=__doc__.splitlines()[0])
    p.add_argument("out", type=Path)
    p.add_argument("--size", help="WxH, e.g. 96x64")
    p.add_argument("--fps", type=float)
    p.add_argument("--samples", type=int)
    args = p.parse_args(argv)
    size = None
    if args.size:
        w, h = (int(v) for v in args.size.lower().split("x"))
        size = (w, h)
    print(build(args.out, size, args.fps, args.samples))
    return 0


if __name__ == "__main__":
    sys.exit(main())
