"""A small reader for the OpenEXR files our Blender worker writes (numpy only).

Blender writes the render passes (depth, normal, alpha) of a frame as one multilayer
OpenEXR image, **uncompressed** (``exr_codec = "NONE"``), scanline, single part; its
channels are named ``<view layer>.<pass>.<component>`` (``ViewLayer.Depth.Z``,
``ViewLayer.Normal.X``). :func:`read_exr` reads exactly that kind of file: channels of
HALF, FLOAT or UINT pixels, no compression, no tiles, no multiple parts. Anything else
raises :class:`~mocap.errors.FileFormatError` naming what it found, rather than guessing.

Layout (OpenEXR 2 file format): magic ``76 2f 31 01``, version word, header attributes
``name\\0 type\\0 size value`` up to an empty name, a table of ``uint64`` offsets (one per
scanline for uncompressed files), then per scanline ``int32 y, int32 size`` and each
channel's row in the header's (alphabetical) channel order.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

import numpy as np

from .errors import FileFormatError

__all__ = ["read_exr"]

_MAGIC = b"\x76\x2f\x31\x01"
_PIXEL = {0: np.dtype("<u4"), 1: np.dtype("<f2"), 2: np.dtype("<f4")}
_COMPRESSION = {0: "none", 1: "rle", 2: "zips", 3: "zip", 4: "piz", 5: "pxr24", 6: "b44", 7: "b44a",
                8: "dwaa", 9: "dwab"}


def _cstr(buf: bytes, pos: int) -> tuple[str, int]:
    end = buf.index(b"\0", pos)
    return buf[pos:end].decode("latin-1"), end + 1


def _header(buf: bytes, pos: int, path: Path) -> tuple[dict, int]:
    """One header's attributes (channels, dataWindow, compression, name, chunkCount)."""
    h: dict = {"channels": []}
    while True:
        name, pos = _cstr(buf, pos)
        if not name:
            return h, pos
        kind, pos = _cstr(buf, pos)
        size = struct.unpack_from("<i", buf, pos)[0]
        pos += 4
        value = buf[pos:pos + size]
        pos += size
        if name == "channels" and kind == "chlist":
            p = 0
            while value[p] != 0:
                ch, p = _cstr(value, p)
                ptype, _linear, xs, ys = struct.unpack_from("<iB3xii", value, p)
                p += 16
                if (xs, ys) != (1, 1):
                    raise FileFormatError(f"{path}: subsampled channel {ch!r} is not supported")
                h["channels"].append((ch, ptype))
        elif name == "dataWindow" and kind == "box2i":
            h["window"] = struct.unpack("<iiii", value)
        elif name == "compression" and kind == "compression":
            h["compression"] = value[0]
        elif name == "name" and kind == "string":
            h["name"] = value.decode("utf-8", "replace")
        elif name == "type" and kind == "string":
            h["type"] = value.decode("latin-1")


def read_exr(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Channel name -> ``(H, W)`` float32 array (row 0 = top of the image).

    In a multi-part file (Blender 5 writes one part per pass) the channels of every
    part are returned; a part whose channel names lack the pass prefix gets
    ``<part name>.`` in front of them."""
    path = Path(path)
    try:
        buf = path.read_bytes()
    except OSError as e:
        raise FileFormatError(f"cannot read {path}: {e}") from None
    if buf[:4] != _MAGIC:
        raise FileFormatError(f"{path}: not an OpenEXR file")
    version = struct.unpack_from("<I", buf, 4)[0]
    multipart = bool(version & 0x1000)
    if version & 0x200 or version & 0x800:
        raise FileFormatError(f"{path}: tiled or deep OpenEXR is not supported (flags {version:#x})")
    pos = 8
    headers = []
    try:
        while True:
            h, pos = _header(buf, pos, path)
            headers.append(h)
            if not multipart or buf[pos] == 0:
                pos += 1 if multipart else 0
                break
    except (ValueError, struct.error, IndexError) as e:
        raise FileFormatError(f"{path}: malformed OpenEXR header ({e})") from None
    out: dict[str, np.ndarray] = {}
    tables = []
    for h in headers:
        if "window" not in h or not h["channels"]:
            raise FileFormatError(f"{path}: OpenEXR header lacks dataWindow or channels")
        if h.get("compression") != 0:
            c = h.get("compression")
            raise FileFormatError(f"{path}: OpenEXR compression {_COMPRESSION.get(c, c)!r} is not supported "
                                  f"(the render worker writes uncompressed files)")
        if h.get("type", "scanlineimage") != "scanlineimage":
            raise FileFormatError(f"{path}: OpenEXR part type {h['type']!r} is not supported")
        for ch, ptype in h["channels"]:
            if ptype not in _PIXEL:
                raise FileFormatError(f"{path}: channel {ch!r} has unknown pixel type {ptype}")
        x0, y0, x1, y1 = h["window"]
        H = y1 - y0 + 1
        tables.append(np.frombuffer(buf, dtype="<u8", count=H, offset=pos))
        pos += 8 * H
    for part, (h, offsets) in enumerate(zip(headers, tables)):
        x0, y0, x1, y1 = h["window"]
        W, H = x1 - x0 + 1, y1 - y0 + 1
        prefix = ""
        if multipart and h.get("name") and not all(ch.count(".") >= 1 for ch, _ in h["channels"]):
            prefix = h["name"] + "."
        arrays = {ch: np.empty((H, W), np.float32) for ch, _ in h["channels"]}
        row_bytes = sum(W * _PIXEL[t].itemsize for _, t in h["channels"])
        head = 12 if multipart else 8
        for off in offsets:
            off = int(off)
            if off + head + row_bytes > len(buf):
                raise FileFormatError(f"{path}: truncated OpenEXR file")
            if multipart:
                got_part, y, size = struct.unpack_from("<iii", buf, off)
                if got_part != part:
                    raise FileFormatError(f"{path}: chunk of part {got_part} in part {part}'s table")
            else:
                y, size = struct.unpack_from("<ii", buf, off)
            if size != row_bytes or not y0 <= y <= y1:
                raise FileFormatError(f"{path}: scanline {y} has {size} bytes, expected {row_bytes}")
            p = off + head
            for ch, t in h["channels"]:
                dt = _PIXEL[t]
                arrays[ch][y - y0] = np.frombuffer(buf, dtype=dt, count=W, offset=p)
                p += W * dt.itemsize
        out.update({prefix + k: v for k, v in arrays.items()})
    return out
