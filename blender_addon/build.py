"""Build the Blender extension zip: ``understudy addon build -o understudy_addon.zip``.

The zip holds ``blender_manifest.toml`` at its root (what ``blender --command extension
install-file`` and ``bpy.ops.extensions.package_install_files`` expect), the add-on's
Python files (``understudy_addon/**/*.py``), and as data the shipped bone-map profiles
(``assets/bonemaps/*.toml`` -> ``data/bonemaps/``), the face alias maps
(``assets/facemaps/*.toml`` -> ``data/facemaps/``) and the canonical skeleton
(``assets/skeleton/canonical.toml`` -> ``data/skeleton/``). Standard library only: no
``bpy``, no Understudy module beyond :mod:`mocap.errors`.

Files are added in sorted order with a fixed timestamp, so the same sources give the same
bytes. The zip is written to a temporary file and renamed into place.
"""

from __future__ import annotations

import os
import tempfile
import tomllib
import zipfile
from pathlib import Path

from mocap.errors import FileFormatError, UsageError

ADDON_DIR = Path(__file__).resolve().parent / "understudy_addon"
ASSETS = Path(__file__).resolve().parent.parent / "assets"
_EPOCH = (2024, 1, 1, 0, 0, 0)


def addon_files() -> list[tuple[Path, str]]:
    """(source file, name in the zip) for everything the zip holds, sorted by name."""
    if not (ADDON_DIR / "blender_manifest.toml").is_file():
        raise FileFormatError(f"{ADDON_DIR} has no blender_manifest.toml")
    out = [(ADDON_DIR / "blender_manifest.toml", "blender_manifest.toml")]
    for p in sorted(ADDON_DIR.rglob("*.py")):
        if "__pycache__" not in p.parts:
            out.append((p, p.relative_to(ADDON_DIR).as_posix()))
    maps = sorted((ASSETS / "bonemaps").glob("*.toml"))
    if not maps:
        raise FileFormatError(f"no bone-map profiles in {ASSETS / 'bonemaps'}")
    out += [(p, f"data/bonemaps/{p.name}") for p in maps]
    out += [(p, f"data/facemaps/{p.name}") for p in sorted((ASSETS / "facemaps").glob("*.toml"))]
    sk = ASSETS / "skeleton" / "canonical.toml"
    if not sk.is_file():
        raise FileFormatError(f"missing {sk}")
    out.append((sk, "data/skeleton/canonical.toml"))
    return sorted(out, key=lambda x: x[1])


def manifest() -> dict:
    """The add-on's manifest, parsed and checked for the fields Blender requires."""
    p = ADDON_DIR / "blender_manifest.toml"
    try:
        m = tomllib.loads(p.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise FileFormatError(f"{p}: malformed TOML ({e})") from None
    need = ("schema_version", "id", "version", "name", "tagline", "maintainer", "type", "blender_version_min",
            "license")
    missing = [k for k in need if k not in m]
    if missing:
        raise FileFormatError(f"{p}: missing {', '.join(missing)}")
    return m


def build_addon(output: str | os.PathLike) -> tuple[Path, int]:
    """Write the extension zip to ``output`` (must end in ``.zip``); returns (path, number of files)."""
    out = Path(output)
    if out.suffix.lower() != ".zip":
        raise UsageError(f"the add-on is built as a .zip, got {out.name!r}")
    if not out.parent.is_dir():
        raise UsageError(f"cannot write {out}: folder {out.parent} does not exist")
    manifest()
    files = addon_files()
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp")
    os.close(fd)
    try:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as z:
            for src, name in files:
                info = zipfile.ZipInfo(name, date_time=_EPOCH)
                info.compress_type = zipfile.ZIP_DEFLATED
                info.external_attr = 0o644 << 16
                z.writestr(info, src.read_bytes())
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return out, len(files)
