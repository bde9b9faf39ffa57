"""Read and write Blender's multilayer EXR files.

Channel names follow Blender's multilayer convention ``<view layer>.<pass>.<component>``,
for example ``ViewLayer.Combined.R`` or ``ViewLayer.Denoising Normal.X``. The view layer name
may itself contain dots, so names are split from the right (as Blender does).

Blender 5.0 writes multilayer EXRs as **multi-part** files, one part per pass, named
``ViewLayer.Combined``, ``ViewLayer.Denoising Albedo`` …; the first part carries the render
metadata (``Software``, ``Frame``, ``cycles.ViewLayer.samples`` …) and every part has a
``colorInteropID`` (``lin_rec709_scene`` for colour, ``data`` for normals and depth).
Older Blender versions and other tools write one part holding every channel; both are read,
and :func:`read_layers` returns channels in one canonical order whatever the layout.
:func:`write_layers` writes the classic single-part layout by default, because some readers
only see the first part of a multi-part file (measured: ``bpy.ops.cycles.merge_images`` in
Blender 5.0 keeps only ``Combined`` from multi-part inputs, Blender's own included, but every
pass from single-part ones); ``multipart=True`` writes Blender 5.0's layout. Always 32-bit
float, ZIP compression, written atomically.

Pixel rows are stored top-down: ``array[0]`` is the **top** row of the image, ``array[:, 0]``
the left column (checked against a Blender border render of the top-left quarter, whose
pixels equal ``full[:h/2, :w/2]``). Blender's own border coordinates count y from the bottom.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import OpenEXR
from numpy.typing import NDArray

from wanhe.imaging.atomic import atomic_write
from wanhe.imaging.errors import ExrReadError, OutputError, PassNotFoundError

__all__ = [
    "COLOR_SPACES_ATTRIBUTE",
    "STRUCTURAL_ATTRIBUTES",
    "FloatImage",
    "Frame",
    "read_layers",
    "split_channel_name",
    "write_layers",
]

FloatImage = NDArray[np.float32]

#: Header attribute (JSON) holding per-layer colorInteropIDs in single-part files.
COLOR_SPACES_ATTRIBUTE = "wanhe.colorInteropIDs"

#: Header attributes that describe the file layout; they are rebuilt on write, never copied.
STRUCTURAL_ATTRIBUTES = frozenset(
    {
        "channels",
        "chunkCount",
        "compression",
        "dataWindow",
        "displayWindow",
        "lineOrder",
        "name",
        "type",
        "tiles",
        "version",
        "maxSamplesPerPixel",
        "colorInteropID",  # kept per layer in Frame.color_spaces
    }
)

_COMPONENT_ORDER = {c: i for i, c in enumerate("RGBAXYZWUV")}
_DEFAULT_COMPONENTS = {1: ("V",), 2: ("U", "V"), 3: ("R", "G", "B"), 4: ("R", "G", "B", "A")}


def split_channel_name(name: str) -> tuple[str, str, str]:
    """Split ``"ViewLayer.Combined.R"`` into ``("ViewLayer", "Combined", "R")``.

    ``"Combined.R"`` gives ``("", "Combined", "R")`` and a bare ``"R"`` gives ``("", "", "R")``.
    """
    parts = name.rsplit(".", 2)
    if len(parts) == 3:
        return parts[0], parts[1], parts[2]
    if len(parts) == 2:
        return "", parts[0], parts[1]
    return "", "", parts[0]


def _layer_of(name: str) -> str:
    """The layer (part) a channel belongs to: its name without the component."""
    return name.rsplit(".", 1)[0] if "." in name else ""


def _component_key(name: str) -> tuple[int, str]:
    comp = split_channel_name(name)[2]
    return (_COMPONENT_ORDER.get(comp, len(_COMPONENT_ORDER)), comp)


def _canonical_order(names: Iterable[str]) -> list[str]:
    """The order :func:`read_layers` returns channels in, whatever the file layout: view
    layers in order of appearance; in each, Combined, then Noisy Image, then the other passes
    alphabetically; components R G B A X Y Z W U V."""
    groups: dict[str, list[str]] = {}
    view_layers: dict[str, int] = {}
    for name in names:
        groups.setdefault(_layer_of(name), []).append(name)
        view_layers.setdefault(split_channel_name(name)[0], len(view_layers))

    def layer_key(layer: str) -> tuple[int, int, str]:
        view_layer, pass_name, _ = split_channel_name(layer + ".x")
        rank = {"Combined": 0, "Noisy Image": 1}.get(pass_name, 2)
        return view_layers[view_layer], rank, pass_name

    return [
        n
        for layer in sorted(groups, key=layer_key)
        for n in sorted(groups[layer], key=_component_key)
    ]


@dataclass
class Frame:
    """One rendered frame: every channel as a float32 H×W array, plus metadata.

    ``channels`` is ordered (pass by pass, components R G B A / X Y Z …) and keyed by the full
    channel name. ``attributes`` holds the header attributes worth keeping (Blender's render
    metadata such as ``Software``, ``Frame``, ``cycles.ViewLayer.samples``); ``color_spaces``
    maps a layer (``"ViewLayer.Combined"``) to its ``colorInteropID``.
    """

    width: int
    height: int
    channels: dict[str, FloatImage] = field(default_factory=dict)
    attributes: dict[str, Any] = field(default_factory=dict)
    color_spaces: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.width <= 0 or self.height <= 0:
            raise ValueError(f"frame size must be positive, got {self.width}x{self.height}")
        for name, array in self.channels.items():
            self._check_array(name, array)

    def _check_array(self, name: str, array: NDArray[Any]) -> None:
        if array.dtype != np.float32 or array.shape != (self.height, self.width):
            raise ValueError(
                f"channel {name!r} must be a float32 array of shape "
                f"({self.height}, {self.width}), got {array.dtype} {array.shape}"
            )

    # -- discovery -----------------------------------------------------------------------
    @property
    def view_layers(self) -> list[str]:
        """View layer names in file order (``""`` for channels without a view layer)."""
        seen: dict[str, None] = {}
        for name in self.channels:
            seen.setdefault(split_channel_name(name)[0], None)
        return list(seen)

    @property
    def view_layer(self) -> str:
        """The main view layer: the one holding ``Combined``, else the first one."""
        for name in self.channels:
            layer, pass_name, _ = split_channel_name(name)
            if pass_name == "Combined":
                return layer
        layers = self.view_layers
        return layers[0] if layers else "ViewLayer"

    def passes(self, view_layer: str | None = None) -> list[str]:
        """Pass names in file order, of one view layer or of all of them."""
        seen: dict[str, None] = {}
        for name in self.channels:
            layer, pass_name, _ = split_channel_name(name)
            if view_layer is None or layer == view_layer:
                seen.setdefault(pass_name, None)
        return list(seen)

    def pass_channels(self, name: str, *, view_layer: str | None = None) -> list[str]:
        """Full channel names of pass ``name`` in component order (R G B A, X Y Z …).

        With ``view_layer=None`` the view layer is found automatically; if several view
        layers hold the pass, the main one (:attr:`view_layer`) wins. A plain RGB(A) EXR
        without layer names answers ``"Combined"`` with its bare ``R G B A`` channels.
        """
        by_layer: dict[str, list[str]] = {}
        for channel in self.channels:
            layer, pass_name, _ = split_channel_name(channel)
            if pass_name == name and (view_layer is None or layer == view_layer):
                by_layer.setdefault(layer, []).append(channel)
        if not by_layer and name == "Combined" and view_layer in (None, ""):
            bare = [c for c in self.channels if "." not in c]
            if bare:
                by_layer[""] = bare
        if not by_layer:
            where = f" in view layer {view_layer!r}" if view_layer is not None else ""
            raise PassNotFoundError(
                f"pass {name!r} not found{where}; the frame has passes {self.passes()} "
                f"in view layers {self.view_layers}"
            )
        chosen = by_layer.get(self.view_layer) or next(iter(by_layer.values()))
        return sorted(chosen, key=_component_key)

    def has_pass(self, name: str, *, view_layer: str | None = None) -> bool:
        try:
            self.pass_channels(name, view_layer=view_layer)
        except PassNotFoundError:
            return False
        return True

    # -- pixel access --------------------------------------------------------------------
    def pass_array(self, name: str, *, view_layer: str | None = None) -> FloatImage:
        """Pass ``name`` as a new H×W×C float32 array (components in R G B A / X Y Z order)."""
        names = self.pass_channels(name, view_layer=view_layer)
        return np.stack([self.channels[n] for n in names], axis=-1)

    def rgba(self, name: str = "Combined", *, view_layer: str | None = None) -> FloatImage:
        """Pass ``name`` as H×W×4 RGBA; alpha is 1 when the pass has no ``A`` channel."""
        names = self.pass_channels(name, view_layer=view_layer)
        comps = {split_channel_name(n)[2]: n for n in names}
        if not {"R", "G", "B"} <= comps.keys():
            raise PassNotFoundError(f"pass {name!r} has no R, G, B channels (has {names})")
        out = np.empty((self.height, self.width, 4), dtype=np.float32)
        for i, comp in enumerate("RGB"):
            out[..., i] = self.channels[comps[comp]]
        out[..., 3] = self.channels[comps["A"]] if "A" in comps else np.float32(1.0)
        return out

    def rgb(self, name: str = "Combined", *, view_layer: str | None = None) -> FloatImage:
        """Pass ``name`` as H×W×3 RGB."""
        return np.ascontiguousarray(self.rgba(name, view_layer=view_layer)[..., :3])

    def set_pass(
        self,
        name: str,
        array: NDArray[Any],
        components: Iterable[str] | None = None,
        *,
        view_layer: str | None = None,
        after: str | None = None,
    ) -> None:
        """Add or replace pass ``name`` from an H×W×C (or H×W) array.

        ``components`` defaults to the existing pass's components, else R G B (A) for 3 (4)
        channels. A replaced pass keeps its position in the channel order; a new pass goes
        after pass ``after`` (same view layer) when given, else at the end.
        """
        data = np.asarray(array, dtype=np.float32)
        if data.ndim == 2:
            data = data[..., np.newaxis]
        if data.ndim != 3 or data.shape[:2] != (self.height, self.width):
            raise ValueError(
                f"pass {name!r} must be ({self.height}, {self.width}, C), got {data.shape}"
            )
        layer = self.view_layer if view_layer is None else view_layer
        prefix = f"{layer}.{name}" if layer else name
        old = [c for c in self.channels if _layer_of(c) == prefix]
        if components is None:
            comps = (
                tuple(split_channel_name(c)[2] for c in sorted(old, key=_component_key))
                if len(old) == data.shape[2]
                else _DEFAULT_COMPONENTS.get(data.shape[2], ())
            )
        else:
            comps = tuple(components)
        if len(comps) != data.shape[2]:
            raise ValueError(f"pass {name!r}: {data.shape[2]} channels but components {comps}")
        new = {f"{prefix}.{c}": np.ascontiguousarray(data[..., i]) for i, c in enumerate(comps)}
        anchor = (f"{layer}.{after}" if layer else after) if after is not None else None
        rebuilt: dict[str, FloatImage] = {}
        inserted = False
        for key, value in self.channels.items():
            if key in old:
                if not inserted:
                    rebuilt.update(new)
                    inserted = True
                continue
            rebuilt[key] = value
        if not inserted and not old and anchor is not None:
            keys = list(rebuilt)
            last = max((i for i, k in enumerate(keys) if _layer_of(k) == anchor), default=None)
            if last is not None:
                head = {k: rebuilt[k] for k in keys[: last + 1]}
                tail = {k: rebuilt[k] for k in keys[last + 1 :]}
                rebuilt = {**head, **new, **tail}
                inserted = True
        if not inserted:
            rebuilt.update(new)
        self.channels = rebuilt
        if prefix not in self.color_spaces and self.color_spaces:
            self.color_spaces[prefix] = "lin_rec709_scene"

    def copy(self) -> Frame:
        return Frame(
            self.width,
            self.height,
            {k: v.copy() for k, v in self.channels.items()},
            dict(self.attributes),
            dict(self.color_spaces),
        )


def _window_size(header: Mapping[str, Any]) -> tuple[int, int]:
    lo, hi = header["dataWindow"]
    return int(hi[0]) - int(lo[0]) + 1, int(hi[1]) - int(lo[1]) + 1


def exr_size(path: os.PathLike[str] | str) -> tuple[int, int] | None:
    """Width and height from an EXR's header alone; None if it cannot be read."""
    try:
        exr = OpenEXR.File(str(path), header_only=True)
        return _window_size(exr.parts[0].header)
    except Exception:  # unreadable: the caller takes the path that reports it properly
        return None


def read_layers(path: os.PathLike[str] | str) -> Frame:
    """Read every channel of every part of an EXR into a :class:`Frame` (float32).

    Half-float channels are widened to float32 (exactly). Raises :class:`ExrReadError` for a
    missing or corrupt file, deep data, subsampled or integer channels, or parts whose sizes
    differ.
    """
    p = Path(path)
    if not p.is_file():
        raise ExrReadError(f"EXR file {p} does not exist (was the render or copy finished?)")
    try:
        exr = OpenEXR.File(str(p), separate_channels=True)
        parts = list(exr.parts)
    except Exception as exc:
        raise ExrReadError(
            f"cannot read EXR {p}: {exc}. The file is truncated or not an OpenEXR image; "
            "re-run the task that produced it"
        ) from exc
    if not parts:
        raise ExrReadError(f"EXR {p} has no image parts")
    width, height = _window_size(parts[0].header)
    channels: dict[str, FloatImage] = {}
    color_spaces: dict[str, str] = {}
    for part in parts:
        header = part.header
        if "deep" in str(header.get("type", "")).lower():
            raise ExrReadError(f"EXR {p}: deep images are not supported")
        if _window_size(header) != (width, height):
            raise ExrReadError(
                f"EXR {p}: part {part.name()!r} is {_window_size(header)} but the first part is "
                f"{(width, height)}; parts of one frame must have one size"
            )
        for name, channel in part.channels.items():
            if channel.xSampling != 1 or channel.ySampling != 1:
                raise ExrReadError(f"EXR {p}: channel {name!r} is subsampled; not supported")
            pixels = np.asarray(channel.pixels)
            if pixels.dtype == np.float16:
                pixels = pixels.astype(np.float32)
            elif pixels.dtype != np.float32:
                raise ExrReadError(
                    f"EXR {p}: channel {name!r} holds {pixels.dtype}, only float channels "
                    "are supported"
                )
            if name in channels:
                raise ExrReadError(f"EXR {p}: channel {name!r} appears in two parts")
            channels[name] = np.ascontiguousarray(pixels)
        interop = header.get("colorInteropID")
        if isinstance(interop, str):
            layers = {_layer_of(n) for n in part.channels}
            for layer in layers:
                color_spaces[layer] = interop
    attributes = {k: v for k, v in parts[0].header.items() if k not in STRUCTURAL_ATTRIBUTES}
    saved = attributes.pop(COLOR_SPACES_ATTRIBUTE, None)
    if isinstance(saved, str):
        try:
            restored = json.loads(saved)
        except ValueError:
            restored = None
        if isinstance(restored, dict):
            color_spaces.update({str(k): str(v) for k, v in restored.items()})
    ordered = {n: channels[n] for n in _canonical_order(channels)}
    return Frame(width, height, ordered, attributes, color_spaces)


def _base_header() -> dict[str, Any]:
    return {"compression": OpenEXR.ZIP_COMPRESSION, "type": OpenEXR.scanlineimage}


def write_layers(frame: Frame, path: os.PathLike[str] | str, *, multipart: bool = False) -> None:
    """Write ``frame`` as a 32-bit float, ZIP-compressed multilayer EXR, atomically.

    By default every channel goes into one part (the classic multilayer layout that every
    reader understands); ``multipart=True`` writes one part per pass like Blender 5.0, with
    each layer's ``colorInteropID``. A single part keeps ``colorInteropID`` only when all
    layers agree; the per-layer values travel in a ``wanhe.colorInteropIDs`` attribute that
    :func:`read_layers` restores. Channels without a layer prefix always go into one part.
    Reading the result back gives bit-identical arrays.
    Raises :class:`OutputError` (no partial file left behind) when the write fails.
    """
    target = Path(path)
    if not frame.channels:
        raise ValueError(f"cannot write {target}: the frame has no channels")
    for name, array in frame.channels.items():
        frame._check_array(name, array)
    groups: dict[str, dict[str, FloatImage]] = {}
    for name, array in frame.channels.items():
        groups.setdefault(_layer_of(name), {})[name] = np.ascontiguousarray(array)
    use_parts = multipart and "" not in groups and len(groups) > 1
    if use_parts:
        parts = []
        for index, (layer, chans) in enumerate(groups.items()):
            header = _base_header()
            if index == 0:
                header.update(frame.attributes)
            if layer in frame.color_spaces:
                header["colorInteropID"] = frame.color_spaces[layer]
            parts.append(OpenEXR.Part(header, chans, layer))
        exr = OpenEXR.File(parts)
    else:
        header = _base_header()
        header.update(frame.attributes)
        spaces = set(frame.color_spaces.values())
        if len(spaces) == 1:
            header["colorInteropID"] = spaces.pop()
        if frame.color_spaces:
            header[COLOR_SPACES_ATTRIBUTE] = json.dumps(frame.color_spaces, sort_keys=True)
        exr = OpenEXR.File(header, dict(frame.channels))
    with atomic_write(target) as tmp:
        try:
            with open(tmp, "xb") as stream:
                exr.write(stream)
        except OSError:
            raise
        except Exception as exc:  # the OpenEXR binding raises RuntimeError for its own errors
            raise OutputError(target, exc) from exc
