"""Stanford PLY meshes: a small pure-numpy reader (ASCII and binary, either byte order)
and a binary little-endian writer, positions and faces only.

The reader takes the ``vertex`` element's ``x``, ``y``, ``z`` properties (any numeric
type; other properties such as normals and colours are skipped) and the ``face``
element's list property (``vertex_indices`` or ``vertex_index``), fan-triangulating
polygons; other elements are skipped.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from mocap.errors import FileFormatError

__all__ = ["load_ply", "save_ply"]

_TYPES = {"char": "i1", "int8": "i1", "uchar": "u1", "uint8": "u1", "short": "i2", "int16": "i2",
          "ushort": "u2", "uint16": "u2", "int": "i4", "int32": "i4", "uint": "u4", "uint32": "u4",
          "float": "f4", "float32": "f4", "double": "f8", "float64": "f8"}


def _header(data: bytes, path: Path) -> tuple[str, list[tuple[str, int, list[tuple]]], int]:
    end = data.find(b"end_header")
    if not data.startswith(b"ply") or end < 0:
        raise FileFormatError(f"{path}: not a PLY file (no 'ply' magic or no 'end_header')")
    nl = data.find(b"\n", end)
    body = nl + 1 if nl >= 0 else len(data)
    fmt = None
    elements: list[tuple[str, int, list[tuple]]] = []
    for line in data[:end].decode("ascii", errors="replace").splitlines()[1:]:
        w = line.split()
        if not w or w[0] in ("comment", "obj_info"):
            continue
        if w[0] == "format":
            fmt = w[1]
        elif w[0] == "element":
            elements.append((w[1], int(w[2]), []))
        elif w[0] == "property" and elements:
            if w[1] == "list":
                if w[2] not in _TYPES or w[3] not in _TYPES:
                    raise FileFormatError(f"{path}: unknown PLY type in {line.strip()!r}")
                elements[-1][2].append((w[4], "list", _TYPES[w[2]], _TYPES[w[3]]))
            else:
                if w[1] not in _TYPES:
                    raise FileFormatError(f"{path}: unknown PLY type in {line.strip()!r}")
                elements[-1][2].append((w[2], "scalar", _TYPES[w[1]], None))
    if fmt not in ("ascii", "binary_little_endian", "binary_big_endian"):
        raise FileFormatError(f"{path}: unknown PLY format {fmt!r}")
    return fmt, elements, body


def load_ply(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """``(vertices (N, 3) float64, faces (F, 3) int64)`` of a PLY file; raises
    :class:`~mocap.errors.FileFormatError` for a malformed or truncated file, a vertex
    element without x/y/z, face indices out of range or no faces."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise FileFormatError(f"{path}: cannot read ({e.strerror})") from e
    fmt, elements, pos = _header(data, path)
    V = None
    polys: list[np.ndarray] = []
    if fmt == "ascii":
        tokens = data[pos:].split()
        k = 0
        for name, count, props in elements:
            for _ in range(count):
                row = []
                for _pname, kind, _t1, _t2 in props:
                    if kind == "list":
                        n = int(tokens[k])
                        row.append([int(x) for x in tokens[k + 1:k + 1 + n]])
                        k += 1 + n
                    else:
                        row.append(float(tokens[k]))
                        k += 1
                if name == "vertex":
                    polys.append(row)  # temporarily
                elif name == "face":
                    lst = [r for r, p in zip(row, props) if p[1] == "list"]
                    polys.append(np.asarray(lst[0], dtype=np.int64))
            if name == "vertex":
                names = [p[0] for p in props]
                if not {"x", "y", "z"} <= set(names):
                    raise FileFormatError(f"{path}: the vertex element lacks x, y or z")
                rows = np.asarray(polys, dtype=float).reshape(count, len(props))
                V = rows[:, [names.index(c) for c in "xyz"]]
                polys = []
            if k > len(tokens):
                raise FileFormatError(f"{path}: truncated ASCII PLY")
    else:
        bo = "<" if fmt == "binary_little_endian" else ">"
        for name, count, props in elements:
            if all(p[1] == "scalar" for p in props):
                dt = np.dtype([(p[0], bo + p[2]) for p in props])
                if pos + dt.itemsize * count > len(data):
                    raise FileFormatError(f"{path}: truncated binary PLY (element {name!r})")
                arr = np.frombuffer(data, dtype=dt, count=count, offset=pos)
                pos += dt.itemsize * count
                if name == "vertex":
                    if not {"x", "y", "z"} <= set(dt.names):
                        raise FileFormatError(f"{path}: the vertex element lacks x, y or z")
                    V = np.stack([arr[c].astype(float) for c in "xyz"], axis=1)
                continue
            if name != "face" or len(props) != 1:
                raise FileFormatError(f"{path}: element {name!r} with list properties is not supported "
                                      "(only a face element with one index list)")
            _, _, tc, ti = props[0]
            ct, it = np.dtype(bo + tc), np.dtype(bo + ti)
            # fast path: every face a triangle
            rec = np.dtype([("n", ct), ("i", it, (3,))])
            if pos + rec.itemsize * count <= len(data):
                arr = np.frombuffer(data, dtype=rec, count=count, offset=pos)
                if np.all(arr["n"] == 3):
                    polys.append(arr["i"].astype(np.int64))
                    pos += rec.itemsize * count
                    continue
            for _ in range(count):
                if pos + ct.itemsize > len(data):
                    raise FileFormatError(f"{path}: truncated binary PLY (faces)")
                n = int(np.frombuffer(data, dtype=ct, count=1, offset=pos)[0])
                pos += ct.itemsize
                if pos + n * it.itemsize > len(data):
                    raise FileFormatError(f"{path}: truncated binary PLY (faces)")
                polys.append(np.frombuffer(data, dtype=it, count=n, offset=pos).astype(np.int64))
                pos += n * it.itemsize
    if V is None:
        raise FileFormatError(f"{path}: no vertex element")
    tris = []
    for p in polys:
        p = np.asarray(p)
        if p.ndim == 2:
            tris.append(p)
        elif len(p) >= 3:
            tris.append(np.stack([np.full(len(p) - 2, p[0]), p[1:-1], p[2:]], axis=1))
    if not tris:
        raise FileFormatError(f"{path}: no faces")
    F = np.concatenate(tris).astype(np.int64)
    if F.min() < 0 or F.max() >= len(V):
        raise FileFormatError(f"{path}: face index out of range (0..{len(V) - 1})")
    return V, F


def save_ply(path: str | os.PathLike, vertices: np.ndarray, faces: np.ndarray) -> Path:
    """Write ``vertices (N, 3)`` and triangles ``faces (F, 3)`` as binary little-endian
    PLY (float32 positions, int32 indices), atomically. Returns the path."""
    path = Path(path)
    V = np.asarray(vertices, dtype="<f4")
    F = np.asarray(faces, dtype="<i4")
    head = (f"ply\nformat binary_little_endian 1.0\ncomment written by Understudy retarget.ply\n"
            f"element vertex {len(V)}\nproperty float x\nproperty float y\nproperty float z\n"
            f"element face {len(F)}\nproperty list uchar int vertex_indices\nend_header\n").encode()
    rec = np.zeros(len(F), dtype=[("n", "u1"), ("i", "<i4", (3,))])
    rec["n"], rec["i"] = 3, F
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(head + V.tobytes() + rec.tobytes())
    os.replace(tmp, path)
    return path
