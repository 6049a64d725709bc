"""FBX export through Blender in a worker process (this module never imports bpy).

FBX is a closed format; the one free writer that games engines and DCC tools agree
with is Blender's. :func:`export_fbx` hands Blender what we already write well: the
character with its animation as a GLB (:func:`retarget.rig.export_glb`), and runs
``blender_addon/fbx_worker.py`` on it in a separate process:

* with the current Python when it has ``bpy`` (``pip install understudy[blender]``),
* else with a ``blender`` executable (``$UNDERSTUDY_BLENDER``, or ``blender`` on the
  ``PATH``) as ``blender --background --factory-startup --python fbx_worker.py``.

A character without a skinned mesh (a BVH skeleton, a VRM whose humanoid is bare nodes)
goes as a BVH instead (:func:`mocap.bvh.save_bvh`): Blender's glTF importer would make
its joints empties, not bones. Its FBX holds the armature and the animation, no meshes.

The run cannot lie (STYLE item 10): a non-zero exit raises
:class:`~mocap.errors.RenderError` with the worker's one-line reason; so does a missing,
empty or non-FBX file, or a worker report that does not match the motion (a rig joint
without a bone, another frame count). The worker writes a hidden temporary file beside
``path`` which is renamed into place only after these checks, so a failed or
interrupted export never leaves a file at ``path``.

Conventions of the file: Blender's FBX defaults (Y up, -Z forward; FBX 7.4 binary),
the animation baked on every frame without curve simplification, no leaf bones, one
take spanning the motion. Blender may shorten bone names longer than 63 bytes.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from mocap.errors import FileFormatError, RenderError, UsageError
from mocap.motion import Motion

__all__ = ["export_fbx", "blender_command", "WORKER", "FBX_MAGIC"]

WORKER = Path(__file__).resolve().parent.parent / "blender_addon" / "fbx_worker.py"
"""The worker script (stdlib + bpy only)."""
FBX_MAGIC = b"Kaydara FBX Binary  \x00"
"""The first 21 bytes of every binary FBX file."""
_RESULT_PREFIX = "UNDERSTUDY_FBX "


def blender_command() -> list[str]:
    """The command that runs :data:`WORKER` (the job file is appended), or
    :class:`~mocap.errors.RenderError` saying how to get Blender."""
    if importlib.util.find_spec("bpy") is not None:
        return [sys.executable, str(WORKER)]
    exe = os.environ.get("UNDERSTUDY_BLENDER") or shutil.which("blender")
    if exe:
        return [exe, "--background", "--factory-startup", "--python-exit-code", "1", "--python", str(WORKER), "--"]
    raise RenderError("FBX export needs Blender: install the blender extra (pip install 'understudy[blender]', "
                      "bpy 5.0.1), or put a `blender` executable on PATH or in $UNDERSTUDY_BLENDER")


def _reason(stderr: str) -> str:
    """The worker's one-line reason: its ``fbx_worker: error:`` line, else the last line."""
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    ours = [ln for ln in lines if ln.startswith("fbx_worker: error:")]
    if ours:
        return ours[-1][len("fbx_worker: error:"):].strip()
    return lines[-1] if lines else "no message"


def export_fbx(rig, motion: Motion, path: str | os.PathLike, *, timeout_s: float = 600.0) -> Path:
    """Write the character ``rig`` animated by ``motion`` (on ``rig.skeleton``: retarget
    first) as a binary FBX at ``path``; returns the path.

    Raises :class:`~mocap.errors.UsageError` for a wrong argument or a path not ending in
    ``.fbx``, :class:`~mocap.errors.RenderError` when Blender is missing, fails, times
    out (``timeout_s``) or reports something other than the motion, and
    :class:`~mocap.errors.FileFormatError` when the file it wrote is not an FBX.
    """
    from mocap.bvh import save_bvh

    from .rig import Rig, export_glb

    if not isinstance(rig, Rig):
        raise UsageError(f"export_fbx needs a Rig, got {type(rig).__name__}")
    if not isinstance(motion, Motion):
        raise UsageError(f"export_fbx needs a Motion, got {type(motion).__name__}")
    path = Path(path)
    if path.suffix.lower() != ".fbx":
        raise UsageError(f"cannot write {path}: an FBX file name must end in .fbx")
    if not path.parent.is_dir():
        raise UsageError(f"cannot write {path}: folder {path.parent} does not exist")
    if not motion.skeleton.same_topology(rig.skeleton):
        raise UsageError(f"the motion's skeleton ({len(motion.skeleton)} joints, root "
                         f"{motion.skeleton.names[0]!r}) is not this rig's ({rig.n_joints} joints); "
                         f"retarget the motion onto rig.skeleton first")
    cmd = blender_command()
    # Blender's glTF importer makes an armature of skin joints only: a character without a
    # skinned mesh (a BVH, a node-only VRM) goes as a BVH, which Blender imports as bones
    skeleton_only = not any(m.skinned and m.joints is not None for m in rig.meshes)
    fd, tmp_out = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp.fbx")
    os.close(fd)
    try:
        with tempfile.TemporaryDirectory(prefix="understudy-fbx-") as work:
            work = Path(work)
            if skeleton_only:
                src = save_bvh(motion, work / "character.bvh")
            else:
                src = export_glb(rig, motion, work / "character.glb")
            job = {"schema": "understudy.fbx_job", "schema_version": 1, "input": str(src),
                   "output": tmp_out, "fps": float(motion.fps), "frames": int(motion.n_frames)}
            (work / "job.json").write_text(json.dumps(job, indent=1), encoding="utf-8")
            try:
                r = subprocess.run(cmd + [str(work / "job.json")], capture_output=True, text=True,
                                   timeout=timeout_s, cwd=work, stdin=subprocess.DEVNULL)
            except subprocess.TimeoutExpired:
                raise RenderError(f"FBX export of {path.name} took longer than {timeout_s:g} s; "
                                  f"Blender was stopped") from None
            except OSError as e:
                raise RenderError(f"cannot start Blender ({cmd[0]}): {e}") from None
        if r.returncode != 0:
            raise RenderError(f"Blender could not export {path.name} (exit code {r.returncode}): "
                              f"{_reason(r.stderr)}")
        _check(Path(tmp_out), r.stdout, rig, motion, path)
        os.chmod(tmp_out, 0o644)
        os.replace(tmp_out, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp_out)
        raise
    return path


def _check(out: Path, stdout: str, rig, motion: Motion, path: Path) -> None:
    """The FBX exists, is an FBX, and the worker's report matches the motion."""
    size = out.stat().st_size if out.is_file() else 0
    if size == 0:
        raise RenderError(f"Blender exited 0 but wrote no FBX for {path.name}")
    with open(out, "rb") as f:
        head = f.read(len(FBX_MAGIC))
    if head != FBX_MAGIC:
        raise FileFormatError(f"Blender wrote {size} bytes for {path.name} that are not a binary FBX")
    lines = [ln for ln in stdout.splitlines() if ln.startswith(_RESULT_PREFIX)]
    if not lines:
        raise RenderError(f"Blender exited 0 without the worker's report for {path.name}; "
                          f"the export did not run to the end")
    info = json.loads(lines[-1][len(_RESULT_PREFIX):])
    frames = info["frame_end"] - info["frame_start"] + 1
    if frames != motion.n_frames:
        raise RenderError(f"{path.name}: Blender baked {frames} frames, the motion has {motion.n_frames}")
    bones = set(info["bones"])
    missing = [n for n in rig.skeleton.names if n not in bones and n[:63] not in bones]
    if missing:
        raise RenderError(f"{path.name}: the FBX armature lacks {len(missing)} of the rig's joints, "
                          f"e.g. {missing[:5]}")
