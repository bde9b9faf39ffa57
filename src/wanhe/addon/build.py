"""`wanhe addon build`: the Blender extension zip of the add-on, with its wheels.

The zip holds one folder, `wanhe_farm/`: the add-on's sources, its `blender_manifest.toml`
(Blender 4.2+ installs the wheels it names), `wheels/` and `_transfer/`: the package
`wanhe.transfer` (refusal wording, packing, uploading), which the add-on shares with the CLI,
copied byte for byte (`wanhe_farm/shared.py` imports it, from the copy or from wanhe).
Blender 4.2–5.0 install it as an extension; older Blenders install the same zip as a legacy
add-on (`bl_info`), which puts the wheels on sys.path itself.

The blender-asset-tracer wheel is made from the installed distribution (the files its RECORD
lists, re-hashed into a fresh RECORD), so a build needs no network and bundles exactly the
version wanhe itself packs with. Only pure-Python (`py3-none-any`) distributions qualify. The
zip is reproducible: fixed timestamps, sorted entries.
"""

from __future__ import annotations

import base64
import hashlib
import io
import re
import tomllib
import zipfile
from importlib import metadata
from pathlib import Path, PurePosixPath

SOURCE = Path(__file__).resolve().parent / "wanhe_farm"
PACKAGE = "wanhe_farm"
# the code the add-on shares with wanhe and where its copies go in the zip (shared.py's COPY
# and PLAN_COPY): the transfer package whole, and the farm's frame and tile syntax
SHARED = Path(__file__).resolve().parent.parent / "transfer"
SHARED_COPY = "_transfer"
PLAN = Path(__file__).resolve().parent.parent / "plan"
PLAN_COPY = "_plan"
PLAN_FILES = ("__init__.py", "frames.py", "tiles.py")  # standard library only
BUNDLED = ("blender-asset-tracer",)
_EPOCH = (1980, 1, 1, 0, 0, 0)
_SKIP_PARTS = {"__pycache__"}
_SKIP_SUFFIXES = {".pyc", ".pyo"}


class BuildError(RuntimeError):
    """The zip cannot be built (a bundled distribution missing or not pure Python)."""


def _entry(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=_EPOCH)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16
    return info


def _record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
    return "sha256=" + digest.decode()


def wheel_from_installed(name: str) -> tuple[str, bytes]:
    """(file name, bytes) of a wheel rebuilt from the installed distribution `name`."""
    try:
        dist = metadata.distribution(name)
    except metadata.PackageNotFoundError:
        raise BuildError(f"{name} is not installed here — pip install {name} "
                         "(wanhe depends on it), then build again") from None
    wheel_meta = dist.read_text("WHEEL") or ""
    if "Root-Is-Purelib: true" not in wheel_meta or "Tag: py3-none-any" not in wheel_meta:
        raise BuildError(f"{name} is not a pure-Python py3-none-any distribution; Blender "
                         "needs a wheel per platform for it")
    project = re.sub(r"[-_.]+", "_", dist.metadata["Name"]).lower()
    version = dist.version
    info_dir = f"{project}-{version}.dist-info"
    entries: dict[str, bytes] = {}
    for file in dist.files or []:
        posix = PurePosixPath(str(file))
        if posix.parts[0] == ".." or _SKIP_PARTS & set(posix.parts) or \
                posix.suffix in _SKIP_SUFFIXES:
            continue
        if posix.parts[0].endswith(".dist-info"):
            if posix.name in ("RECORD", "INSTALLER", "REQUESTED", "direct_url.json"):
                continue
            posix = PurePosixPath(info_dir, *posix.parts[1:])
        entries[posix.as_posix()] = Path(str(dist.locate_file(file))).read_bytes()
    if not any(key.startswith(info_dir + "/METADATA") for key in entries):
        raise BuildError(f"{name}'s installed files lack their METADATA")
    record = "".join(f"{key},{_record_hash(data)},{len(data)}\n"
                     for key, data in sorted(entries.items()))
    record += f"{info_dir}/RECORD,,\n"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as whl:
        for key, data in sorted(entries.items()):
            whl.writestr(_entry(key), data)
        whl.writestr(_entry(f"{info_dir}/RECORD"), record)
    return f"{project}-{version}-py3-none-any.whl", buffer.getvalue()


def _files(folder: Path) -> list[Path]:
    return sorted(
        p for p in folder.rglob("*")
        if p.is_file() and not _SKIP_PARTS & set(p.relative_to(folder).parts)
        and p.suffix not in _SKIP_SUFFIXES
    )


def shared_files() -> dict[str, Path]:
    """The zip's copies of wanhe.transfer and of wanhe.plan's frames and tiles: entry name ->
    the package's file."""
    for copy in (SHARED_COPY, PLAN_COPY):
        if (SOURCE / copy).exists():  # a stale copy would shadow the package in tests
            raise BuildError(f"{SOURCE / copy} must not exist in the source tree: the build "
                             "makes it inside the zip only")
    found = {f"{PACKAGE}/{SHARED_COPY}/{p.relative_to(SHARED).as_posix()}": p
             for p in _files(SHARED)}
    found.update({f"{PACKAGE}/{PLAN_COPY}/{name}": PLAN / name for name in PLAN_FILES})
    return found


def manifest_version() -> str:
    data = tomllib.loads((SOURCE / "blender_manifest.toml").read_text())
    return str(data["version"])


def _manifest(wheels: list[str]) -> bytes:
    text = (SOURCE / "blender_manifest.toml").read_text()
    listed = ", ".join(f'"./wheels/{w}"' for w in wheels)
    text, count = re.subn(r"(?m)^wheels = \[.*\]$", f"wheels = [{listed}]", text)
    if count != 1:
        raise BuildError("blender_manifest.toml must have one `wheels = [...]` line")
    tomllib.loads(text)  # still valid TOML
    return text.encode()


def build(output: Path) -> Path:
    """Write the extension zip into the folder `output`; its path."""
    wheels = [wheel_from_installed(name) for name in BUNDLED]
    output.mkdir(parents=True, exist_ok=True)
    target = output / f"{PACKAGE}-{manifest_version()}.zip"
    part = target.with_name(target.name + ".part")
    with zipfile.ZipFile(part, "w") as zf:
        for path in _files(SOURCE):
            rel = path.relative_to(SOURCE).as_posix()
            data = _manifest([w for w, _ in wheels]) if rel == "blender_manifest.toml" \
                else path.read_bytes()
            zf.writestr(_entry(f"{PACKAGE}/{rel}"), data)
        for name, path in shared_files().items():
            zf.writestr(_entry(name), path.read_bytes())
        for wheel_name, data in wheels:
            zf.writestr(_entry(f"{PACKAGE}/wheels/{wheel_name}"), data)
    part.replace(target)
    return target
