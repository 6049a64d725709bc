"""Bone maps inside Blender: the ``understudy.bonemap`` v1 TOML files, the shipped
profiles (copied into the add-on as ``understudy_addon/data/bonemaps/*.toml`` by
``understudy addon build``), detection and writing. Standard library only.

Same rules as ``retarget.bonemap`` (tested against it): a canonical bone is found when
the rig has a bone of exactly the mapped name, else when exactly one bone matches after
removing a ``[match]`` prefix (and case-folding with ``ignore_case``). Detection keeps,
among the profiles that find all :data:`CORE_BONES`, the one finding the most bones;
ties go to the larger share of the profile, then to the name sorting first.
"""

from __future__ import annotations

import os
import tempfile
import tomllib
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from .errors import FileFormatError, RigError

DATA_DIR = Path(__file__).resolve().parent.parent / "data"
BONEMAP_DIR = DATA_DIR / "bonemaps"
SKELETON_PATH = DATA_DIR / "skeleton" / "canonical.toml"
SCHEMA = "understudy.bonemap"
SCHEMA_VERSION = 1

CORE_BONES: tuple[str, ...] = (
    "hips", "leftUpperLeg", "leftLowerLeg", "leftFoot", "rightUpperLeg", "rightLowerLeg", "rightFoot",
    "leftUpperArm", "leftLowerArm", "leftHand", "rightUpperArm", "rightLowerArm", "rightHand", "head",
)


def _need_data(p: Path) -> Path:
    if not p.exists():
        raise FileFormatError(f"the add-on's data is missing ({p}); install the zip made by "
                              "`understudy addon build`, not the bare source folder")
    return p


@lru_cache(maxsize=1)
def canonical_tree() -> tuple[tuple[str, ...], dict[str, str | None]]:
    """The 52 canonical joint names (parents first) and each one's canonical parent,
    read from the shipped ``canonical.toml`` skeleton."""
    data = tomllib.loads(_need_data(SKELETON_PATH).read_text(encoding="utf-8"))
    names, parent = [], {}
    for jd in data.get("joint", []):
        names.append(str(jd["name"]))
        parent[names[-1]] = jd.get("parent")
    return tuple(names), parent


@dataclass
class BoneMap:
    """``bones``: canonical name -> the rig's bone name; ``prefixes``/``ignore_case`` the
    ``[match]`` hints."""

    name: str
    bones: dict[str, str]
    description: str = ""
    prefixes: tuple[str, ...] = ()
    ignore_case: bool = False
    notes: dict[str, str] = field(default_factory=dict)

    def _key(self, n: str) -> str:
        f = n.casefold() if self.ignore_case else n
        best = ""
        for p in self.prefixes:
            fp = p.casefold() if self.ignore_case else p
            if f.startswith(fp) and len(fp) > len(best):
                best = fp
        return f[len(best):]

    def resolve(self, joint_names) -> dict[str, str]:
        """``{canonical: the rig's actual bone}`` for the bones found among ``joint_names``."""
        names = [str(n) for n in joint_names]
        exact = set(names)
        by_key: dict[str, list[str]] = {}
        if self.prefixes or self.ignore_case:
            for n in names:
                by_key.setdefault(self._key(n), []).append(n)
        out = {}
        for canon, rig in self.bones.items():
            if rig in exact:
                out[canon] = rig
            else:
                c = by_key.get(self._key(rig), [])
                if len(c) == 1:
                    out[canon] = c[0]
        return out


def parse_bonemap(text: str, where: str) -> BoneMap:
    """A :class:`BoneMap` from TOML text, checked (schema, version, keys, canonical
    names, no rig bone used twice); problems raise :class:`FileFormatError` starting with ``where``."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise FileFormatError(f"{where}: malformed TOML ({e})") from None
    if data.get("schema") != SCHEMA or data.get("schema_version") != SCHEMA_VERSION:
        raise FileFormatError(f"{where}: expected schema {SCHEMA!r} version {SCHEMA_VERSION}, got "
                              f"{data.get('schema')!r} version {data.get('schema_version')!r}")
    unknown = sorted(set(data) - {"schema", "schema_version", "name", "description", "match", "bones", "notes"})
    if unknown:
        raise FileFormatError(f"{where}: unknown key(s) {', '.join(unknown)}")
    bones = data.get("bones")
    if not isinstance(bones, dict) or not bones:
        raise FileFormatError(f"{where}: [bones] table is missing or empty")
    canon = set(canonical_tree()[0])
    for k, v in bones.items():
        if k not in canon:
            raise FileFormatError(f"{where}: [bones] {k} is not a canonical joint name")
        if not isinstance(v, str) or not v:
            raise FileFormatError(f"{where}: [bones] {k} must name a bone, got {v!r}")
    match = data.get("match", {})
    ignore_case = bool(match.get("ignore_case", False))
    seen: dict[str, str] = {}
    for k, v in bones.items():
        key = v.casefold() if ignore_case else v
        if key in seen:
            raise FileFormatError(f"{where}: [bones] {k} and {seen[key]} both name bone {v!r}")
        seen[key] = k
    if "name" not in data or not isinstance(data["name"], str):
        raise FileFormatError(f"{where}: 'name' is missing")
    return BoneMap(name=data["name"], bones=dict(bones), description=str(data.get("description", "")),
                   prefixes=tuple(match.get("prefixes", ())), ignore_case=ignore_case,
                   notes={str(k): str(v) for k, v in (data.get("notes") or {}).items()})


def load_bonemap(path: str | os.PathLike) -> BoneMap:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FileFormatError(f"no bone-map file at {path}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise FileFormatError(f"{path.name}: cannot read ({e})") from None
    return parse_bonemap(text, path.name)


def _q(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def dump_bonemap(m: BoneMap) -> str:
    """TOML text of ``m`` (schema v1, bones in canonical order), readable by :func:`parse_bonemap`
    and by ``retarget.bonemap.load_bonemap``."""
    order = {n: i for i, n in enumerate(canonical_tree()[0])}
    lines = [f"# Bone map saved by the Understudy Blender add-on. Schema {SCHEMA} v{SCHEMA_VERSION}; "
             "see docs/bonemaps.md.", f"schema = {_q(SCHEMA)}", f"schema_version = {SCHEMA_VERSION}",
             f"name = {_q(m.name)}"]
    if m.description:
        lines.append(f"description = {_q(m.description)}")
    if m.prefixes or m.ignore_case:
        lines += ["", "[match]"]
        if m.prefixes:
            lines.append("prefixes = [" + ", ".join(_q(p) for p in m.prefixes) + "]")
        if m.ignore_case:
            lines.append("ignore_case = true")
    lines += ["", "[bones]"] + [f"{k} = {_q(m.bones[k])}" for k in sorted(m.bones, key=order.__getitem__)]
    if m.notes:
        lines += ["", "[notes]"] + [f"{_q(k)} = {_q(v)}" for k, v in m.notes.items()]
    return "\n".join(lines) + "\n"


def save_bonemap(m: BoneMap, path: str | os.PathLike) -> Path:
    """Write ``m`` to ``path`` atomically (temporary file + rename)."""
    path = Path(path)
    if not path.parent.is_dir():
        raise FileFormatError(f"cannot write {path}: folder {path.parent} does not exist")
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
            f.write(dump_bonemap(m))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


@lru_cache(maxsize=1)
def _builtin() -> tuple[BoneMap, ...]:
    return tuple(load_bonemap(p) for p in sorted(_need_data(BONEMAP_DIR).glob("*.toml")))


def builtin_profiles() -> dict[str, BoneMap]:
    """The shipped profiles by name."""
    return {m.name: m for m in _builtin()}


def missing_core(m: BoneMap, joint_names) -> list[str]:
    found = m.resolve(joint_names)
    return [b for b in CORE_BONES if b not in found]


def detect_profile(joint_names, profiles=None) -> tuple[BoneMap, int]:
    """The shipped profile fitting ``joint_names`` best and the number of bones it finds;
    :class:`RigError` naming the closest profile's missing core bones when none fits."""
    names = [str(n) for n in joint_names]
    if not names:
        raise RigError("the armature has no bones")
    maps = sorted(profiles if profiles is not None else _builtin(), key=lambda m: m.name)
    ranked = []
    for m in maps:
        found = len(m.resolve(names))
        miss = missing_core(m, names)
        ranked.append(((not miss, found, found / len(m.bones)), m, miss, found))
    key, m, miss, found = max(ranked, key=lambda r: r[0])
    if miss:
        _, cm, cmiss, _ = max(ranked, key=lambda r: (-len(r[2]), r[3]))
        raise RigError(f"no bone map fits this rig: the closest, {cm.name!r}, lacks {', '.join(cmiss)}; "
                       "map the bones by hand in the Understudy panel or import a bone-map TOML")
    return m, found
