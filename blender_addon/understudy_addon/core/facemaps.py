"""Which ARKit curves drive which shape keys: exact ARKit names (any spelling, see
:mod:`.arkit`), an optional map file, and the shipped alias maps (VRM expressions
``blink``/``aa``/``angry``..., Character Creator names), copied from ``assets/facemaps/``
into the add-on's ``data/facemaps/`` by ``understudy addon build``.

Map files: schema ``understudy.facemap`` version 1 (``mocap.face_map`` reads the same
files)::

    schema = "understudy.facemap"
    schema_version = 1
    name = "vrm"
    [targets]
    blink = { eyeBlinkLeft = 0.5, eyeBlinkRight = 0.5 }   # weight = clip(sum w * curve, 0, 1)
    aa = "jawOpen"                                         # shorthand for { jawOpen = 1.0 }

Order of rules for a shape key, first that applies: the given map file, the ARKit name,
the shipped maps (in name order). Same as ``mocap.face_map.map_shapes`` (tested).
"""

from __future__ import annotations

import math
import os
import tomllib
from pathlib import Path

import numpy as np

from .arkit import arkit_key, normalise_name
from .bonemaps import DATA_DIR
from .errors import FileFormatError

FACEMAP_DIR = DATA_DIR / "facemaps"
SCHEMA = "understudy.facemap"
SCHEMA_VERSION = 1


def load_facemap(path: str | os.PathLike) -> tuple[str, dict[str, dict[str, float]]]:
    """(name, target -> {ARKit name: weight}) from a map file, checked."""
    path = Path(path)
    try:
        d = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileFormatError(f"no face map at {path}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError, OSError) as e:
        raise FileFormatError(f"{path.name}: not valid TOML ({e})") from None
    if d.get("schema") != SCHEMA or d.get("schema_version") != SCHEMA_VERSION:
        raise FileFormatError(f"{path.name}: expected schema {SCHEMA!r} version {SCHEMA_VERSION}, got "
                              f"{d.get('schema')!r} version {d.get('schema_version')!r}")
    raw = d.get("targets")
    if not isinstance(raw, dict) or not raw:
        raise FileFormatError(f"{path.name}: needs a [targets] table (target = {{ arkitName = weight }})")
    out: dict[str, dict[str, float]] = {}
    for t, mix in raw.items():
        if isinstance(mix, str):
            mix = {mix: 1.0}
        if not isinstance(mix, dict) or not mix:
            raise FileFormatError(f"{path.name}: target {t!r} must map ARKit names to weights")
        m = {}
        for a, w in mix.items():
            k = arkit_key(a)
            if k is None:
                raise FileFormatError(f"{path.name}: target {t!r}: {a!r} is not one of the 52 ARKit shapes")
            if isinstance(w, bool) or not isinstance(w, (int, float)) or not math.isfinite(w):
                raise FileFormatError(f"{path.name}: target {t!r}: weight of {a!r} must be a number, got {w!r}")
            m[k] = float(w)
        out[str(t)] = m
    return str(d.get("name", path.stem)), out


def shipped_facemaps() -> list[Path]:
    return sorted(FACEMAP_DIR.glob("*.toml")) if FACEMAP_DIR.is_dir() else []


def map_shapes(names, face_map: str | os.PathLike | None = None) -> tuple[dict[str, dict[str, float]], list[str]]:
    """Shape key name -> {ARKit name: weight} for every key of ``names`` a rule drives,
    and one note per rule used."""
    names = [str(n) for n in names]
    by_key: dict[str, list[str]] = {}
    for n in names:
        by_key.setdefault(normalise_name(n), []).append(n)
    mapping: dict[str, dict[str, float]] = {}
    notes = []
    if face_map:
        fname, targets = load_facemap(face_map)
        for t, mix in targets.items():
            for n in by_key.get(normalise_name(t), []):
                mapping[n] = dict(mix)
        notes.append(f"face map {fname!r}: {len(mapping)} shape key(s)")
    direct = 0
    for n in names:
        if n not in mapping and arkit_key(n):
            mapping[n] = {arkit_key(n): 1.0}
            direct += 1
    if direct:
        notes.append(f"{direct} shape key(s) by ARKit name")
    for p in shipped_facemaps():
        fname, targets = load_facemap(p)
        hit = 0
        for t, mix in targets.items():
            for n in by_key.get(normalise_name(t), []):
                if n not in mapping:
                    mapping[n] = dict(mix)
                    hit += 1
        if hit:
            notes.append(f"{hit} shape key(s) by the {fname!r} aliases")
    return mapping, notes


def weights(values: np.ndarray, columns: tuple[str, ...], mix: dict[str, float]) -> np.ndarray | None:
    """``clip(sum w * curve, 0, 1)`` ``(T,)`` from ``values`` ``(T, K)`` with ARKit
    ``columns``; None when the file has none of the mix's curves."""
    have = [(columns.index(a), w) for a, w in mix.items() if a in columns]
    if not have:
        return None
    return np.clip(sum(w * values[:, c] for c, w in have), 0.0, 1.0)
