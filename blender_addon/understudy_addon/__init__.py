"""Understudy for Blender (an extension, Blender 4.2+): import solved takes
(``motion.npz``), BVH files and Live Link Face CSVs onto the selected armature with an
automatic, editable bone map; bake with bulk keys; one NLA strip per take.

Everything runs on Blender's bundled Python and numpy: the format and retargeting code
is the add-on's own pure-numpy ``core`` package (no scipy, no pip). ``bpy`` is imported
only by the modules registered below, so ``core`` can be imported and tested anywhere.
See docs/blender.md.
"""

from __future__ import annotations

import importlib

_MODULES = ("props", "operators", "panel", "live_link")
"""Submodules with ``register()``/``unregister()``, registered in this order."""


def _modules():
    return [importlib.import_module(f".{name}", __package__) for name in _MODULES]


def register():
    for m in _modules():
        m.register()


def unregister():
    for m in reversed(_modules()):
        m.unregister()
