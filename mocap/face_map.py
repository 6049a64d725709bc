"""ARKit curves onto a character's shape keys (glTF morph targets), and into its GLB.

How a character's morph target gets its weight (first rule that applies):

1. a **map file** (``--face-map FILE.toml`` or a shipped one in ``assets/facemaps/``):
   ``target = { arkitName = weight, ... }``, the weight being the clipped sum;
2. the **exact** ARKit name, or the same name up to case, separators and side suffix:
   ``mouthSmileLeft``, ``MouthSmileLeft``, ``mouthSmile_L``, ``Mouth_Smile_L``,
   ``mouthSmile.L``, ``blendShape1.mouthSmileLeft`` all mean ``mouthSmileLeft``;
3. the **shipped alias maps** (``assets/facemaps/*.toml``): VRM 0.x/1.0 expressions
   (``blink``, ``blink_l``, ``aa``, ``ih``, ``ou``, ``ee``, ``oh``, ``happy``, ``angry``,
   ``sad``, ``relaxed``, ``surprised``, ...), Character Creator 4 names
   (``Brow_Raise_Inner_L``, ``Mouth_Roll_In_Lower``, ...) and the like.

Map file schema (``understudy.facemap`` version 1)::

    schema = "understudy.facemap"
    schema_version = 1
    name = "vrm"
    description = "..."
    [targets]
    blink = { eyeBlinkLeft = 0.5, eyeBlinkRight = 0.5 }
    aa = { jawOpen = 1.0 }

Target names in a map are matched to the character's like rule 2 (case and separators
ignored). A VRM's **expressions** (``VRMC_vrm.expressions`` in 1.0,
``VRM.blendShapeMaster`` in 0.x) are used through their own morph-target binds: each
expression is weighted like a target of its name (``aa`` <- jawOpen, ``blink`` <- both
blinks, ...) and drives the targets it binds, which then ignore rules 1-3. :func:`add_face_to_glb` writes the weights as a glTF ``weights`` animation
channel on every mesh node that has a mapped target, in the GLB's existing animation.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import FileFormatError, UsageError
from .face import ARKIT_SHAPES

__all__ = ["FaceMap", "FACEMAP_DIR", "normalise_name", "load_facemap", "shipped_facemaps", "map_shapes",
           "target_weights", "add_face_to_glb", "vrm_expressions"]

FACEMAP_DIR = Path(__file__).resolve().parent.parent / "assets" / "facemaps"
SCHEMA = "understudy.facemap"
SCHEMA_VERSION = 1

_SIDE = re.compile(r"(?:[._\-\s]?)(left|right|l|r)$", re.IGNORECASE)


def normalise_name(name: str) -> str:
    """A key equal for the spellings of one shape: lower case, no separators, a
    trailing side ``_L``/``.L``/``L``/``Left`` as ``left`` (``_R`` ... as ``right``), and
    any prefix before the last ``.`` or ``|`` dropped unless what follows is a side."""
    s = name.strip()
    parts = re.split(r"[.|]", s)
    if len(parts) > 1 and parts[-1].lower() not in ("l", "r", "left", "right"):
        s = parts[-1]
    m = _SIDE.search(s)
    side = ""
    if m and len(s) > len(m.group(0)):
        word = m.group(1).lower()
        # a bare 'l'/'r' counts as a side only after a separator or a lower-case letter + capital L/R
        sep = m.group(0)[0] in "._- " if len(m.group(0)) > len(m.group(1)) else False
        if word in ("left", "right") or sep or m.group(1) in ("L", "R"):
            side = "left" if word in ("l", "left") else "right"
            s = s[: m.start()]
    return re.sub(r"[^a-z0-9]", "", s.lower()) + side


_ARKIT_KEYS = {normalise_name(n): n for n in ARKIT_SHAPES}


@dataclass
class FaceMap:
    """Target name -> {ARKit name: weight}; ``name`` and ``source`` for messages."""

    targets: dict[str, dict[str, float]]
    name: str = "custom"
    description: str = ""
    source: Path | None = None
    notes: list[str] = field(default_factory=list)


def load_facemap(path: str | os.PathLike) -> FaceMap:
    """Read and check a map file; :class:`FileFormatError` names the bad entry."""
    path = Path(path)
    if not path.is_file():
        shipped = FACEMAP_DIR / f"{path}.toml"
        if shipped.is_file():
            path = shipped
        else:
            raise FileFormatError(f"no face map at {path} (shipped maps: {', '.join(sorted(shipped_facemaps()))})")
    try:
        d = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise FileFormatError(f"{path}: not valid TOML ({e})") from None
    if d.get("schema") != SCHEMA or d.get("schema_version") != SCHEMA_VERSION:
        raise FileFormatError(f"{path}: expected schema = {SCHEMA!r}, schema_version = {SCHEMA_VERSION}, got "
                              f"{d.get('schema')!r} version {d.get('schema_version')!r}")
    raw = d.get("targets")
    if not isinstance(raw, dict) or not raw:
        raise FileFormatError(f"{path}: needs a [targets] table (target = {{ arkitName = weight }})")
    targets: dict[str, dict[str, float]] = {}
    for tname, mix in raw.items():
        if isinstance(mix, str):
            mix = {mix: 1.0}
        if not isinstance(mix, dict) or not mix:
            raise FileFormatError(f"{path}: target {tname!r} must map ARKit names to weights")
        out = {}
        for a, w in mix.items():
            key = _ARKIT_KEYS.get(normalise_name(a))
            if key is None:
                raise FileFormatError(f"{path}: target {tname!r}: {a!r} is not one of the 52 ARKit shapes")
            if not isinstance(w, (int, float)) or not np.isfinite(w):
                raise FileFormatError(f"{path}: target {tname!r}: weight of {a!r} must be a number, got {w!r}")
            out[key] = float(w)
        targets[str(tname)] = out
    return FaceMap(targets=targets, name=str(d.get("name", path.stem)), description=str(d.get("description", "")),
                   source=path)


def shipped_facemaps() -> dict[str, Path]:
    """Name -> path of the maps in ``assets/facemaps/``."""
    return {p.stem: p for p in sorted(FACEMAP_DIR.glob("*.toml"))} if FACEMAP_DIR.is_dir() else {}


def map_shapes(target_names, face_map: FaceMap | str | os.PathLike | None = None
               ) -> tuple[dict[str, dict[str, float]], list[str]]:
    """Which ARKit curves drive each of ``target_names`` (a character's morph targets).

    Returns ``(mapping, notes)``: ``mapping`` target name -> {ARKit name: weight} for
    every target that gets one (rules in the module docstring), ``notes`` what was used.
    """
    names = [str(n) for n in target_names]
    if face_map is not None and not isinstance(face_map, FaceMap):
        face_map = load_facemap(face_map)
    by_key: dict[str, list[str]] = {}
    for n in names:
        by_key.setdefault(normalise_name(n), []).append(n)
    mapping: dict[str, dict[str, float]] = {}
    notes: list[str] = []
    if face_map is not None:
        for t, mix in face_map.targets.items():
            for n in by_key.get(normalise_name(t), []):
                mapping[n] = dict(mix)
        notes.append(f"face map {face_map.name!r}: {len(mapping)} target(s)")
    direct = 0
    for n in names:
        if n not in mapping and normalise_name(n) in _ARKIT_KEYS:
            mapping[n] = {_ARKIT_KEYS[normalise_name(n)]: 1.0}
            direct += 1
    if direct:
        notes.append(f"{direct} target(s) by ARKit name")
    for mname, path in shipped_facemaps().items():
        fm = load_facemap(path)
        hit = 0
        for t, mix in fm.targets.items():
            for n in by_key.get(normalise_name(t), []):
                if n not in mapping:
                    mapping[n] = dict(mix)
                    hit += 1
        if hit:
            notes.append(f"{hit} target(s) by the {mname!r} aliases")
    return mapping, notes


def target_weights(curves: np.ndarray, mapping: dict[str, dict[str, float]]) -> dict[str, np.ndarray]:
    """Target name -> ``(T,)`` weights 0..1 from ARKit ``curves`` ``(T, 52)``."""
    col = {n: i for i, n in enumerate(ARKIT_SHAPES)}
    c = np.asarray(curves, dtype=float)
    return {t: np.clip(sum(w * c[:, col[a]] for a, w in mix.items()), 0.0, 1.0) for t, mix in mapping.items()}


def add_face_to_glb(glb_path: str | os.PathLike, track, *, start_s: float, face_map=None,
                    animation: str | int = -1, out_path: str | os.PathLike | None = None) -> dict:
    """Add the face ``track``'s curves as morph-target weights to a GLB written by
    ``understudy retarget``.

    The curves are sampled (linearly) at ``start_s`` + each keyframe time of the GLB's
    ``animation`` (default: the last, which the retargeter appends), so face and body
    stay in step whatever ``--fps``/``--frames`` did. Every mesh node with a mapped
    target gets one ``weights`` channel (its unmapped targets keep their default
    weight). Writes ``out_path`` (default: over ``glb_path``, atomically). Returns
    ``{"targets": [...], "nodes": n, "notes": [...]}``; raises :class:`UsageError` when
    the character has no morph target the face can drive.
    """
    from retarget import gltf

    doc = gltf.load_gltf(glb_path)
    if not doc.animations:
        raise UsageError(f"{glb_path}: no animation to add the face to")
    anim = doc.animations[animation] if isinstance(animation, int) else \
        next((a for a in doc.animations if a.name == animation), None)
    if anim is None:
        raise UsageError(f"{glb_path}: no animation named {animation!r}")
    times = anim.samplers[0].input.astype(float) if anim.samplers else np.zeros(1)
    ts = np.asarray(track.timestamps, dtype=float)
    c = np.asarray(track.curves, dtype=float)
    q = start_s + times
    sampled = np.stack([np.interp(q, ts, c[:, j]) for j in range(c.shape[1])], axis=1)
    all_names = sorted({n for m in doc.meshes for n in m.target_names})
    mapping, notes = map_shapes(all_names, face_map)
    if not mapping and not vrm_expressions(doc):
        raise UsageError(f"{Path(glb_path).name}: none of the character's morph targets "
                         f"({', '.join(all_names) or 'none'}) matches an ARKit shape or a known alias; "
                         f"pass --face-map MAP.toml (see docs/face.md)")
    weights = target_weights(sampled, mapping)
    bound = _bound_weights(doc, sampled, face_map, notes)  # VRM expressions, by their binds
    keep = [ch for ch in anim.channels if ch.path != "weights"]  # replaced below, with their samplers
    used_samplers = sorted({ch.sampler for ch in keep})
    renum = {old: new for new, old in enumerate(used_samplers)}
    anim.samplers = [anim.samplers[k] for k in used_samplers]
    for ch in keep:
        ch.sampler = renum[ch.sampler]
    anim.channels = keep
    nodes = 0
    used = set()
    for ni, node in enumerate(doc.nodes):
        if node.mesh is None or doc.meshes[node.mesh].n_targets == 0:
            continue
        mesh = doc.meshes[node.mesh]
        tn = mesh.target_names
        binds = bound.get(ni, {})
        hits = [k for k, t in enumerate(tn) if t in weights and k not in binds]
        if not hits and not binds:
            continue
        base = node.weights or mesh.weights or [0.0] * len(tn)
        W = np.tile(np.asarray(base, dtype=np.float32), (len(times), 1))
        for k in hits:
            W[:, k] = weights[tn[k]]
            used.add(tn[k])
        for k, w in binds.items():
            if k < len(tn):
                W[:, k] = np.clip(w, 0.0, 1.0)
                used.add(tn[k])
        anim.samplers.append(gltf.Sampler(input=times.astype(np.float32), output=W))
        anim.channels.append(gltf.Channel(sampler=len(anim.samplers) - 1, node=ni, path="weights"))
        nodes += 1
    gltf.write_glb(doc, out_path or glb_path)
    return {"targets": sorted(used), "nodes": nodes, "notes": notes}


def vrm_expressions(doc) -> dict[str, list[tuple[int, int, float]]]:
    """A VRM's expressions: name -> ``[(node, morph target index, weight 0..1)]`` from
    ``VRMC_vrm.expressions`` (VRM 1.0, preset and custom) or
    ``VRM.blendShapeMaster.blendShapeGroups`` (VRM 0.x, weights 0..100, bound by mesh:
    every node showing that mesh). Empty for other files."""
    ext = doc.extensions
    out: dict[str, list[tuple[int, int, float]]] = {}
    v1 = ext.get("VRMC_vrm", {}).get("expressions", {}) if isinstance(ext.get("VRMC_vrm"), dict) else {}
    for group in ("preset", "custom"):
        for name, e in (v1.get(group) or {}).items():
            binds = [(int(b["node"]), int(b["index"]), float(b.get("weight", 1.0)))
                     for b in (e or {}).get("morphTargetBinds", []) if "node" in b and "index" in b]
            if binds:
                out[str(name)] = binds
    v0 = ext.get("VRM", {}).get("blendShapeMaster", {}) if isinstance(ext.get("VRM"), dict) else {}
    for g in v0.get("blendShapeGroups", []) or []:
        name = g.get("presetName") if g.get("presetName") not in (None, "", "unknown") else g.get("name")
        binds = []
        for b in g.get("binds", []) or []:
            if "mesh" not in b or "index" not in b:
                continue
            for ni, node in enumerate(doc.nodes):
                if node.mesh == int(b["mesh"]):
                    binds.append((ni, int(b["index"]), float(b.get("weight", 100.0)) / 100.0))
        if name and binds:
            out[str(name)] = binds
    return out


def _bound_weights(doc, curves: np.ndarray, face_map, notes: list[str]) -> dict[int, dict[int, np.ndarray]]:
    """node -> {target index: (T,) weight} from the VRM expressions' binds, each
    expression weighted like a target of its name (:func:`map_shapes`)."""
    expr = vrm_expressions(doc)
    if not expr:
        return {}
    emap, _ = map_shapes(list(expr), face_map)
    ew = target_weights(curves, emap)
    out: dict[int, dict[int, np.ndarray]] = {}
    for name, binds in expr.items():
        if name not in ew:
            continue
        for ni, k, w in binds:
            acc = out.setdefault(ni, {})
            acc[k] = acc.get(k, 0.0) + w * ew[name]
    if ew:
        notes.append(f"{len(ew)} VRM expression(s) through their morph-target binds: {', '.join(sorted(ew))}")
    return out
