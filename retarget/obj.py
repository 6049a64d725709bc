"""Wavefront OBJ meshes: a small pure-numpy reader and writer (positions and faces only).

``load_obj`` reads ``v x y z [w]`` and ``f a b c ...`` records (``a``, ``a/t``, ``a//n``,
``a/t/n``; negative indices count back from the last vertex), fan-triangulates polygons and
ignores everything else (normals, texture coordinates, groups, materials). Units and axes
are whatever the file's author used: :mod:`retarget.autorig` finds the up axis and facing.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from mocap.errors import FileFormatError

__all__ = ["load_obj", "save_obj"]


def load_obj(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """``(vertices (N, 3) float64, faces (F, 3) int64)`` of an OBJ file. Raises
    :class:`~mocap.errors.FileFormatError` naming the line of a malformed record, a face
    index out of range, or a file without faces."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as e:
        raise FileFormatError(f"{path}: cannot read ({e.strerror})") from e
    verts: list[list[float]] = []
    polys: list[tuple[int, list[int]]] = []
    for ln, line in enumerate(text.splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        if parts[0] == "v":
            try:
                verts.append([float(x) for x in parts[1:4]])
            except ValueError as e:
                raise FileFormatError(f"{path}:{ln}: bad vertex {line.strip()!r}") from e
            if len(verts[-1]) != 3:
                raise FileFormatError(f"{path}:{ln}: a vertex needs 3 coordinates, got {line.strip()!r}")
        elif parts[0] == "f":
            try:
                idx = [int(p.split("/")[0]) for p in parts[1:]]
            except ValueError as e:
                raise FileFormatError(f"{path}:{ln}: bad face {line.strip()!r}") from e
            if len(idx) < 3:
                raise FileFormatError(f"{path}:{ln}: a face needs at least 3 vertices, got {line.strip()!r}")
            polys.append((ln, [i - 1 if i > 0 else len(verts) + i for i in idx]))
    if not polys:
        raise FileFormatError(f"{path}: no faces (an OBJ mesh needs 'f' records)")
    V = np.asarray(verts, dtype=float).reshape(-1, 3)
    tris = []
    for ln, p in polys:
        if min(p) < 0 or max(p) >= len(V):
            raise FileFormatError(f"{path}:{ln}: face index out of range (1..{len(V)})")
        tris.extend((p[0], p[k], p[k + 1]) for k in range(1, len(p) - 1))
    return V, np.asarray(tris, dtype=np.int64)


def save_obj(path: str | os.PathLike, vertices: np.ndarray, faces: np.ndarray) -> Path:
    """Write ``vertices (N, 3)`` and triangles ``faces (F, 3)`` (0-based) as OBJ,
    atomically (temp file + rename). Returns the path."""
    path = Path(path)
    V = np.asarray(vertices, dtype=float)
    F = np.asarray(faces, dtype=np.int64) + 1
    lines = ["# written by Understudy retarget.obj"]
    lines += [f"v {x:.6f} {y:.6f} {z:.6f}" for x, y, z in V]
    lines += [f"f {a} {b} {c}" for a, b, c in F]
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path
