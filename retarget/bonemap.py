"""Bone maps: which bone of a rig (or joint of a BVH file) plays each canonical joint.

Rig knowledge is data. A bone map is a small TOML file; the shipped profiles live in
``assets/bonemaps/`` and a new rig convention is a new file (and a test), not new code.
The canonical names are the 52 joint names of :mod:`mocap.skeleton` (the VRM 1.0
humanoid bone names: ``hips``, ``leftUpperArm``, ``rightIndexProximal``, ...).

File format (schema ``understudy.bonemap``, version 1)
------------------------------------------------------
::

    schema = "understudy.bonemap"      # required, exactly this
    schema_version = 1                 # required, exactly 1
    name = "mixamo"                    # required: the profile's name (the shipped ones
                                       # are named after their file)
    description = "Adobe Mixamo ..."   # optional, one line for humans

    [match]                            # optional hints for matching a rig's names
    prefixes = ["mixamorig:", "mixamorig1:"]  # namespace prefixes a rig's names may
                                       # carry (or lack): "mixamorig1:Hips" and "Hips"
                                       # both match "mixamorig:Hips"
    ignore_case = false                # compare names case-insensitively

    [bones]                            # required: canonical name = the rig's name
    hips = "mixamorig:Hips"
    leftUpperArm = "mixamorig:LeftArm"

    [notes]                            # optional: free text, string values only
    general = "..."
    spine = "..."                      # by convention, per-bone remarks use the bone's
                                       # canonical name as key

Rules, checked by :func:`load_bonemap` (a violation raises
:class:`~mocap.errors.FileFormatError` naming the file and the key):

* no top-level keys other than the ones above, no ``[match]`` keys other than
  ``prefixes`` and ``ignore_case``;
* every key of ``[bones]`` is a canonical joint name; every value a non-empty string;
* no rig name is used twice (after the ``[match]`` normalisation: with
  ``ignore_case``, ``"Head"`` and ``"head"`` are the same name);
* a map names at least one bone. **Not every canonical bone must be mapped**: spine
  chains, necks and hands differ between conventions; a profile maps what its
  convention has. Only the :data:`CORE_BONES` are required *of a rig* (see
  :func:`required_missing`), and they are required by whoever uses the map, not by
  the file.

Matching a rig (:meth:`BoneMap.resolve`): a canonical bone is present when the rig has
a joint of exactly the mapped name; failing that, when exactly one of the rig's joints
has the same name after removing a listed prefix from both (and case-folding, with
``ignore_case``). Two candidate joints (a scene holding two characters) match neither.

Detection (:func:`detect_profile`) tries every profile and keeps, among those that find
all the core bones in the rig, the one that finds the most bones; ties go to the higher
share of the profile found, then to the profile whose name sorts first.

``import retarget.bonemap`` needs numpy and the standard library only.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType

from mocap.errors import FileFormatError, RigError, UsageError

__all__ = [
    "BONEMAP_DIR",
    "SCHEMA",
    "SCHEMA_VERSION",
    "CORE_BONES",
    "BoneMap",
    "canonical_names",
    "load_bonemap",
    "save_bonemap",
    "builtin_profiles",
    "detect_profile",
    "required_missing",
    "require_core",
]

BONEMAP_DIR = Path(__file__).resolve().parent.parent / "assets" / "bonemaps"
"""Where the shipped profiles live (one ``<name>.toml`` per profile)."""
SCHEMA = "understudy.bonemap"
SCHEMA_VERSION = 1

CORE_BONES: tuple[str, ...] = (
    "hips",
    "leftUpperLeg", "leftLowerLeg", "leftFoot",
    "rightUpperLeg", "rightLowerLeg", "rightFoot",
    "leftUpperArm", "leftLowerArm", "leftHand",
    "rightUpperArm", "rightLowerArm", "rightHand",
    "head",
)  # fmt: skip
"""The bones a humanoid rig must have for Understudy to drive it: the VRM required set
less ``spine`` (a rig may bend its back with bones we do not map one to one)."""

_TOP_KEYS = {"schema", "schema_version", "name", "description", "match", "bones", "notes"}
_MATCH_KEYS = {"prefixes", "ignore_case"}


@lru_cache(maxsize=1)
def canonical_names() -> tuple[str, ...]:
    """The 52 canonical joint names, in the canonical skeleton's order (parents first)."""
    from mocap.skeleton import canonical_skeleton

    return canonical_skeleton().names


class _InvalidError(Exception):
    """A bone-map problem; :func:`load_bonemap` adds the file, the constructor re-raises
    it as :class:`UsageError`."""


def _check_fields(name, description, bones, prefixes, ignore_case, notes) -> None:
    if not isinstance(name, str) or not name.strip():
        raise _InvalidError(f"'name' must be a non-empty string, got {name!r}")
    if not isinstance(description, str):
        raise _InvalidError(f"'description' must be a string, got {description!r}")
    if not isinstance(ignore_case, bool):
        raise _InvalidError(f"[match] ignore_case must be true or false, got {ignore_case!r}")
    for p in prefixes:
        if not isinstance(p, str) or not p:
            raise _InvalidError(f"[match] prefixes must be non-empty strings, got {p!r}")
    for k, v in notes.items():
        if not isinstance(k, str) or not isinstance(v, str):
            raise _InvalidError(f"[notes] {k!r}: values must be strings, got {v!r}")
    if not bones:
        raise _InvalidError("[bones] maps no bones")
    known = set(canonical_names())
    seen: dict[str, str] = {}
    for canon, rig in bones.items():
        if canon not in known:
            import difflib

            close = difflib.get_close_matches(str(canon), sorted(known), n=2)
            hint = f" (did you mean {' or '.join(map(repr, close))}?)" if close else ""
            raise _InvalidError(f"[bones] {canon!r} is not a canonical joint name{hint}")
        if not isinstance(rig, str) or not rig:
            raise _InvalidError(f"[bones] {canon}: the rig's name must be a non-empty string, got {rig!r}")
        key = _normal(rig, prefixes, ignore_case)
        if key in seen:
            raise _InvalidError(
                f"[bones] {canon} = {rig!r}: the rig name is already used by {seen[key]} "
                f"(= {bones[seen[key]]!r})"
            )
        seen[key] = canon


def _normal(name: str, prefixes: Iterable[str], ignore_case: bool) -> str:
    """``name`` without the longest listed prefix it starts with, case-folded if asked."""
    fold = (lambda s: s.casefold()) if ignore_case else (lambda s: s)  # noqa: E731
    n = fold(name)
    best = ""
    for p in prefixes:
        fp = fold(p)
        if n.startswith(fp) and len(fp) > len(best):
            best = fp
    return n[len(best):]


@dataclass(frozen=True, eq=True)
class BoneMap:
    """One rig convention's names for the canonical joints.

    ``bones`` maps canonical name -> the rig's bone (or BVH joint) name, read-only, in
    the order given. ``prefixes`` and ``ignore_case`` are the ``[match]`` hints (see the
    module docstring); ``notes`` free text; ``source`` the file it was read from (not
    part of equality). Construction checks everything :func:`load_bonemap` checks and
    raises :class:`~mocap.errors.UsageError`.
    """

    name: str
    bones: Mapping[str, str]
    source: Path | None = field(default=None, compare=False)
    description: str = ""
    prefixes: tuple[str, ...] = ()
    ignore_case: bool = False
    notes: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        bones = dict(self.bones)
        notes = dict(self.notes or {})
        prefixes = tuple(self.prefixes or ())
        try:
            _check_fields(self.name, self.description, bones, prefixes, self.ignore_case, notes)
        except _InvalidError as e:
            raise UsageError(f"bone map {self.name!r}: {e}") from None
        object.__setattr__(self, "bones", MappingProxyType(bones))
        object.__setattr__(self, "notes", MappingProxyType(notes))
        object.__setattr__(self, "prefixes", prefixes)
        if self.source is not None:
            object.__setattr__(self, "source", Path(self.source))

    __hash__ = None  # type: ignore[assignment]  # holds mappings

    def __len__(self) -> int:
        return len(self.bones)

    def _key(self, name: str) -> str:
        return _normal(name, self.prefixes, self.ignore_case)

    def resolve(self, joint_names: Iterable[str]) -> dict[str, str]:
        """The canonical bones this map finds among ``joint_names``: ``{canonical: the
        rig's actual name}``, in the map's order. Exact names first, then the
        ``[match]`` normalisation (a unique candidate only)."""
        names = [str(n) for n in joint_names]
        exact = set(names)
        by_key: dict[str, list[str]] = {}
        if self.prefixes or self.ignore_case:
            for n in names:
                by_key.setdefault(self._key(n), []).append(n)
        out: dict[str, str] = {}
        for canon, rig in self.bones.items():
            if rig in exact:
                out[canon] = rig
                continue
            cands = by_key.get(self._key(rig), [])
            if len(cands) == 1:
                out[canon] = cands[0]
        return out

    def to_canonical(self, joint_names: Iterable[str]) -> dict[str, str]:
        """``{the rig's name: canonical name}`` for the bones found, e.g. for
        :meth:`mocap.motion.Motion.rename`."""
        return {rig: canon for canon, rig in self.resolve(joint_names).items()}

    def __repr__(self) -> str:
        where = f", from {self.source.name}" if self.source else ""
        return f"BoneMap({self.name!r}, {len(self.bones)} bones{where})"


# -- reading ------------------------------------------------------------------------------


def load_bonemap(path: str | os.PathLike) -> BoneMap:
    """Read and check a bone-map TOML file (schema ``understudy.bonemap`` version 1, see
    the module docstring). Problems raise :class:`~mocap.errors.FileFormatError` whose
    message starts with the path and names the key, e.g.
    ``mixamo.toml: [bones] leftUpperArmm is not a canonical joint name (did you mean
    'leftUpperArm'?)``."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FileFormatError(f"no bone-map file at {path}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise FileFormatError(f"{path}: cannot read the bone map ({e})") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise FileFormatError(f"{path}: malformed TOML ({e})") from None
    try:
        return _from_dict(data, path)
    except _InvalidError as e:
        raise FileFormatError(f"{path}: {e}") from None


def _from_dict(data: dict, path: Path) -> BoneMap:
    if data.get("schema") != SCHEMA:
        raise _InvalidError(f"'schema' must be {SCHEMA!r}, got {data.get('schema')!r}")
    version = data.get("schema_version")
    if version != SCHEMA_VERSION or isinstance(version, bool):
        raise _InvalidError(
            f"'schema_version' {version!r} is not supported (this Understudy reads version {SCHEMA_VERSION})"
        )
    unknown = sorted(set(data) - _TOP_KEYS)
    if unknown:
        raise _InvalidError(f"unknown key(s) {', '.join(map(repr, unknown))} (allowed: {', '.join(sorted(_TOP_KEYS))})")
    if "name" not in data:
        raise _InvalidError("'name' is missing")
    match = data.get("match", {})
    if not isinstance(match, dict):
        raise _InvalidError(f"'match' must be a table, got {match!r}")
    unknown = sorted(set(match) - _MATCH_KEYS)
    if unknown:
        raise _InvalidError(f"[match] unknown key(s) {', '.join(map(repr, unknown))} (allowed: prefixes, ignore_case)")
    prefixes = match.get("prefixes", [])
    if isinstance(prefixes, str) or not isinstance(prefixes, list):
        raise _InvalidError(f"[match] prefixes must be a list of strings, got {prefixes!r}")
    bones = data.get("bones")
    if not isinstance(bones, dict):
        raise _InvalidError("[bones] table is missing" if bones is None else f"'bones' must be a table, got {bones!r}")
    notes = data.get("notes", {})
    if not isinstance(notes, dict):
        raise _InvalidError(f"'notes' must be a table, got {notes!r}")
    description = data.get("description", "")
    ignore_case = match.get("ignore_case", False)
    _check_fields(data["name"], description, bones, tuple(prefixes), ignore_case, notes)
    return BoneMap(name=data["name"], bones=bones, source=path, description=description,
                   prefixes=tuple(prefixes), ignore_case=ignore_case, notes=notes)


# -- writing ------------------------------------------------------------------------------

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")
_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}


def _toml_str(s: str) -> str:
    """A TOML basic string: quotes, backslashes and control characters escaped."""
    out = []
    for c in s:
        if c in _ESCAPES:
            out.append(_ESCAPES[c])
        elif ord(c) < 0x20 or ord(c) == 0x7F:
            out.append(f"\\u{ord(c):04X}")
        else:
            out.append(c)
    return '"' + "".join(out) + '"'


def _toml_key(k: str) -> str:
    return k if _BARE_KEY.match(k) else _toml_str(k)


def save_bonemap(bonemap: BoneMap, path: str | os.PathLike) -> Path:
    """Write ``bonemap`` as a version-1 TOML file; returns the path.

    The bones are written in canonical order (the order of :func:`canonical_names`), so
    a saved file reads like the shipped ones; :func:`load_bonemap` gives back an equal
    map. The file goes to a temporary file in the same folder and is renamed into place,
    so a failure never leaves half a file.
    """
    if not isinstance(bonemap, BoneMap):
        raise UsageError(f"save_bonemap needs a BoneMap, got {type(bonemap).__name__}")
    path = Path(path)
    if not path.parent.is_dir():
        raise UsageError(f"cannot write {path}: folder {path.parent} does not exist")
    order = {n: i for i, n in enumerate(canonical_names())}
    lines = [
        f"# Bone map: canonical (VRM humanoid) joint name = this rig's bone name. Schema {SCHEMA} v{SCHEMA_VERSION};",
        "# see docs/bonemaps.md.",
        f"schema = {_toml_str(SCHEMA)}",
        f"schema_version = {SCHEMA_VERSION}",
        f"name = {_toml_str(bonemap.name)}",
    ]
    if bonemap.description:
        lines.append(f"description = {_toml_str(bonemap.description)}")
    if bonemap.prefixes or bonemap.ignore_case:
        lines += ["", "[match]"]
        if bonemap.prefixes:
            lines.append(f"prefixes = [{', '.join(_toml_str(p) for p in bonemap.prefixes)}]")
        if bonemap.ignore_case:
            lines.append("ignore_case = true")
    lines += ["", "[bones]"]
    for canon in sorted(bonemap.bones, key=order.__getitem__):
        lines.append(f"{_toml_key(canon)} = {_toml_str(bonemap.bones[canon])}")
    if bonemap.notes:
        lines += ["", "[notes]"]
        lines += [f"{_toml_key(k)} = {_toml_str(v)}" for k, v in bonemap.notes.items()]
    text = "\n".join(lines) + "\n"

    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path


# -- the shipped profiles, detection -------------------------------------------------------


@lru_cache(maxsize=1)
def _builtin() -> tuple[BoneMap, ...]:
    maps = []
    for p in sorted(BONEMAP_DIR.glob("*.toml")):
        m = load_bonemap(p)
        if m.name != p.stem:
            raise FileFormatError(f"{p}: 'name' is {m.name!r} but a shipped profile must be named after its file")
        maps.append(m)
    return tuple(maps)


def builtin_profiles() -> dict[str, BoneMap]:
    """The shipped profiles in ``assets/bonemaps/``, by name, in name order (read once;
    the maps are immutable)."""
    return {m.name: m for m in _builtin()}


def _profiles_arg(profiles: Mapping[str, BoneMap] | Iterable[BoneMap] | None) -> list[BoneMap]:
    if profiles is None:
        return list(_builtin())
    if isinstance(profiles, Mapping):
        profiles = profiles.values()
    out = list(profiles)
    for m in out:
        if not isinstance(m, BoneMap):
            raise UsageError(f"profiles must be BoneMaps, got {type(m).__name__}")
    if not out:
        raise UsageError("no bone-map profiles to choose from")
    return out


def required_missing(bonemap: BoneMap, joint_names: Iterable[str]) -> list[str]:
    """The :data:`CORE_BONES` that ``bonemap`` does not find among ``joint_names``
    (canonical names, in core order); empty when the rig can be driven."""
    found = bonemap.resolve(joint_names)
    return [b for b in CORE_BONES if b not in found]


def _missing_text(bonemap: BoneMap, missing: list[str]) -> str:
    def one(b: str) -> str:
        rig = bonemap.bones.get(b)
        if rig is None:
            return f"{b} (not in the map)"
        return b if rig == b else f"{b} (as {rig!r})"

    return ", ".join(one(b) for b in missing)


def require_core(bonemap: BoneMap, joint_names: Iterable[str], *, what: str = "the rig") -> dict[str, str]:
    """:meth:`BoneMap.resolve`, raising :class:`~mocap.errors.RigError` that lists every
    missing core bone (with the name the map expected) when any is missing."""
    names = list(joint_names)
    missing = required_missing(bonemap, names)
    if missing:
        raise RigError(
            f"{what} lacks core bone(s) of bone map {bonemap.name!r}: {_missing_text(bonemap, missing)}; "
            f"it has {len(names)} joints: {_preview(names)}"
        )
    return bonemap.resolve(names)


def _preview(names: list[str], n: int = 12) -> str:
    head = ", ".join(names[:n])
    return head + (f", ... ({len(names) - n} more)" if len(names) > n else "")


def detect_profile(
    joint_names: Iterable[str],
    *,
    profiles: Mapping[str, BoneMap] | Iterable[BoneMap] | None = None,
) -> tuple[BoneMap, int]:
    """The profile that fits a rig's joint names best, and its score.

    Among the profiles (default: :func:`builtin_profiles`) that find every
    :data:`CORE_BONES` bone in ``joint_names``, the one that finds the most canonical
    bones; ties go to the larger share of the profile found, then to the name that
    sorts first. ``score`` is the number of canonical bones found (e.g. 26 for the cgspeed
    CMU files, of their 31 joints). No profile with all core bones raises
    :class:`~mocap.errors.RigError` naming the closest profile and its missing bones.
    """
    names = [str(n) for n in joint_names]
    if not names:
        raise RigError("cannot detect the bone map of a rig without joints")
    maps = sorted(_profiles_arg(profiles), key=lambda m: m.name)
    ranked = []
    for m in maps:
        found = len(m.resolve(names))
        missing = required_missing(m, names)
        ranked.append(((not missing, found, found / len(m)), m, missing, found))
    best = max(ranked, key=lambda r: r[0])  # max keeps the first of equals: name order
    _, m, missing, found = best
    if missing:
        closest = max(ranked, key=lambda r: (-len(r[2]), r[3]))
        _, cm, cmissing, _ = closest
        raise RigError(
            f"no bone map fits this rig: the closest, {cm.name!r}, lacks core bone(s) "
            f"{_missing_text(cm, cmissing)}; the rig's {len(names)} joints: {_preview(names)}. "
            f"Write a bone map for it (docs/bonemaps.md)"
        )
    return m, found
