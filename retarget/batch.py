"""Retargeting files to files: one motion onto one character (``understudy retarget``),
or a manifest of takes x characters x settings (``understudy batch``).

One retarget, :func:`retarget_files`
------------------------------------
Passes, in order, each on plain data:

1. **check the outputs**: every output name ends in ``.glb``, ``.bvh`` or ``.fbx``
   (:data:`OUTPUT_FORMATS`), and Blender is at hand when one is ``.fbx``;
2. **load the source**: a take folder (its ``motion.npz``), a motion ``.npz`` or a
   ``.bvh`` (:func:`load_source_motion`); resample to ``fps``, then keep ``frames``
   ``A:B`` (counted at the new rate, 0-based, ``B`` excluded);
3. **load the character** (:func:`retarget.rig.load_rig`: ``.glb``, ``.gltf``, ``.vrm``
   or a skeleton-only ``.bvh``) with its bone map: the one given, else the file's own
   (VRM), else the best shipped profile; the rig must have every core bone
   (:func:`retarget.bonemap.require_core`, a :class:`~mocap.errors.RigError` listing
   the missing ones);
4. **the source's bone map**, the same way (a shipped profile name or a ``.toml``);
5. **retarget** (:func:`retarget.retarget.retarget`);
6. **write** every output atomically, then the character's bone map actually used as
   TOML for the user to edit and pass back with ``--map``: a shipped profile (or a
   VRM's humanBones) as the canonical bones it finds in this rig, by their names in the
   rig; a user's own map as it is.

Many retargets, :func:`run_batch`
---------------------------------
A manifest (schema ``understudy.batch``, version 1; the full format is in
``docs/retargeting.md``)::

    schema = "understudy.batch"
    schema_version = 1
    output_dir = "out"                  # default "out", beside the manifest

    [[take]]
    path = "takes/walk.bvh"             # .bvh, motion .npz, or a solved take folder
    name = "walk"                       # optional, default: the file's stem
    source_map = "cmu_cgspeed"          # optional: profile name or .toml
    frames = "0:120"                    # optional: A:B after resampling

    [[character]]
    path = "characters/hero.glb"        # .glb .gltf .vrm, or .bvh (skeleton only)
    name = "hero"                       # optional
    map = "maps/hero.map.toml"          # optional bone map of the character

    [settings]                          # optional; a list means one variant per value
    foot_ik = [true, false]
    hand_ik = false
    fps = 30
    formats = ["glb", "fbx"]            # outputs of every job (default ["glb"])

expands to jobs ``takes x characters x variants``; job ``walk__hero`` (plus
``__foot_ik-off`` etc. for settings with several values) writes
``out/walk__hero.glb`` (and ``.fbx``) and ``out/walk__hero.map.toml``.

Every problem in the manifest (unknown keys, wrong types, missing files, paths outside
the manifest's folder, duplicate names, unreadable bone maps) is collected and raised
together as one :class:`ManifestError` before anything runs. Paths are relative to
the manifest's folder and must stay inside it (checked on the written path: ``..``
and absolute paths elsewhere are refused, a symlink placed inside is the user's
choice) unless ``allow_outside``.

Jobs run in worker processes (a local ``ProcessPoolExecutor``, or a dask.distributed
cluster given its scheduler address; the workers must see the same files at the same
paths). A job whose outputs all exist is skipped, so a re-run only does what is
missing; outputs are written atomically, so an interrupted job leaves nothing that
counts as done. A failing job is reported and the rest go on. Ctrl-C: jobs not yet
started are cancelled, running ones finish (a second Ctrl-C abandons them), finished
outputs stay.

``import retarget.batch`` needs numpy and the standard library only; tqdm, dask and
Blender are imported when used.
"""

from __future__ import annotations

import itertools
import os
import re
import signal
import sys
import time
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from mocap.errors import FileFormatError, RigError, UnderstudyError, UsageError

__all__ = [
    "OUTPUT_FORMATS",
    "SCHEMA",
    "SCHEMA_VERSION",
    "RetargetOptions",
    "RetargetFilesResult",
    "ManifestError",
    "Manifest",
    "Job",
    "JobResult",
    "BatchReport",
    "output_format",
    "parse_frames",
    "load_source_motion",
    "resolve_bonemap",
    "default_map_path",
    "retarget_files",
    "load_manifest",
    "plan_jobs",
    "run_job",
    "run_batch",
    "format_summary",
]

OUTPUT_FORMATS: dict[str, str] = {
    ".glb": "binary glTF 2.0: the character (meshes, skin, materials) with the animation",
    ".bvh": "BVH: the character's skeleton and the motion, metres",
    ".fbx": "FBX 7.4 binary, written by Blender in a worker process",
}
"""Output file types, by suffix."""

SCHEMA = "understudy.batch"
SCHEMA_VERSION = 1


# -- one retarget -------------------------------------------------------------------------


@dataclass(frozen=True)
class RetargetOptions:
    """What to retarget and how. ``fps``: resample the source first (None keeps its
    rate); ``frames``: ``(start, stop)`` frame indices after resampling, 0-based, stop
    excluded, either may be None; the IK switches go to the retargeter. ``face``: when
    the source is a take folder with a solved ``face.npz`` and an output is a GLB, animate
    the character's shape keys with it (issue 6; :func:`mocap.face_map.add_face_to_glb`);
    ``face_map``: a face-map TOML for shape keys the ARKit names and aliases miss."""

    foot_ik: bool = True
    hand_ik: bool = False
    fingers: bool = True
    fps: float | None = None
    frames: tuple[int | None, int | None] | None = None
    face: bool = False
    face_map: str | None = None


@dataclass
class RetargetFilesResult:
    """What :func:`retarget_files` did: files written, maps, frames, notes, seconds."""

    outputs: list[Path]
    map_path: Path | None
    map_used: dict[str, tuple[str, str]]
    source_map: str
    target_map: str
    n_frames: int
    fps: float
    notes: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)


def output_format(path: str | os.PathLike) -> str:
    """``"glb"``, ``"bvh"`` or ``"fbx"`` from an output file name, else
    :class:`~mocap.errors.UsageError` naming the supported suffixes."""
    suffix = Path(path).suffix.lower()
    if suffix not in OUTPUT_FORMATS:
        raise UsageError(f"cannot write {Path(path).name!r}: unknown output type {suffix or '(no extension)'!r}; "
                         f"supported: {', '.join(OUTPUT_FORMATS)}")
    return suffix[1:]


_FRAMES = re.compile(r"^\s*(\d*)\s*:\s*(\d*)\s*$")


def parse_frames(spec: str) -> tuple[int | None, int | None]:
    """``"A:B"`` (either side may be empty) -> ``(A, B)``; 0-based, B excluded."""
    m = _FRAMES.match(spec) if isinstance(spec, str) else None
    if m is None:
        raise UsageError(f"frames must be A:B with whole numbers (e.g. 0:120, 30:, :60), got {spec!r}")
    a = int(m.group(1)) if m.group(1) else None
    b = int(m.group(2)) if m.group(2) else None
    if a is not None and b is not None and b <= a:
        raise UsageError(f"frames {spec!r}: the end ({b}) must be after the start ({a})")
    return a, b


def load_source_motion(path: str | os.PathLike):
    """The :class:`~mocap.motion.Motion` of a take folder (its ``motion.npz``), a motion
    ``.npz`` or a ``.bvh`` file."""
    from mocap.bvh import load_bvh
    from mocap.motion_io import load_motion

    p = Path(path)
    if p.is_dir():
        if not (p / "motion.npz").is_file():
            raise FileFormatError(f"{p} has no motion.npz: run `understudy solve {p}` first")
        return load_motion(p / "motion.npz")[0]
    if not p.exists():
        raise FileFormatError(f"{p}: no such file or folder")
    if p.suffix.lower() == ".bvh":
        return load_bvh(p)
    if p.suffix.lower() == ".npz":
        return load_motion(p)[0]
    raise UsageError(f"{p}: expected a take folder, a motion .npz or a .bvh file")


def resolve_bonemap(spec, *, what: str = "bone map"):
    """A :class:`~retarget.bonemap.BoneMap` from a BoneMap, a ``.toml`` path or a
    shipped profile name; None stays None."""
    from .bonemap import BoneMap, builtin_profiles, load_bonemap

    if spec is None or isinstance(spec, BoneMap):
        return spec
    spec = os.fspath(spec)
    profiles = builtin_profiles()
    if spec in profiles:
        return profiles[spec]
    if spec.lower().endswith(".toml") or os.sep in spec or Path(spec).exists():
        return load_bonemap(spec)
    raise UsageError(f"{what} {spec!r} is neither a .toml file nor a shipped profile "
                     f"({', '.join(profiles)})")


def default_map_path(output: str | os.PathLike) -> Path:
    """Where the bone map used for ``output`` goes by default: ``hero.glb`` ->
    ``hero.map.toml`` beside it."""
    return Path(output).with_suffix(".map.toml")


def _user_map(bonemap) -> bool:
    """True for a bone map read from a user's .toml (not a shipped profile, not a VRM's)."""
    from .bonemap import BONEMAP_DIR

    src = bonemap.source
    return src is not None and src.suffix.lower() == ".toml" and Path(src).resolve().parent != BONEMAP_DIR


def _slice(motion, frames):
    if not frames:
        return motion
    a, b = frames
    a = 0 if a is None else a
    if a >= motion.n_frames:
        raise UsageError(f"frames {a}:{'' if b is None else b}: the motion has only {motion.n_frames} frames "
                         f"(at {motion.fps:g} fps)")
    return motion.slice(a, b)


def retarget_files(
    source: str | os.PathLike,
    character: str | os.PathLike,
    outputs: Sequence[str | os.PathLike],
    *,
    source_map=None,
    target_map=None,
    options: RetargetOptions | None = None,
    map_out: str | os.PathLike | None = None,
) -> RetargetFilesResult:
    """Retarget the motion in ``source`` onto ``character`` and write ``outputs`` (see the
    module docstring for the passes). ``source_map``/``target_map``: BoneMap, shipped
    profile name or ``.toml`` path, None to detect. ``map_out``: where to save the bone
    map used (None: do not save). Raises the domain errors of each pass."""
    from mocap.bvh import save_bvh

    from .bonemap import BoneMap, detect_profile, require_core, save_bonemap
    from .fbx import blender_command, export_fbx
    from .retarget import retarget
    from .rig import export_glb, load_rig

    opts = options or RetargetOptions()
    outputs = [Path(o) for o in outputs]
    if not outputs:
        raise UsageError("nothing to write: give at least one output file")
    kinds = [output_format(o) for o in outputs]
    for o in outputs + ([Path(map_out)] if map_out is not None else []):
        if not o.parent.is_dir():
            raise UsageError(f"cannot write {o}: folder {o.parent} does not exist")
    if "fbx" in kinds:
        blender_command()  # fail before the work when Blender is missing
    timings: dict[str, float] = {}
    t = time.perf_counter()

    src_path, char_path = Path(source), Path(character)
    motion = load_source_motion(src_path)
    if opts.fps:
        motion = motion.resample(opts.fps)
    motion = _slice(motion, opts.frames)
    smap = resolve_bonemap(source_map, what="source bone map")
    if smap is None:
        try:
            smap, _ = detect_profile(motion.skeleton.names)
        except RigError as e:
            raise RigError(f"source {src_path.name}: {e} and pass it with --source-map "
                           f"(batch: the take's source_map)") from None
    require_core(smap, motion.skeleton.names, what=f"source {src_path.name}")

    tmap = resolve_bonemap(target_map, what="character bone map")
    rig = load_rig(char_path, bonemap=tmap)
    if rig.bonemap is None:
        try:
            detect_profile(rig.skeleton.names)
        except RigError as e:
            raise RigError(f"character {char_path.name}: {e} and pass it with --map "
                           f"(batch: the character's map)") from None
    tmap = rig.bonemap
    require_core(tmap, rig.skeleton.names, what=f"character {char_path.name}")
    timings["load"] = time.perf_counter() - t

    t = time.perf_counter()
    res = retarget(motion, rig, source_map=smap, target_map=tmap, foot_ik=opts.foot_ik, hand_ik=opts.hand_ik,
                   fingers=opts.fingers)
    timings["retarget"] = time.perf_counter() - t
    out_motion = res.motion

    t = time.perf_counter()
    written = []
    for o, kind in zip(outputs, kinds):
        if kind == "glb":
            export_glb(rig, out_motion, o)
        elif kind == "bvh":
            save_bvh(out_motion, o)
        else:
            export_fbx(rig, out_motion, o)
        written.append(o)
    notes = [str(n) for n in res.notes]
    if opts.face and src_path.is_dir() and (src_path / "face.npz").is_file():
        notes += _add_face(src_path, [o for o, k in zip(written, kinds) if k == "glb"], motion, opts.face_map)
    map_used = {str(c): (str(s), str(g)) for c, (s, g) in dict(res.map_used).items() if s and g}
    saved = None
    if map_out is not None and tmap.source is not None and Path(map_out).resolve() == Path(tmap.source).resolve():
        saved = Path(map_out)  # the map given is the map used: leave the user's file (and comments) alone
    elif map_out is not None:
        if _user_map(tmap):  # the user's own file: it is the map used, as they wrote it
            used = tmap
        else:  # a shipped profile (or a VRM's humanBones): what it finds in this rig, by name
            found = tmap.resolve(rig.skeleton.names)
            unpaired = [c for c in found if c not in map_used]
            used = BoneMap(
                name=char_path.stem or "character",
                bones=found,
                description=f"bones of {char_path.name}, found by bone map {tmap.name!r}",
                notes={"general": f"written by Understudy retargeting {src_path.name} (bone map {smap.name!r}) "
                                  f"onto {char_path.name}: {len(map_used)} of these bones were paired with the "
                                  f"source" + (f"; not paired (the source lacks them): {', '.join(unpaired)}"
                                               if unpaired else "")
                                  + ". Edit it and pass it back with --map."},
            )
        saved = save_bonemap(used, map_out)
    timings["write"] = time.perf_counter() - t
    timings.update({f"retarget.{k}": float(v) for k, v in res.timings.items()})
    return RetargetFilesResult(outputs=written, map_path=saved, map_used=map_used, source_map=smap.name,
                               target_map=tmap.name, n_frames=out_motion.n_frames, fps=out_motion.fps,
                               notes=notes, timings=timings)


def _add_face(take: Path, glbs: Sequence[Path], motion, face_map: str | None) -> list[str]:
    """The take's face curves as morph-target weights in each GLB written; one note each.
    Without a face map a character with no matching shape keys gets a note, not an error
    (the body is what was asked for); with one, a mismatch is the user's error."""
    from mocap.face import load_face
    from mocap.face_map import add_face_to_glb

    face = load_face(take)
    notes = []
    for g in glbs:
        try:
            r = add_face_to_glb(g, face, start_s=float(motion.timestamps[0]), face_map=face_map)
        except UsageError as e:
            if face_map:
                raise
            notes.append(f"face not added to {g.name}: {e}")
            continue
        notes.append(f"face: {len(r['targets'])} morph target(s) animated on {r['nodes']} mesh node(s) "
                     f"of {g.name}")
    return notes


# -- the manifest -------------------------------------------------------------------------


class ManifestError(FileFormatError):
    """A batch manifest has problems; ``problems`` lists every one (one line each)."""

    def __init__(self, path: Path, problems: list[str]):
        self.path = Path(path)
        self.problems = list(problems)
        n = len(self.problems)
        head = f"{self.path}: {n} problem{'s' if n != 1 else ''} in the batch manifest, nothing was run:"
        super().__init__("\n".join([head] + [f"  - {p}" for p in self.problems]))


_TOP_KEYS = ("schema", "schema_version", "output_dir", "take", "character", "settings")
_TAKE_KEYS = ("path", "name", "source_map", "frames")
_CHAR_KEYS = ("path", "name", "map")
_SETTINGS_KEYS = ("foot_ik", "hand_ik", "fps", "formats")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_TAKE_SUFFIXES = (".bvh", ".npz")
_CHAR_SUFFIXES = (".glb", ".gltf", ".vrm", ".bvh")


@dataclass(frozen=True)
class TakeEntry:
    name: str
    path: Path
    source_map: str | None = None
    frames: tuple[int | None, int | None] | None = None


@dataclass(frozen=True)
class CharacterEntry:
    name: str
    path: Path
    map: str | None = None


@dataclass(frozen=True)
class Variant:
    """One combination of the ``[settings]`` values; ``label`` is ``""`` or
    ``__foot_ik-off__fps-30`` etc. (only the settings that vary)."""

    foot_ik: bool = True
    hand_ik: bool = False
    fps: float | None = None
    label: str = ""


@dataclass(frozen=True)
class Manifest:
    path: Path
    output_dir: Path
    takes: tuple[TakeEntry, ...]
    characters: tuple[CharacterEntry, ...]
    variants: tuple[Variant, ...]
    formats: tuple[str, ...]


def _fmt_keys(keys: Iterable[str]) -> str:
    return ", ".join(sorted(keys))


class _Checker:
    """Collects every problem instead of stopping at the first."""

    def __init__(self, base: Path, allow_outside: bool):
        self.base = base
        self.allow_outside = allow_outside
        self.problems: list[str] = []

    def add(self, msg: str) -> None:
        self.problems.append(msg)

    def keys(self, where: str, table: Mapping, allowed: Sequence[str]) -> None:
        unknown = [k for k in table if k not in allowed]
        if unknown:
            self.add(f"{where}: unknown key(s) {', '.join(map(repr, unknown))} (allowed: {_fmt_keys(allowed)})")

    def path(self, where: str, value, *, must_exist: bool = True) -> Path | None:
        if not isinstance(value, str) or not value.strip():
            self.add(f"{where}: must be a non-empty path string, got {value!r}")
            return None
        p = Path(os.path.normpath(self.base / value))  # lexical: '..' resolved, symlinks kept
        if not self.allow_outside and os.path.commonpath([p, self.base]) != str(self.base):
            self.add(f"{where}: {value!r} is outside the manifest's folder {self.base} "
                     f"(paths must stay inside it unless outside paths are allowed, --allow-outside)")
            return None
        if must_exist and not p.exists():
            self.add(f"{where}: {value!r} does not exist ({p})")
            return None
        return p

    def name(self, where: str, value, default: str) -> str | None:
        name = default if value is None else value
        if not isinstance(name, str) or not _NAME.match(name):
            self.add(f"{where}: name {name!r} must be letters, digits, '.', '_' or '-' "
                     f"(it becomes part of file names)")
            return None
        if "__" in name:
            self.add(f"{where}: name {name!r} must not contain '__' (it separates the parts of job names)")
            return None
        return name


def _as_list(x) -> list:
    return list(x) if isinstance(x, list) else [x]


def load_manifest(path: str | os.PathLike, *, allow_outside: bool = False) -> Manifest:
    """Read and check a batch manifest (see the module docstring). Every problem is
    collected and raised together as a :class:`ManifestError`."""
    from .bonemap import builtin_profiles, load_bonemap

    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FileFormatError(f"no batch manifest at {path}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise FileFormatError(f"{path}: cannot read the manifest ({e})") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ManifestError(path, [f"malformed TOML ({e})"]) from None
    base = Path(os.path.abspath(path.parent))
    ck = _Checker(base, allow_outside)

    if data.get("schema") != SCHEMA:
        ck.add(f"'schema' must be {SCHEMA!r}, got {data.get('schema')!r}")
    v = data.get("schema_version")
    if v != SCHEMA_VERSION or isinstance(v, bool):
        ck.add(f"'schema_version' must be {SCHEMA_VERSION} (the version this Understudy reads), got {v!r}")
    ck.keys("manifest", data, _TOP_KEYS)

    out_value = data.get("output_dir", "out")
    output_dir = ck.path("output_dir", out_value, must_exist=False)
    if output_dir is not None and output_dir.exists() and not output_dir.is_dir():
        ck.add(f"output_dir: {out_value!r} exists and is not a folder")

    profiles = builtin_profiles()

    def check_map(where: str, spec) -> str | None:
        if not isinstance(spec, str) or not spec:
            ck.add(f"{where}: must be a shipped profile name or a .toml path, got {spec!r}")
            return None
        if spec in profiles:
            return spec
        if not spec.lower().endswith(".toml"):
            ck.add(f"{where}: {spec!r} is neither a .toml file nor a shipped profile ({', '.join(profiles)})")
            return None
        p = ck.path(where, spec)
        if p is None:
            return None
        try:
            load_bonemap(p)
        except FileFormatError as e:
            ck.add(f"{where}: {e}")
            return None
        return str(p)

    def entries(key: str) -> list[tuple[str, dict]]:
        raw = data.get(key)
        if raw is None:
            ck.add(f"no [[{key}]] entries: the manifest needs at least one")
            return []
        if not isinstance(raw, list) or not all(isinstance(e, dict) for e in raw):
            ck.add(f"'{key}' must be an array of tables ([[{key}]]), got {type(raw).__name__}")
            return []
        if not raw:
            ck.add(f"no [[{key}]] entries: the manifest needs at least one")
        return [(f"{key}[{i + 1}]", e) for i, e in enumerate(raw)]

    takes: list[TakeEntry] = []
    for where, e in entries("take"):
        ck.keys(where, e, _TAKE_KEYS)
        if "path" not in e:
            ck.add(f"{where}: 'path' is missing")
            continue
        p = ck.path(f"{where} path", e["path"])
        if p is not None:
            if p.is_dir():
                if not (p / "motion.npz").is_file():
                    ck.add(f"{where} path: take folder {e['path']!r} has no motion.npz "
                           f"(run `understudy solve` on it first)")
            elif p.suffix.lower() not in _TAKE_SUFFIXES:
                ck.add(f"{where} path: {e['path']!r} is not a take folder, a motion .npz or a .bvh")
        name = ck.name(where, e.get("name"), Path(str(e["path"])).stem if isinstance(e["path"], str) else "")
        smap = check_map(f"{where} source_map", e["source_map"]) if "source_map" in e else None
        frames = None
        if "frames" in e:
            try:
                frames = parse_frames(e["frames"])
            except UsageError as err:
                ck.add(f"{where}: {err}")
        if p is not None and name is not None:
            takes.append(TakeEntry(name=name, path=p, source_map=smap, frames=frames))

    chars: list[CharacterEntry] = []
    for where, e in entries("character"):
        ck.keys(where, e, _CHAR_KEYS)
        if "path" not in e:
            ck.add(f"{where}: 'path' is missing")
            continue
        p = ck.path(f"{where} path", e["path"])
        if p is not None and (p.is_dir() or p.suffix.lower() not in _CHAR_SUFFIXES):
            ck.add(f"{where} path: {e['path']!r} is not a character file ({', '.join(_CHAR_SUFFIXES)})")
        name = ck.name(where, e.get("name"), Path(str(e["path"])).stem if isinstance(e["path"], str) else "")
        cmap = check_map(f"{where} map", e["map"]) if "map" in e else None
        if p is not None and name is not None:
            chars.append(CharacterEntry(name=name, path=p, map=cmap))

    for kind, items in (("take", takes), ("character", chars)):
        seen: dict[str, Path] = {}
        for it in items:
            if it.name in seen:
                ck.add(f"two [[{kind}]] entries are named {it.name!r} ({seen[it.name]} and {it.path}); "
                       f"give one a different 'name'")
            else:
                seen[it.name] = it.path

    settings = data.get("settings", {})
    variants, formats = [Variant()], ("glb",)
    if not isinstance(settings, dict):
        ck.add(f"'settings' must be a table ([settings]), got {type(settings).__name__}")
    else:
        ck.keys("[settings]", settings, _SETTINGS_KEYS)
        values: dict[str, list] = {}
        for key in ("foot_ik", "hand_ik"):
            vals = _as_list(settings.get(key, Variant.__dataclass_fields__[key].default))
            if not vals or not all(isinstance(x, bool) for x in vals):
                ck.add(f"[settings] {key}: must be true, false or a list of them, got {settings.get(key)!r}")
                vals = [Variant.__dataclass_fields__[key].default]
            values[key] = list(dict.fromkeys(vals))
        fps = _as_list(settings.get("fps", None))
        if not fps or not all(x is None or (isinstance(x, (int, float)) and not isinstance(x, bool) and 0 < x < 1e4)
                              for x in fps):
            ck.add(f"[settings] fps: must be a positive frame rate or a list of them, got {settings.get('fps')!r}")
            fps = [None]
        values["fps"] = list(dict.fromkeys(None if x is None else float(x) for x in fps))
        fm = _as_list(settings.get("formats", ["glb"]))
        bad = [f for f in fm if not isinstance(f, str) or "." + f.lower().lstrip(".") not in OUTPUT_FORMATS]
        if not fm or bad:
            ck.add(f"[settings] formats: must be a list of {', '.join(s[1:] for s in OUTPUT_FORMATS)}, "
                   f"got {settings.get('formats')!r}")
        else:
            formats = tuple(dict.fromkeys(f.lower().lstrip(".") for f in fm))
        variants = []
        for foot, hand, rate in itertools.product(values["foot_ik"], values["hand_ik"], values["fps"]):
            label = ""
            if len(values["foot_ik"]) > 1:
                label += f"__foot_ik-{'on' if foot else 'off'}"
            if len(values["hand_ik"]) > 1:
                label += f"__hand_ik-{'on' if hand else 'off'}"
            if len(values["fps"]) > 1:
                label += f"__fps-{'source' if rate is None else f'{rate:g}'}"
            variants.append(Variant(foot_ik=foot, hand_ik=hand, fps=rate, label=label))

    if ck.problems:
        raise ManifestError(path, ck.problems)
    return Manifest(path=path, output_dir=output_dir, takes=tuple(takes), characters=tuple(chars),
                    variants=tuple(variants), formats=formats)


# -- jobs ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Job:
    """One take onto one character with one variant: plain, picklable data (absolute
    paths as strings) that a worker process on any machine sharing the files can run."""

    name: str
    take: str
    character: str
    outputs: tuple[str, ...]
    map_out: str
    options: RetargetOptions
    source_map: str | None = None
    target_map: str | None = None


@dataclass
class JobResult:
    """``status``: ``"ok"``, ``"skipped"`` (its outputs existed), ``"failed"`` (``reason``
    is one line) or ``"cancelled"`` (stopped by Ctrl-C before it ran)."""

    name: str
    status: str
    reason: str = ""
    seconds: float = 0.0
    outputs: tuple[str, ...] = ()


def plan_jobs(manifest: Manifest) -> list[Job]:
    """Every job of the manifest, takes x characters x variants, in that order."""
    out = Path(os.path.abspath(manifest.output_dir))
    jobs = []
    for take, char, var in itertools.product(manifest.takes, manifest.characters, manifest.variants):
        name = f"{take.name}__{char.name}{var.label}"
        opts = RetargetOptions(foot_ik=var.foot_ik, hand_ik=var.hand_ik, fps=var.fps, frames=take.frames,
                               face=True)
        jobs.append(Job(name=name, take=str(take.path), character=str(char.path),
                        outputs=tuple(str(out / f"{name}.{f}") for f in manifest.formats),
                        map_out=str(out / f"{name}.map.toml"), options=opts, source_map=take.source_map,
                        target_map=char.map))
    return jobs


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def run_job(job: Job) -> JobResult:
    """Run one job (in a worker process); never raises: a failure becomes a
    ``"failed"`` result with a one-line reason."""
    t = time.perf_counter()
    try:
        res = retarget_files(job.take, job.character, job.outputs, source_map=job.source_map,
                             target_map=job.target_map, options=job.options, map_out=job.map_out)
    except UnderstudyError as e:
        return JobResult(job.name, "failed", _one_line(e), time.perf_counter() - t)
    except Exception as e:  # noqa: BLE001 - a bug in one job must not stop the batch
        return JobResult(job.name, "failed", _one_line(f"{type(e).__name__}: {e} (a bug; please report it)"),
                         time.perf_counter() - t)
    return JobResult(job.name, "ok", "", time.perf_counter() - t, tuple(str(p) for p in res.outputs))


class _Abandoned(BaseException):
    """Raised in a local worker by SIGTERM (the parent abandoning its job)."""


_in_job = False


def _on_sigterm(signum, frame):
    if not _in_job:
        os._exit(128 + signum)
    raise _Abandoned


def _worker_init() -> None:
    """Local worker initializer: Ctrl-C is the parent's business (it cancels what has not
    started), so a running job finishes its outputs; SIGTERM (the parent abandoning the
    job) unwinds the job, so the atomic writers remove their temporary files and
    Blender is stopped, then ends the process."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _on_sigterm)


def _run_job_in_worker(job: Job) -> JobResult:
    global _in_job
    _in_job = True
    try:
        return run_job(job)
    except _Abandoned:
        os._exit(128 + signal.SIGTERM)  # cleaned up by the unwinding; take nothing else from the queue
    finally:
        _in_job = False


@dataclass
class BatchReport:
    results: list[JobResult]
    seconds: float
    interrupted: bool = False

    def count(self, status: str) -> int:
        return sum(r.status == status for r in self.results)

    @property
    def exit_code(self) -> int:
        """0 when every job succeeded or was skipped, 130 after Ctrl-C, else 1."""
        if self.interrupted:
            return 130
        return 1 if any(r.status != "ok" and r.status != "skipped" for r in self.results) else 0


def _pending_work(jobs: Sequence[Job]) -> tuple[list[Job], list[JobResult]]:
    """Jobs still to run (outputs that exist dropped from them), and the skipped ones."""
    todo, skipped = [], []
    for job in jobs:
        missing = tuple(o for o in job.outputs if not Path(o).exists())
        if missing:
            todo.append(replace(job, outputs=missing))
        else:
            skipped.append(JobResult(job.name, "skipped", "outputs exist", 0.0, job.outputs))
    return todo, skipped


class _Local:
    def __init__(self, workers: int):
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        self.pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                                        initializer=_worker_init)

    def submit(self, jobs):
        return [self.pool.submit(_run_job_in_worker, j) for j in jobs]

    def cancel(self, futures):
        for f in futures:
            f.cancel()

    def abandon(self):
        # No public way to stop running workers before Python 3.14; they are ours to end.
        # The pool then marks its pending futures broken, which fails (a traceback from its
        # manager thread) on the ones Ctrl-C already cancelled: drop those first.
        items = getattr(self.pool, "_pending_work_items", None)
        if isinstance(items, dict):
            for k, w in list(items.items()):
                if w.future.cancelled():
                    items.pop(k, None)
        procs = list((getattr(self.pool, "_processes", None) or {}).values())
        for p in procs:
            p.terminate()
        for p in procs:
            p.join(10)
            if p.is_alive():
                p.kill()
        self.pool.shutdown(wait=False, cancel_futures=True)
        self.abandoned = True

    def close(self):
        if not getattr(self, "abandoned", False):
            self.pool.shutdown(wait=True, cancel_futures=True)


class _Dask:
    def __init__(self, scheduler: str):
        try:
            from distributed import Client
        except ImportError as e:  # pragma: no cover - a declared dependency
            raise UsageError(f"--scheduler needs dask.distributed ({e}); pip install 'dask[distributed]'") from None
        try:
            self.client = Client(scheduler, timeout="15s", set_as_default=False)
        except (OSError, TimeoutError, ValueError) as e:
            raise UsageError(f"cannot reach the dask scheduler at {scheduler}: {_one_line(e)}") from None

    def submit(self, jobs):
        return [self.client.submit(run_job, j, pure=False, key=f"understudy-{j.name}-{os.urandom(4).hex()}")
                for j in jobs]

    def cancel(self, futures):
        self.client.cancel([f for f in futures if not f.done()])

    def abandon(self):
        pass

    def close(self):
        self.client.close()


def _result_of(fut, job: Job) -> JobResult:
    try:
        return fut.result()
    except BaseException as e:  # noqa: BLE001 - a lost worker fails that job only
        if type(e).__name__ == "CancelledError":
            return JobResult(job.name, "cancelled", "stopped before it ran")
        return JobResult(job.name, "failed", _one_line(f"worker failed: {type(e).__name__}: {e}"))


def run_batch(
    jobs: Sequence[Job],
    *,
    workers: int | None = None,
    scheduler: str | None = None,
    progress: bool = True,
    on_interrupt=None,
) -> BatchReport:
    """Run ``jobs`` (from :func:`plan_jobs`) in worker processes, ``workers`` of them
    locally (default: one per CPU, at most one per job) or on the dask cluster at
    ``scheduler``. Outputs that exist are skipped. One progress bar (tqdm, on stderr)
    counts jobs; ``on_interrupt(message)`` is told about Ctrl-C. Never raises for a
    failing job; returns every job's result in the jobs' order."""
    from tqdm import tqdm

    t0 = time.perf_counter()
    jobs = list(jobs)
    names = [j.name for j in jobs]
    if len(set(names)) != len(names):
        raise UsageError("job names must be unique")
    if workers is not None and workers < 1:
        raise UsageError(f"--workers must be at least 1, got {workers}")
    for d in {Path(o).parent for j in jobs for o in j.outputs}:
        d.mkdir(parents=True, exist_ok=True)
    todo, skipped = _pending_work(jobs)
    results: dict[str, JobResult] = {r.name: r for r in skipped}
    interrupted = False
    bar = tqdm(total=len(jobs), initial=len(skipped), unit="job", desc="batch", disable=not progress,
               file=sys.stderr, dynamic_ncols=True)
    runner = None
    try:
        if todo:
            runner = _Dask(scheduler) if scheduler else _Local(min(workers or os.cpu_count() or 1, len(todo)))
            futures = dict(zip(runner.submit(todo), todo))
            pending = set(futures)
            stops = 0
            while pending:
                try:
                    done = [f for f in pending if f.done()]
                    if not done:
                        time.sleep(0.05)
                        continue
                    for f in done:
                        pending.discard(f)
                        r = _result_of(f, futures[f])
                        results[r.name] = r
                        if r.status != "cancelled":
                            bar.update(1)
                        failed = sum(x.status == "failed" for x in results.values())
                        if failed:
                            bar.set_postfix_str(f"{failed} failed")
                except KeyboardInterrupt:
                    interrupted = True
                    stops += 1
                    if stops == 1:
                        runner.cancel(list(pending))
                        if on_interrupt:
                            on_interrupt("interrupted: cancelling jobs not started; running jobs finish "
                                         "(Ctrl-C again to abandon them)")
                    else:
                        runner.abandon()
                        for f in pending:
                            results[futures[f].name] = JobResult(futures[f].name, "cancelled",
                                                                 "abandoned while running")
                        pending.clear()
    finally:
        bar.close()
        if runner is not None:
            try:
                runner.close()
            except KeyboardInterrupt:
                runner.abandon()
    out = [results.get(j.name) or JobResult(j.name, "cancelled", "stopped before it ran") for j in jobs]
    return BatchReport(results=out, seconds=time.perf_counter() - t0, interrupted=interrupted)


def format_summary(report: BatchReport, jobs: Sequence[Job] | None = None) -> str:
    """The end-of-run table: every job, its status, seconds and outputs or reason, then
    the totals."""
    rows = []
    for r in report.results:
        detail = r.reason if r.status in ("failed", "cancelled") else ", ".join(Path(o).name for o in r.outputs)
        if r.status == "skipped":
            detail = "outputs exist: " + detail
        rows.append((r.name, r.status, f"{r.seconds:.1f} s" if r.status in ("ok", "failed") else "-", detail))
    w0 = max([len("job")] + [len(r[0]) for r in rows])
    w1 = max([len("status")] + [len(r[1]) for r in rows])
    lines = [f"{'job':<{w0}}  {'status':<{w1}}  {'time':>7}  detail"]
    lines += [f"{a:<{w0}}  {b:<{w1}}  {c:>7}  {d}" for a, b, c, d in rows]
    counts = ", ".join(f"{report.count(s)} {s}" for s in ("ok", "skipped", "failed", "cancelled")
                       if report.count(s) or s in ("ok", "failed"))
    lines.append(f"{len(report.results)} jobs: {counts}; {report.seconds:.1f} s"
                 + (" (interrupted)" if report.interrupted else ""))
    return "\n".join(lines)
