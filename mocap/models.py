"""MediaPipe model files: where legacy Holistic looks for them, and installing them.

The mediapipe 0.10.21 wheel carries the *full* pose landmark model
(``model_complexity=1``). ``model_complexity`` 0 and 2 need ``pose_landmark_lite.tflite``
and ``pose_landmark_heavy.tflite`` next to it; upstream would download them from the
internet on first use, which Understudy never does. Get them from the npm package
``@mediapipe/pose@0.5.1675469404`` (``npm pack``, then take ``package/*.tflite``) or any
folder that has them, and run ``understudy models install --from FOLDER_OR_TGZ``.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
import tempfile
from pathlib import Path

from .errors import ModelFileError

__all__ = ["POSE_MODELS", "pose_model_dir", "pose_model_path", "require_pose_model", "install_pose_models"]

POSE_MODELS = {
    0: "pose_landmark_lite.tflite",
    1: "pose_landmark_full.tflite",
    2: "pose_landmark_heavy.tflite",
}
# sha256 prefixes of the files that match mediapipe 0.10.21 (see ../shared/SOURCES.md)
_SHA256_PREFIX = {
    "pose_landmark_lite.tflite": "f17bfbecadb61c3b",
    "pose_landmark_heavy.tflite": "59e42d71bcd44cbd",
}
HOW_TO_GET = (
    "get it from the npm package @mediapipe/pose@0.5.1675469404 "
    "(`npm pack @mediapipe/pose@0.5.1675469404`, the .tflite files are in package/) and run "
    "`understudy models install --from FOLDER_OR_TGZ`"
)


def pose_model_dir() -> Path:
    """The folder of the installed mediapipe package where Holistic looks for pose models."""
    import importlib.util

    spec = importlib.util.find_spec("mediapipe")
    if spec is None or not spec.submodule_search_locations:
        raise ModelFileError("mediapipe is not installed in this environment")
    return Path(list(spec.submodule_search_locations)[0]) / "modules" / "pose_landmark"


def pose_model_path(model_complexity: int) -> Path:
    if model_complexity not in POSE_MODELS:
        raise ModelFileError(f"model complexity must be 0, 1 or 2, got {model_complexity!r}")
    return pose_model_dir() / POSE_MODELS[model_complexity]


def require_pose_model(model_complexity: int) -> Path:
    """Path of the pose model for ``model_complexity``; a clear error if it is missing."""
    path = pose_model_path(model_complexity)
    if not path.is_file():
        raise ModelFileError(
            f"--model-complexity {model_complexity} needs {path.name}, which is not in {path.parent}; "
            + HOW_TO_GET)
    return path


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def install_pose_models(source: str | os.PathLike, *, dest: Path | None = None) -> list[Path]:
    """Copy the lite/heavy pose models from a folder or an npm ``.tgz`` into mediapipe.

    Each file's checksum is verified against the one that matches mediapipe 0.10.21.
    Returns the installed paths; raises :class:`ModelFileError` if none were found.
    """
    source = Path(source)
    dest = dest or pose_model_dir()
    if not source.exists():
        raise ModelFileError(f"no such file or folder: {source}")
    with tempfile.TemporaryDirectory() as tmp:
        if source.is_file():
            try:
                with tarfile.open(source) as tf:
                    members = [m for m in tf.getmembers() if Path(m.name).name in _SHA256_PREFIX and m.isfile()]
                    for m in members:
                        f = tf.extractfile(m)
                        if f is None:
                            raise ModelFileError(f"{source}: cannot read {m.name}")
                        (Path(tmp) / Path(m.name).name).write_bytes(f.read())
            except tarfile.TarError as e:
                raise ModelFileError(f"{source} is not a folder or a .tgz archive ({e})") from None
            folder = Path(tmp)
        else:
            folder = source
        installed = []
        for name, prefix in _SHA256_PREFIX.items():
            src = folder / name
            if not src.is_file():
                continue
            digest = _sha256(src)
            if not digest.startswith(prefix):
                raise ModelFileError(f"{src} has sha256 {digest[:16]}..., expected {prefix}...: "
                                     "not the model that matches mediapipe 0.10.21")
            dest.mkdir(parents=True, exist_ok=True)
            target = dest / name
            part = dest / (name + ".part")
            shutil.copyfile(src, part)
            os.replace(part, target)
            installed.append(target)
    if not installed:
        raise ModelFileError(f"{source} holds neither {' nor '.join(_SHA256_PREFIX)}")
    return installed
