"""Headless rendering of a take: a character performs it, seen by the footage's camera.

What :func:`render_take` does, in order (pure Python; Blender runs only in the worker):

1. **retarget** the take's solved motion (``TAKE/motion.npz``) onto the character
   (:func:`retarget.retarget`); the character's root is then put on the performer's own
   floor path (the retargeted root path is scaled by the leg-length ratio; for a shot
   the character must stand where the performer stood). A character given as a preset
   name (``ada``, ``ben``, ``chen``, ``dara``) is generated at the performer's height.
2. **camera** (:func:`camera_from_take`): the take's intrinsics (focal length,
   principal point) and its pose in the solved world (the same lift that the solve used:
   :func:`mocap.root.lift_take`), so the character lands on the performer's pixels.
3. **render** (:func:`render_frames`): the character with its animation is written as a
   GLB (:func:`retarget.rig.export_glb`) and ``blender_addon/render_worker.py`` renders
   it in a **fresh process per chunk of frames** (``chunk_frames``, default 16): one long
   bpy process was seen here to slow down about 4x and to draw a skinned character
   exploded after some 90 frames. Each frame is a straight-alpha RGBA PNG (plus a
   multilayer EXR with depth and normals when passes are asked for). A non-zero worker
   exit, a timeout or a missing frame raises :class:`~mocap.errors.RenderError`.
4. **compose** (:mod:`mocap.compose`): over a grey studio backdrop, or with
   ``replace=True`` over a clean plate of the footage (performer removed), with a
   soft contact shadow; H.264 MP4 through :class:`mocap.overlay.VideoWriter`, plus the
   side-by-side video (original | synthetic actor).
5. **passes** (optional): ``pose/``, ``depth/``, ``normal/``, ``mask/`` PNG sequences
   (see :func:`write_passes` and docs/rendering.md).

Blender comes from the current Python when it has ``bpy`` (``pip install
'understudy[blender]'``), else from ``$UNDERSTUDY_BLENDER`` or a ``blender`` on PATH.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import FileFormatError, RenderError, UsageError

__all__ = [
    "ENGINES",
    "PASSES",
    "DEFAULT_ENGINE",
    "DEFAULT_SAMPLES",
    "WORKER",
    "Camera",
    "RenderOptions",
    "RenderedFrames",
    "blender_command",
    "camera_from_take",
    "render_frames",
    "render_take",
    "write_passes",
    "performer_height_m",
]

WORKER = Path(__file__).resolve().parent.parent / "blender_addon" / "render_worker.py"
ENGINES = ("cycles", "eevee", "workbench")
PASSES = ("pose", "depth", "normal", "mask")
DEFAULT_ENGINE = "cycles"
"""Measured here without a GPU (2 cores, 320x240, the generated character): Cycles at 16
samples about 0.5 s per frame, Workbench about 0.5 s (flat studio shading), Eevee about
20 s on software OpenGL; see docs/rendering.md."""
DEFAULT_SAMPLES = 16
_FRAME_PREFIX = "UNDERSTUDY_FRAME "
_RESULT_PREFIX = "UNDERSTUDY_RENDER "
_YUP_TO_ZUP = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])


@dataclass(frozen=True)
class Camera:
    """A pinhole camera in the world of a solved take.

    ``T_world_from_camera`` ``(4, 4)``: camera frame (+x right, +y up, +z towards the
    viewer, looking down -z) to world (+Y up, metres); ``fx, fy, cx, cy`` pixels of an
    image ``width`` x ``height``.
    """

    T_world_from_camera: np.ndarray
    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int

    def scaled(self, width: int, height: int) -> "Camera":
        """The same camera for an image of ``width`` x ``height`` (intrinsics scaled)."""
        sx, sy = width / self.width, height / self.height
        return Camera(self.T_world_from_camera, self.fx * sx, self.fy * sy, self.cx * sx, self.cy * sy,
                      int(width), int(height))

    def to_camera(self, p_world: np.ndarray) -> np.ndarray:
        """World points ``(..., 3)`` -> camera frame ``(..., 3)``."""
        R, t = self.T_world_from_camera[:3, :3], self.T_world_from_camera[:3, 3]
        return (np.asarray(p_world, float) - t) @ R

    def project(self, p_world: np.ndarray) -> np.ndarray:
        """Pixels ``(..., 2)`` (+y down) of world points ``(..., 3)``; NaN behind the camera."""
        pc = self.to_camera(p_world)
        d = -pc[..., 2]
        with np.errstate(divide="ignore", invalid="ignore"):
            u = self.cx + self.fx * pc[..., 0] / d
            v = self.cy - self.fy * pc[..., 1] / d
        uv = np.stack([u, v], axis=-1)
        return np.where((d > 1e-6)[..., None], uv, np.nan)

    def job(self, clip_end: float = 200.0) -> dict:
        return {"matrix_world": self.T_world_from_camera.tolist(), "fx": self.fx, "fy": self.fy, "cx": self.cx,
                "cy": self.cy, "width": self.width, "height": self.height, "clip_start": 0.05,
                "clip_end": clip_end}


@dataclass
class RenderOptions:
    """``engine`` (:data:`ENGINES`), ``samples`` (Cycles/Eevee), ``resolution``
    ``(W, H)`` or None (the footage's, long side at most 640), ``chunk_frames`` frames per
    worker process, ``passes`` subset of :data:`PASSES`, ``timeout_s`` per chunk,
    ``threads`` render threads (None: all cores), ``seed`` Cycles' noise seed."""

    engine: str = DEFAULT_ENGINE
    samples: int = DEFAULT_SAMPLES
    resolution: tuple[int, int] | None = None
    chunk_frames: int = 16
    passes: tuple[str, ...] = ()
    timeout_s: float = 900.0
    threads: int | None = None
    seed: int = 0

    def check(self) -> None:
        if self.engine not in ENGINES:
            raise UsageError(f"engine must be one of {', '.join(ENGINES)}, got {self.engine!r}")
        if not 1 <= int(self.samples) <= 4096:
            raise UsageError(f"samples must be between 1 and 4096, got {self.samples}")
        if int(self.chunk_frames) < 1:
            raise UsageError(f"chunk_frames must be at least 1, got {self.chunk_frames}")
        bad = [p for p in self.passes if p not in PASSES]
        if bad:
            raise UsageError(f"unknown pass(es) {bad}; choose from {', '.join(PASSES)}")
        if self.resolution is not None:
            w, h = self.resolution
            if not (16 <= w <= 8192 and 16 <= h <= 8192):
                raise UsageError(f"resolution must be between 16 and 8192 px a side, got {w}x{h}")


@dataclass
class RenderedFrames:
    """``png[i]`` the RGBA render of frame i, ``exr[i]`` its passes file (or None);
    ``seconds[i]`` Blender's time for it; ``chunks`` worker processes run."""

    png: list[Path]
    exr: list[Path | None]
    seconds: list[float]
    chunks: int
    info: dict = field(default_factory=dict)


def blender_command() -> list[str]:
    """The command that runs :data:`WORKER` (the job file is appended)."""
    if importlib.util.find_spec("bpy") is not None:
        return [sys.executable, str(WORKER)]
    exe = os.environ.get("UNDERSTUDY_BLENDER") or shutil.which("blender")
    if exe:
        return [exe, "--background", "--factory-startup", "--python-exit-code", "1", "--python", str(WORKER), "--"]
    raise RenderError("rendering needs Blender: install the blender extra (pip install 'understudy[blender]', "
                      "bpy 5.0.1), or put a `blender` executable on PATH or in $UNDERSTUDY_BLENDER")


def _reason(stderr: str) -> str:
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    ours = [ln for ln in lines if ln.startswith("render_worker: error:")]
    if ours:
        return ours[-1][len("render_worker: error:"):].strip()
    return lines[-1] if lines else "no message"


def _run_chunk(cmd: list[str], job: dict, work: Path, timeout_s: float, on_frame) -> dict:
    """One worker process over one chunk; returns its report, or raises RenderError."""
    jf = work / f"job_{job['frames'][0]:06d}.json"
    jf.write_text(json.dumps(job), encoding="utf-8")
    err_path = work / f"stderr_{job['frames'][0]:06d}.txt"
    t0 = time.monotonic()
    with open(err_path, "w+", encoding="utf-8", errors="replace") as err:
        try:
            proc = subprocess.Popen(cmd + [str(jf)], stdout=subprocess.PIPE, stderr=err, stdin=subprocess.DEVNULL,
                                    text=True, cwd=work, env=dict(os.environ, PYTHONWARNINGS="ignore"))
        except OSError as e:
            raise RenderError(f"cannot start Blender ({cmd[0]}): {e}") from None
        report = None
        try:
            for line in proc.stdout:
                if line.startswith(_FRAME_PREFIX):
                    on_frame(json.loads(line[len(_FRAME_PREFIX):]))
                elif line.startswith(_RESULT_PREFIX):
                    report = json.loads(line[len(_RESULT_PREFIX):])
                if time.monotonic() - t0 > timeout_s:
                    proc.kill()
                    raise RenderError(f"a render chunk took longer than {timeout_s:g} s; Blender was stopped")
            code = proc.wait(timeout=max(1.0, timeout_s - (time.monotonic() - t0)))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise RenderError(f"a render chunk took longer than {timeout_s:g} s; Blender was stopped") from None
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        err.seek(0)
        stderr = err.read()
    if code != 0:
        raise RenderError(f"Blender failed on frames {job['frames'][0]}-{job['frames'][-1]} (exit code {code}): "
                          f"{_reason(stderr)}")
    if report is None:
        raise RenderError(f"Blender exited 0 on frames {job['frames'][0]}-{job['frames'][-1]} without the "
                          f"worker's report; the render did not run to the end")
    return report


def render_frames(glb: str | os.PathLike, fps: float, n_frames: int, camera: Camera, options: RenderOptions,
                  out_dir: str | os.PathLike, *, frames: list[int] | None = None,
                  progress: bool = True, command: list[str] | None = None) -> RenderedFrames:
    """Render animation frames ``frames`` (default ``0..n_frames-1``) of the character
    ``glb`` with ``camera`` into ``out_dir``, one worker process per ``chunk_frames``.

    Every frame asked for must come back as a readable RGBA PNG of the asked size (and
    an EXR when ``options.passes``), else :class:`~mocap.errors.RenderError`.
    ``command`` overrides :func:`blender_command` (tests)."""
    options.check()
    cmd = command or blender_command()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    frames = list(range(n_frames)) if frames is None else [int(f) for f in frames]
    if not frames or min(frames) < 0 or max(frames) >= n_frames:
        raise UsageError(f"frames must lie in 0..{n_frames - 1}")
    W, H = camera.width, camera.height
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(frames), unit="frame", desc=f"render ({options.engine})", dynamic_ncols=True)
    seconds: dict[int, float] = {}

    def on_frame(rec):
        seconds[int(rec["frame"])] = float(rec.get("seconds", 0.0))
        if bar is not None:
            bar.update(1)

    chunks = [frames[i:i + options.chunk_frames] for i in range(0, len(frames), options.chunk_frames)]
    info: dict = {}
    try:
        with tempfile.TemporaryDirectory(prefix="understudy-render-") as work:
            for chunk in chunks:
                job = {"schema": "understudy.render_job", "schema_version": 1, "input": str(Path(glb).resolve()),
                       "fps": float(fps), "frames": chunk, "output_dir": str(out_dir.resolve()),
                       "engine": options.engine, "samples": int(options.samples), "resolution": [W, H],
                       "camera": camera.job(), "passes": bool(options.passes), "seed": int(options.seed),
                       "threads": options.threads}
                info = _run_chunk(cmd, job, Path(work), options.timeout_s, on_frame)
    finally:
        if bar is not None:
            bar.close()
    png, exr = [], []
    for f in frames:
        p = out_dir / f"frame_{f:06d}.png"
        if not p.is_file():
            raise RenderError(f"Blender exited 0 but frame {f} is missing ({p.name} was not written)")
        png.append(p)
        e = out_dir / f"frame_{f:06d}.exr"
        if options.passes and not e.is_file():
            raise RenderError(f"Blender exited 0 but the passes of frame {f} are missing ({e.name})")
        exr.append(e if options.passes else None)
    return RenderedFrames(png=png, exr=exr, seconds=[seconds.get(f, float("nan")) for f in frames],
                          chunks=len(chunks), info=info)


def read_rgba(path: Path, size: tuple[int, int]) -> np.ndarray:
    """A rendered frame as ``(H, W, 4)`` uint8 RGBA, checked against ``size`` ``(W, H)``."""
    import cv2

    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None or img.ndim != 3 or img.shape[2] != 4:
        raise RenderError(f"{path.name}: not an RGBA PNG (Blender wrote an unreadable or incomplete frame)")
    if (img.shape[1], img.shape[0]) != tuple(size):
        raise RenderError(f"{path.name} is {img.shape[1]}x{img.shape[0]}, asked for {size[0]}x{size[1]}")
    return cv2.cvtColor(img, cv2.COLOR_BGRA2RGBA)


# -- the take's camera and the character's placement ------------------------------------


def camera_from_take(take, motion=None) -> Camera:
    """The footage's camera in the solved motion's world: the take's intrinsics and the
    camera pose :func:`mocap.root.lift_take` found (with the field of view and root
    smoothing the motion was solved with, read from ``motion.meta``)."""
    from .root import lift_take
    from .take import Intrinsics

    opts = ((motion.meta or {}).get("solve") or {}).get("options", {}) if motion is not None else {}
    intr = None
    if opts.get("fov_deg") is not None:
        intr = Intrinsics.from_hfov(take.source.width, take.source.height, float(opts["fov_deg"]), source="user")
    _, info = lift_take(take, intrinsics=intr, smooth_s=float(opts.get("root_smooth_s", 0.05)))
    i = info["intrinsics"]
    return Camera(np.asarray(info["T_world_from_camera"], float), float(i.fx), float(i.fy), float(i.cx),
                  float(i.cy), int(take.source.width), int(take.source.height))


def performer_height_m(motion) -> float:
    """The performer's standing height, metres: the canonical 1.75 m scaled by the
    solved skeleton's hips-to-head plus leg length against the canonical one's."""
    from .skeleton import canonical_skeleton

    def span(sk):
        P = sk.rest_positions()
        names = sk.names
        need = ("hips", "head", "leftUpperLeg", "leftLowerLeg", "leftFoot")
        if not all(n in names for n in need):
            return None
        i = {n: names.index(n) for n in need}
        trunk = np.linalg.norm(P[i["head"]] - P[i["hips"]])
        leg = (np.linalg.norm(P[i["leftLowerLeg"]] - P[i["leftUpperLeg"]])
               + np.linalg.norm(P[i["leftFoot"]] - P[i["leftLowerLeg"]]))
        return trunk + leg

    a, b = span(motion.skeleton), span(canonical_skeleton())
    if a is None or b is None:
        return 1.75
    return float(np.clip(1.75 * a / b, 1.2, 2.2))


def _character(spec: str, motion, work: Path):
    """A :class:`retarget.rig.Rig` from a file, or generated from a preset name at the
    performer's height; returns ``(rig, description)``."""
    from retarget.rig import load_rig

    p = Path(spec)
    if p.suffix:
        if not p.is_file():
            raise UsageError(f"character {spec}: no such file")
        return load_rig(p), p.name
    from retarget.character import PRESETS, generate_character, save_character

    if spec not in PRESETS:
        raise UsageError(f"character {spec!r} is neither a file (.glb .gltf .vrm) nor a preset "
                         f"({', '.join(PRESETS)})")
    h = performer_height_m(motion)
    model = generate_character(preset=spec, height_m=h)
    path = save_character(model, work / f"{spec}.glb")
    return load_rig(path), f"generated character {spec!r} ({h:.2f} m, the performer's height)"


def place_on_performer(target_motion, source_motion):
    """``target_motion`` with its root's floor position (x, z) replaced by the source's
    (the performer's path); the height is the retargeted one (feet on the floor)."""
    from .motion import Motion

    root = np.array(target_motion.root_positions, float)
    root[:, 0] = source_motion.root_positions[:, 0]
    root[:, 2] = source_motion.root_positions[:, 2]
    return Motion(skeleton=target_motion.skeleton, rotations=target_motion.rotations, root_positions=root,
                  fps=target_motion.fps, timestamps=target_motion.timestamps,
                  local_offsets=target_motion.local_offsets, meta=target_motion.meta)


def _add_face(glb: Path, take_dir: Path, start_s: float) -> str:
    """The take's face curves onto the character's morph targets in ``glb``; one note."""
    from .face import load_face
    from .face_map import add_face_to_glb

    try:
        r = add_face_to_glb(glb, load_face(take_dir / "face.npz"), start_s=start_s)
    except UsageError as e:  # a character without face shapes: the body still plays
        return f"face not animated: {e}"
    return f"face: {len(r['targets'])} shape key(s) animated from {take_dir / 'face.npz'}"


def _foot_points(rig, motion) -> tuple[np.ndarray, np.ndarray]:
    """World positions of the character's foot points ``(T, F, 3)`` and hips ``(T, 3)``."""
    P, _ = motion.fk()
    names = motion.skeleton.names
    found = rig.bonemap.resolve(names) if rig.bonemap is not None else {}
    feet = [names.index(found[c]) for c in ("leftFoot", "rightFoot", "leftToes", "rightToes") if c in found]
    hips = names.index(found["hips"]) if "hips" in found else 0
    return P[:, feet], P[:, hips]


# -- footage ------------------------------------------------------------------------------


def iter_footage(take, indices: np.ndarray, size: tuple[int, int]):
    """Yield ``(k, rgb)`` for the take's source frames ``take.frame_index[indices[k]]``
    in order, each ``(H, W, 3)`` uint8 at ``size`` ``(W, H)``, decoding the source once
    from the first to the last; a frame the source no longer has raises FootageError."""
    import cv2

    from .errors import FootageError
    from .sources import open_source

    indices = np.asarray(indices)
    if take.source.kind == "camera":
        raise UsageError("the take was recorded live from a camera: there is no footage to replace the actor in")
    want = {int(take.frame_index[i]): k for k, i in enumerate(indices)}
    t0 = float(take.timestamps[indices[0]]) - 0.5
    t1 = float(take.timestamps[indices[-1]]) + 0.5
    got = 0
    with open_source(take.source.path) as src:
        for fr in src.frames(start=max(0.0, t0), end=t1):
            k = want.get(int(fr.index))
            if k is None:
                continue
            if k != got:
                break
            yield k, cv2.resize(fr.rgb, size, interpolation=cv2.INTER_AREA)
            got += 1
            if got == len(indices):
                return
    missing = int(take.frame_index[indices[got]])
    raise FootageError(f"{take.source.path}: source frame {missing} of the take is not in the footage any more")


def read_footage(take, indices: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """The take's source frames ``take.frame_index[indices]`` (increasing) as
    ``(n, H, W, 3)`` uint8 at ``size`` ``(W, H)``."""
    out = np.zeros((len(indices), size[1], size[0], 3), np.uint8)
    for k, rgb in iter_footage(take, indices, size):
        out[k] = rgb
    return out


# -- passes -------------------------------------------------------------------------------


def write_passes(out: Path, rendered: RenderedFrames, camera: Camera, keypoints: np.ndarray,
                 passes: tuple[str, ...]) -> dict:
    """The conditioning passes as PNG sequences, one folder per pass::

        out/pose/000000.png     OpenPose COCO-18 skeleton, RGB on black (ControlNet openpose)
        out/depth/000000.png    8-bit inverse depth, near = white, background black
        out/depth_mm/000000.png 16-bit depth in millimetres, 0 = background (with depth)
        out/normal/000000.png   RGB camera-space normals (red left, green up, blue front)
        out/mask/000000.png     8-bit character mask, 255 = character
        out/passes.json         what is where, the camera, the depth range

    ``keypoints`` ``(n, 18, 2)`` px of the performer at the render size. Returns the
    passes.json dict."""
    from .compose import depth_image, draw_openpose, normal_image
    from .render_exr import read_exr

    out.mkdir(parents=True, exist_ok=True)
    W, H = camera.width, camera.height
    n = len(rendered.png)
    need_exr = any(p in passes for p in ("depth", "normal"))

    def frame(i):
        """(mask, depth or None, camera-frame normals or None) of rendered frame i."""
        mask = read_rgba(rendered.png[i], (W, H))[..., 3] >= 128
        if not need_exr:
            return mask, None, None
        ch = read_exr(rendered.exr[i])
        try:
            z = ch["ViewLayer.Depth.Z"]
            nb = np.stack([ch["ViewLayer.Normal.X"], ch["ViewLayer.Normal.Y"], ch["ViewLayer.Normal.Z"]], -1)
        except KeyError as e:
            raise FileFormatError(f"{rendered.exr[i].name}: the render has no {e} pass") from None
        if z.shape != (H, W):
            raise RenderError(f"{rendered.exr[i].name}: passes are {z.shape[1]}x{z.shape[0]}, expected {W}x{H}")
        n_cam = (nb @ _YUP_TO_ZUP) @ camera.T_world_from_camera[:3, :3]  # Blender Z-up -> ours -> camera
        return mask, z, n_cam / np.maximum(np.linalg.norm(n_cam, axis=-1, keepdims=True), 1e-9)

    meta = {"schema": "understudy.passes", "schema_version": 1, "frames": n, "width": W, "height": H,
            "naming": "<pass>/<frame:06d>.png, frame 0 = the first rendered frame", "passes": {}}
    near = far = None
    if "depth" in passes:  # one range for the whole shot (no flicker): a first look at every frame
        rng = np.random.default_rng(0)
        vals = []
        for i in range(n):
            m, z, _ = frame(i)
            v = z[m]
            vals.append(v if len(v) <= 4000 else rng.choice(v, 4000, replace=False))
        vals = np.concatenate(vals) if sum(len(v) for v in vals) else np.array([1.0, 2.0])
        near, far = float(np.percentile(vals, 0.5)) * 0.97, float(np.percentile(vals, 99.5)) * 1.05
        meta["passes"]["depth"] = {"folder": "depth", "encoding": "uint8 inverse depth, 255 at near_m, 0 at far_m "
                                   "and background", "near_m": near, "far_m": far}
        meta["passes"]["depth_mm"] = {"folder": "depth_mm", "encoding": "uint16 distance along the camera axis "
                                      "in mm, 0 = background"}
    if "normal" in passes:
        meta["passes"]["normal"] = {"folder": "normal", "encoding": "RGB = ((1-x)/2, (1+y)/2, (1+z)/2) of the "
                                    "camera-frame normal (x right, y up, z to the viewer); background (128,128,255)"}
    if "mask" in passes:
        meta["passes"]["mask"] = {"folder": "mask", "encoding": "uint8, 255 = character (render alpha >= 0.5)"}
    if "pose" in passes:
        meta["passes"]["pose"] = {"folder": "pose", "encoding": "OpenPose COCO-18 in ControlNet's colours, "
                                  "from the performer's tracked 2D landmarks"}
    for folder in meta["passes"]:
        (out / folder).mkdir(exist_ok=True)
    stick = max(2, round(4 * H / 512))
    for i in range(n):
        m, z, nc = frame(i) if ("depth" in passes or "normal" in passes or "mask" in passes) else (None, None, None)
        name = f"{i:06d}.png"
        if "depth" in passes:
            _imwrite(out / "depth" / name, depth_image(z, m, near, far))
            _imwrite(out / "depth_mm" / name, np.where(m, np.clip(np.round(z * 1000.0), 0, 65535), 0).astype(np.uint16))
        if "normal" in passes:
            _imwrite(out / "normal" / name, normal_image(nc, m))
        if "mask" in passes:
            _imwrite(out / "mask" / name, m.astype(np.uint8) * 255)
        if "pose" in passes:
            _imwrite(out / "pose" / name, draw_openpose(keypoints[i], (W, H), stick_px=stick))
    meta["camera"] = camera.job()
    (out / "passes.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    return meta


def _imwrite(path: Path, img: np.ndarray) -> None:
    import cv2

    if img.ndim == 3:
        img = cv2.cvtColor(img, cv2.COLOR_RGB2BGR)
    if not cv2.imwrite(str(path), img):
        raise RenderError(f"cannot write {path}")


# -- the whole shot -------------------------------------------------------------------------


def _studio_backdrop(W: int, H: int) -> np.ndarray:
    y = np.linspace(0.0, 1.0, H)[:, None, None]
    top, bottom = np.array([96.0, 100.0, 108.0]), np.array([52.0, 54.0, 58.0])
    return np.broadcast_to(np.round(top * (1 - y) + bottom * y), (H, W, 3)).astype(np.uint8).copy()


def _default_resolution(w: int, h: int, long_side: int = 640) -> tuple[int, int]:
    s = min(1.0, long_side / max(w, h))
    return (max(16, int(round(w * s / 2)) * 2), max(16, int(round(h * s / 2)) * 2))


def parse_frames(spec: str | None, n: int) -> tuple[int, int]:
    """``"A:B"`` (0-based, B exclusive, either side may be empty) -> ``(a, b)`` in 0..n."""
    if not spec:
        return 0, n
    try:
        a_s, b_s = spec.split(":")
        a = int(a_s) if a_s.strip() else 0
        b = int(b_s) if b_s.strip() else n
    except ValueError:
        raise UsageError(f"--frames must be A:B (e.g. 0:48), got {spec!r}") from None
    if not (0 <= a < b <= n):
        raise UsageError(f"--frames {spec}: the take has frames 0..{n - 1}, so need 0 <= A < B <= {n}")
    return a, b


@dataclass
class ShotResult:
    """Paths written and what was measured on the way."""

    shot: Path
    side_by_side: Path | None
    passes_dir: Path | None
    frames: int
    resolution: tuple[int, int]
    character: str
    seconds_per_frame: float
    chunks: int
    inpainted_share: float | None = None
    notes: list[str] = field(default_factory=list)
    frames_dir: Path | None = None


def render_take(take_dir: str | os.PathLike, character: str, output: str | os.PathLike, *,
                options: RenderOptions | None = None, frames: str | None = None, replace: bool = False,
                side_by_side: str | os.PathLike | None = None, passes_dir: str | os.PathLike | None = None,
                keep_frames: str | os.PathLike | None = None, face: bool = True,
                progress: bool = True) -> ShotResult:
    """Render the solved take ``take_dir`` performed by ``character`` (a file or a preset
    name) into the MP4 ``output``; see the module docstring for the steps.

    ``frames`` ``"A:B"`` limits the shot to take frames A..B-1. ``replace`` puts the
    character into the footage in place of the performer (needs the take's person masks)
    and writes ``side_by_side`` (default ``<output>_side_by_side.mp4``). With
    ``options.passes`` the passes go to ``passes_dir`` (default ``<output>_passes/``).
    ``keep_frames``: also keep the raw RGBA renders (and EXRs) in that folder.
    ``face``: animate the character's ARKit shape keys from the take's ``face.npz``
    (written by ``understudy solve``) when both exist.
    """
    from retarget.retarget import retarget
    from retarget.rig import export_glb

    from .compose import clean_plate, coco18_from_mediapipe, composite, contact_shadow
    from .motion_io import load_motion
    from .overlay import VideoWriter
    from .take import load_take

    opts = options or RenderOptions()
    opts.check()
    output = Path(output)
    if output.suffix.lower() not in (".mp4", ".mov", ".mkv"):
        raise UsageError(f"-o must be a video file (.mp4), got {output.name!r}")
    take = load_take(take_dir)
    mfile = Path(take_dir) / "motion.npz"
    if not mfile.is_file():
        raise FileFormatError(f"{take_dir} has no motion.npz: run `understudy solve {take_dir}` first")
    motion, _ = load_motion(mfile)
    if motion.n_frames != len(take):
        raise FileFormatError(f"{mfile} has {motion.n_frames} frames, the take {len(take)}: solve the take again")
    if replace and take.mask is None:
        raise UsageError(f"{take_dir} has no person masks: track it again with --segmentation to replace the actor")
    a, b = parse_frames(frames, len(take))
    notes: list[str] = []
    W, H = opts.resolution or _default_resolution(take.source.width, take.source.height)
    src_aspect = take.source.width / take.source.height
    if abs(W / H - src_aspect) > 0.02 * src_aspect:
        raise UsageError(f"--resolution {W}x{H} has another aspect ratio than the footage "
                         f"({take.source.width}x{take.source.height})")
    camera = camera_from_take(take, motion).scaled(W, H)
    sl = motion.slice(a, b)
    with tempfile.TemporaryDirectory(prefix="understudy-shot-") as work:
        work = Path(work)
        rig, desc = _character(character, motion, work)
        res = retarget(sl, rig)
        notes += res.notes
        moved = place_on_performer(res.motion, sl)
        glb = export_glb(rig, moved, work / "shot.glb")
        if face and (Path(take_dir) / "face.npz").is_file():
            notes.append(_add_face(glb, Path(take_dir), float(sl.timestamps[0])))
        frames_dir = Path(keep_frames) if keep_frames else work / "frames"
        rendered = render_frames(glb, motion.fps, b - a, camera, opts, frames_dir, progress=progress)
        feet, hips = _foot_points(rig, moved)
        idx = np.arange(a, b)
        ts = take.timestamps[idx]
        if replace:
            # the plate from at most 60 frames spread over the shot; the footage is then streamed
            pick = np.unique(np.linspace(a, b - 1, min(b - a, 60)).round().astype(int))
            masks = np.stack([take.mask.frame_resized(int(i), W, H) for i in pick])
            plate = clean_plate(read_footage(take, pick, (W, H)), masks)
            footage = iter_footage(take, idx, (W, H))
            background = plate.plate
            inpainted = plate.inpainted_share
            if inpainted > 0.0:
                notes.append(f"{100 * inpainted:.1f}% of the plate was never seen behind the performer and is "
                             "inpainted")
        else:
            footage, background, inpainted = None, _studio_backdrop(W, H), None
        sbs = None
        bar = None
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=b - a, unit="frame", desc="compose", dynamic_ncols=True)
        writer = VideoWriter(output, fps=motion.fps)
        sbs_writer = None
        if replace:
            sbs = Path(side_by_side) if side_by_side else output.with_name(output.stem + "_side_by_side.mp4")
            sbs_writer = VideoWriter(sbs, fps=motion.fps)
        try:
            for k in range(b - a):
                rgba = read_rgba(rendered.png[k], (W, H))
                shadow = contact_shadow(feet[k], hips[k], camera.project, (W, H))
                img = composite(background, rgba, shadow)
                writer.write(img, float(ts[k]))
                if sbs_writer is not None:
                    _, original = next(footage)
                    sbs_writer.write(np.concatenate([original, img], axis=1), float(ts[k]))
                if bar is not None:
                    bar.update(1)
        except BaseException:
            writer.abort()
            if sbs_writer is not None:
                sbs_writer.abort()
            raise
        finally:
            if bar is not None:
                bar.close()
            if footage is not None:
                footage.close()  # the decoder of the source
        writer.close()
        if sbs_writer is not None:
            sbs_writer.close()
        pdir = None
        if opts.passes:
            pdir = Path(passes_dir) if passes_dir else output.with_name(output.stem + "_passes")
            kp = coco18_from_mediapipe(take.pose_image[idx], take.pose_visibility[idx])
            kp = kp * np.array([W / take.source.width, H / take.source.height])
            write_passes(pdir, rendered, camera, kp, tuple(opts.passes))
    spf = float(np.nanmean(rendered.seconds)) if rendered.seconds else float("nan")
    return ShotResult(shot=output, side_by_side=sbs, passes_dir=pdir, frames=b - a, resolution=(W, H),
                      character=desc, seconds_per_frame=spf, chunks=rendered.chunks, inpainted_share=inpainted,
                      notes=notes, frames_dir=Path(keep_frames) if keep_frames else None)


__all__ += ["ShotResult", "parse_frames", "read_rgba", "read_footage", "iter_footage", "place_on_performer"]
