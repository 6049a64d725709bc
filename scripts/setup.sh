#!/usr/bin/env bash
# Understudy set-up and entry point: installs what is missing, then runs a job.
#
#   bash scripts/setup.sh demo [DEMO OPTIONS]   # footage in -> video out (see `understudy demo --help`)
#   bash scripts/setup.sh test [PYTEST ARGS]    # ruff, the no-Blender import check, the test suite
#   bash scripts/setup.sh install               # only install
#
# It installs Debian packages when they are missing (apt-get; sudo when not root),
# creates or reuses the virtual environment at .venv/ in the checkout and installs
# Understudy into it (editable), so .venv/bin/understudy works afterwards. Nothing is
# downloaded at run time; only this step uses the package registries.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
job="${1:-install}"
[ $# -gt 0 ] && shift

# ffmpeg: video I/O; libgl1/libglib2.0: OpenCV; libegl1 + libegl-mesa0: headless GL (pyrender);
# xvfb + the X client libraries: the `record` preview window (OpenCV's Qt) on a virtual display in the tests
APT_PACKAGES=(ffmpeg libgl1 libglib2.0-0 libegl1 libegl-mesa0 xvfb libx11-6 libxext6 libsm6 libice6)

log() { printf '[setup] %s\n' "$*" >&2; }

pick_python() {
  for p in "${PYTHON:-}" python3.11 python3; do
    [ -n "$p" ] || continue
    if command -v "$p" >/dev/null 2>&1 && "$p" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
      echo "$p"; return 0
    fi
  done
  return 1
}

install_apt() {
  local missing=()
  for pkg in "${APT_PACKAGES[@]}" "$@"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if ! command -v apt-get >/dev/null 2>&1; then
    log "missing system packages ${missing[*]} and no apt-get: install them by hand"; return 1
  fi
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  log "installing Debian packages: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

install_all() {
  local extra=()
  PY="$(pick_python)" || { extra+=(python3 python3-venv); install_apt "${extra[@]}"; PY="$(pick_python)" || {
    log "Python 3.11 is required (bpy 5.0 and mediapipe 0.10.21 wheels); set PYTHON=/path/to/python3.11"; exit 1; }; }
  if ! "$PY" -c 'import ensurepip' >/dev/null 2>&1; then extra+=(python3-venv); fi
  install_apt "${extra[@]}"
  if [ ! -x .venv/bin/python ]; then
    log "creating .venv with $PY"
    "$PY" -m venv .venv
  fi
  local stamp=".venv/.understudy-installed"
  local want
  want="$(sha256sum pyproject.toml | cut -c1-16)"
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ] || ! .venv/bin/python -c 'import mocap' >/dev/null 2>&1; then
    log "installing Understudy and its dependencies into .venv"
    .venv/bin/python -m pip install -q --upgrade pip
    .venv/bin/python -m pip install -q -e ".[test,blender]"
    echo "$want" > "$stamp"
  fi
}

check_imports_without_blender() {
  # mocap and retarget must import where bpy cannot, and must not pull in heavy libraries
  .venv/bin/python - <<'PY'
import importlib.abc, sys

class NoBlender(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("bpy", "mathutils", "bmesh"):
            raise ImportError(f"{name} is blocked for this check")
        return None

sys.meta_path.insert(0, NoBlender())
import importlib, pkgutil
import mocap, retarget
# every module of both packages (commands included): heavy libraries load inside functions
for pkg in (mocap, retarget):
    for m in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + "."):
        importlib.import_module(m.name)
heavy = sorted(m for m in ("bpy", "mediapipe", "cv2", "av", "dask", "mathutils", "scipy", "skimage",
                           "pyrender", "trimesh", "matplotlib") if m in sys.modules)
if heavy:
    sys.exit(f"importing mocap/retarget pulled in heavy modules: {heavy}")
print(f"[setup] all {len([m for m in sys.modules if m.split('.')[0] in ('mocap', 'retarget')])} mocap/retarget modules import without Blender and without heavy libraries")
PY
}

case "$job" in
  install)
    install_all ;;
  demo)
    install_all
    exec .venv/bin/understudy demo "$@" ;;
  test)
    install_all
    log "ruff"
    .venv/bin/ruff check mocap retarget blender_addon tests benchmarks
    check_imports_without_blender
    log "pytest"
    exec .venv/bin/python -m pytest "$@" ;;
  *)
    log "unknown job '$job': use demo, test or install"; exit 2 ;;
esac
