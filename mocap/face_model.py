"""Model-based face coefficients: MediaPipe Tasks FaceLandmarker's blendshape network.

``understudy face TAKE --face-model face_landmarker.task`` (and ``solve --face-model``)
runs Google's ``face_landmarker.task`` (a zip holding a face detector, the landmark
network and ``face_blendshapes.tflite``) on the take's own footage frames and takes its
52 ARKit-named blendshape scores. The file is the user's: Understudy never downloads it.

The network's scores are calibrated like the geometric ones (:func:`combine`): the
performer's neutral level is subtracted and the rest rescaled to 0..1,
``c = clip((m - m_neutral) / (1 - m_neutral), 0, 1)``, then the per-performer gains of
:func:`mocap.face.performer_gains` apply. MediaPipe's network leaves ``cheekPuff``,
``eyeWide*`` and ``noseSneer*`` near zero on most faces, so those columns come from the
geometric solver (:data:`GEOMETRIC_SHAPES`); blinks take the larger of the two (the
network often stops short of a shut eye: 0.57 at most on the left eye of the close-up
test clip); ``tongueOut`` stays 0 (the network has no
tongue output, ``_neutral`` is dropped).

``mediapipe`` is imported only when the model runs.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from .errors import FootageError, ModelFileError
from .face import ARKIT_SHAPES

__all__ = ["GEOMETRIC_SHAPES", "check_model_file", "model_blendshapes", "combine"]

GEOMETRIC_SHAPES: tuple[str, ...] = ("cheekPuff", "eyeWideLeft", "eyeWideRight", "noseSneerLeft", "noseSneerRight")
"""Shapes the network barely moves; the combined track takes them from geometry."""
BLINKS: tuple[str, ...] = ("eyeBlinkLeft", "eyeBlinkRight")
"""Shapes where the combined track takes the larger of the network's and geometry's value."""


def check_model_file(path) -> Path:
    """The path of a usable ``face_landmarker.task``, or :class:`ModelFileError` saying
    what is wrong (missing, not a MediaPipe task bundle, no blendshape model inside)."""
    p = Path(path)
    if not p.is_file():
        raise ModelFileError(f"--face-model {p}: no such file (the MediaPipe face landmarker model, "
                             "face_landmarker.task, from Google's MediaPipe model page)")
    try:
        with zipfile.ZipFile(p) as z:
            names = set(z.namelist())
    except (zipfile.BadZipFile, OSError) as e:
        raise ModelFileError(f"--face-model {p}: not a MediaPipe .task bundle (a zip archive): {e}") from None
    if "face_blendshapes.tflite" not in names or "face_landmarks_detector.tflite" not in names:
        raise ModelFileError(f"--face-model {p}: this .task bundle has no face landmarker with blendshapes "
                             f"(it holds {sorted(names)}); use face_landmarker.task")
    return p


def model_blendshapes(take, model_path, *, footage=None, progress: bool = False) -> np.ndarray:
    """``(T, 52)`` the network's scores (columns :data:`~mocap.face.ARKIT_SHAPES`) on the
    take's frames, NaN rows where it found no face.

    Frames are read again from ``footage`` (default: the take's source path) and matched
    to the take by their index in the decoded source (``take.frame_index``). Raises
    :class:`ModelFileError` for a bad model file and :class:`FootageError` when the
    footage is gone.
    """
    from .sources import open_source
    from .tracking import native_log_filter

    path = check_model_file(model_path)
    src_path = footage or take.source.path
    if not src_path or take.source.kind == "camera":
        raise FootageError("the take's footage is not a file (recorded from a camera?): the face model needs "
                           "the frames again; pass the footage explicitly")
    if not Path(str(src_path)).exists():
        raise FootageError(f"the take's footage {src_path} is not there any more; the face model needs its frames")
    import mediapipe as mp
    from mediapipe.tasks.python import BaseOptions
    from mediapipe.tasks.python.vision import FaceLandmarker, FaceLandmarkerOptions, RunningMode

    col = {n: i for i, n in enumerate(ARKIT_SHAPES)}
    T = len(take)
    out = np.full((T, len(ARKIT_SHAPES)), np.nan)
    row_of = {int(fi): k for k, fi in enumerate(np.asarray(take.frame_index))}
    still = take.source.kind == "image"
    opts = FaceLandmarkerOptions(base_options=BaseOptions(model_asset_path=str(path)),
                                 running_mode=RunningMode.IMAGE if still else RunningMode.VIDEO,
                                 output_face_blendshapes=True, num_faces=1)
    bar = None
    last_ms = -1
    try:
        with native_log_filter() as console:
            try:
                landmarker = FaceLandmarker.create_from_options(opts)
            except (RuntimeError, ValueError) as e:
                raise ModelFileError(f"--face-model {path}: MediaPipe cannot load it ({e})") from None
            if progress:
                from tqdm import tqdm

                bar = tqdm(total=T, unit="frame", desc="face model", dynamic_ncols=True, file=console)
            with landmarker, open_source(src_path) as src:
                for fr in src.frames():
                    k = row_of.get(int(fr.index))
                    if k is None:
                        continue
                    img = mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(fr.rgb))
                    if still:
                        res = landmarker.detect(img)
                    else:
                        ms = max(int(round(fr.t * 1000)), last_ms + 1)
                        last_ms = ms
                        res = landmarker.detect_for_video(img, ms)
                    if res.face_blendshapes:
                        for c in res.face_blendshapes[0]:
                            if c.category_name in col:
                                out[k, col[c.category_name]] = c.score
                        out[k, col["tongueOut"]] = 0.0
                    if bar is not None:
                        bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    return out


def combine(model: np.ndarray, geometric: np.ndarray, neutral_frames: np.ndarray | None,
            valid: np.ndarray) -> np.ndarray:
    """Calibrated model curves ``(T, 52)``: the model's neutral level (median over
    ``neutral_frames``, or its 5th percentile when the neutral came from another take)
    is subtracted and the rest rescaled to 0..1; :data:`GEOMETRIC_SHAPES` come from
    ``geometric`` ``(T, 52)``; frames where the model found no face take the geometric
    values."""
    m = np.array(model, dtype=float)
    ok = np.isfinite(m).all(axis=1) & valid
    if not ok.any():
        return np.array(geometric, dtype=float)
    if neutral_frames is not None and ok[neutral_frames].sum() >= 3:
        base = np.median(m[neutral_frames][ok[neutral_frames]], axis=0)
    else:
        base = np.percentile(m[ok], 5, axis=0)
    base = np.clip(base, 0, 0.9)
    c = np.clip((m - base) / (1 - base), 0, 1)
    out = np.where(ok[:, None], c, geometric)
    for n in GEOMETRIC_SHAPES:
        j = ARKIT_SHAPES.index(n)
        out[:, j] = geometric[:, j]
    for n in BLINKS:  # lid closure is seen directly; the network often stops short of a shut eye
        j = ARKIT_SHAPES.index(n)
        out[:, j] = np.maximum(out[:, j], geometric[:, j])
    out[:, ARKIT_SHAPES.index("tongueOut")] = 0.0
    return out
