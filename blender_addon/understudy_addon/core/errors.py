"""The add-on's errors: the names of :mod:`mocap.errors` (which the add-on cannot import
inside Blender). Operators turn every :class:`UnderstudyError` into ``self.report``."""

from __future__ import annotations


class UnderstudyError(Exception):
    """An error a user can cause and fix (bad file, rig without the needed bones)."""


class FileFormatError(UnderstudyError):
    """A file the add-on reads (motion.npz, BVH, CSV, TOML) is malformed or of an unknown version."""


class RigError(UnderstudyError):
    """The armature cannot be driven (e.g. it lacks the bones a humanoid needs)."""


class UsageError(UnderstudyError):
    """The operator was asked for something contradictory (no armature selected, ...)."""
