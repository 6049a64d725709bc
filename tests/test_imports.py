"""The core imports without Blender, cameras or MediaPipe, and quickly."""

import subprocess
import sys
import textwrap

CHECK = textwrap.dedent(
    """
    import importlib.abc, sys, time

    class NoBlender(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("bpy", "mathutils", "bmesh"):
                raise ImportError(name + " blocked")
            return None

    sys.meta_path.insert(0, NoBlender())
    t = time.perf_counter()
    import mocap, mocap.take, mocap.glossary, mocap.landmarks, mocap.errors, mocap.cli  # noqa
    import mocap.tracking, mocap.sources, mocap.overlay, mocap.models  # noqa
    import retarget  # noqa
    dt = time.perf_counter() - t
    heavy = sorted(m for m in ("bpy", "mediapipe", "cv2", "av", "dask", "mathutils", "scipy") if m in sys.modules)
    print(heavy, round(dt, 3))
    """
)


def test_core_imports_without_blender_or_heavy_libraries():
    out = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True, check=True)
    heavy, seconds = out.stdout.rsplit(" ", 1)
    assert heavy == "[]", f"importing the core pulled in {heavy}"
    assert float(seconds) < 1.0


def test_cli_help_lists_each_command():
    out = subprocess.run([sys.executable, "-m", "mocap.cli", "--help"], capture_output=True, text=True, check=True)
    for cmd in ("track", "info", "demo", "models"):
        assert cmd in out.stdout
    out = subprocess.run([sys.executable, "-m", "mocap.cli", "track", "--help"], capture_output=True, text=True,
                         check=True)
    for opt in ("--preview", "--segmentation", "--start", "--end", "--model-complexity", "--fov"):
        assert opt in out.stdout
