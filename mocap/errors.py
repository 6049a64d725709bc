"""One error tree for all of Understudy.

Every failure a user can cause (bad footage, no person in frame, a rig without the
bones we need, a malformed file) raises a subclass of :class:`UnderstudyError` with a
message that names the offending value. The CLI turns these into one line on stderr
and a non-zero exit code; the Blender add-on turns them into ``self.report``.
Anything that is *not* an ``UnderstudyError`` is a bug in Understudy and keeps its
traceback.
"""

from __future__ import annotations

__all__ = [
    "UnderstudyError",
    "FootageError",
    "CameraError",
    "TrackingError",
    "ModelFileError",
    "TakeFormatError",
    "SolveError",
    "RigError",
    "FileFormatError",
    "RenderError",
    "UsageError",
]


class UnderstudyError(Exception):
    """Base class of every error Understudy raises on purpose.

    ``exit_code`` is what the CLI exits with (2 for usage problems, 1 otherwise).
    """

    exit_code = 1


class UsageError(UnderstudyError):
    """The command line or a function call asked for something contradictory."""

    exit_code = 2


class FootageError(UnderstudyError):
    """A video, image sequence or still cannot be read (missing, not video, empty, corrupt)."""


class CameraError(FootageError):
    """A live camera (index or device path) cannot be opened or stopped delivering frames."""


class TrackingError(UnderstudyError):
    """MediaPipe could not run or found nothing usable (e.g. no person in any frame)."""


class ModelFileError(TrackingError):
    """A model file MediaPipe needs is missing or is not the right kind of file."""


class FileFormatError(UnderstudyError):
    """A file Understudy reads (take, BVH, GLB, TOML, CSV) is malformed or of an unknown version."""


class TakeFormatError(FileFormatError):
    """A take folder is missing files, has an unknown schema version or inconsistent arrays."""


class SolveError(UnderstudyError):
    """Landmarks could not be turned into a skeletal motion."""


class RigError(UnderstudyError):
    """A character rig cannot be used (e.g. it lacks the bones a humanoid needs)."""


class RenderError(UnderstudyError):
    """Blender failed, exited non-zero, or produced missing or incomplete frames."""
