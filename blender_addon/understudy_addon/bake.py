"""Writing animation into Blender fast: F-curves filled with bulk keys
(``keyframe_points.add(n)`` + ``foreach_set("co", ...)``, never ``keyframe_insert`` per
frame), on both action APIs:

* Blender 4.4+ (and 5.0, where ``Action.fcurves`` is gone): layered/slotted actions; the
  F-curves live in a channelbag of a keyframe strip, for one slot per animated ID;
* Blender 4.2/4.3: ``Action.fcurves`` with action groups.

:func:`new_action` picks the branch from ``bpy.app.version`` and what the Action type has.
The tests run bpy 5.0.1 (the slotted branch); the 4.2 branch is the documented legacy API.
"""

from __future__ import annotations

import bpy
import numpy as np

SLOTTED = bpy.app.version >= (4, 4, 0) and "layers" in bpy.types.Action.bl_rna.properties
"""True when actions have slots and layers (Blender 4.4+)."""

_INTERP_LINEAR = 1  # bpy.types.Keyframe.interpolation enum: CONSTANT 0, LINEAR 1, BEZIER 2


class ActionWriter:
    """One action for one ID type (``"OBJECT"`` for an armature's bones, ``"KEY"`` for
    shape keys): create F-curves and fill them with bulk keys."""

    def __init__(self, name: str, id_type: str, slot_name: str):
        self.action = bpy.data.actions.new(name)
        self.action.use_fake_user = False
        self.slot = None
        self._groups: dict[str, object] = {}
        if SLOTTED:
            self.slot = self.action.slots.new(id_type=id_type, name=slot_name)
            layer = self.action.layers.new("Layer")
            strip = layer.strips.new(type="KEYFRAME")
            self._bag = strip.channelbag(self.slot, ensure=True)
        else:
            self.action.id_root = id_type
            self._bag = None

    def fcurve(self, data_path: str, index: int, group: str | None = None):
        if self._bag is not None:
            fc = self._bag.fcurves.new(data_path, index=index)
            if group:
                g = self._groups.get(group)
                if g is None:
                    g = self._groups[group] = self._bag.groups.new(group)
                fc.group = g
            return fc
        if group:
            return self.action.fcurves.new(data_path, index=index, action_group=group)
        return self.action.fcurves.new(data_path, index=index)

    def keys(self, data_path: str, frames: np.ndarray, values: np.ndarray, group: str | None = None) -> int:
        """One F-curve per column of ``values`` ``(n, k)`` (array index 0..k-1), keyed at
        ``frames`` ``(n,)``, linear interpolation. Returns the number of keys written."""
        values = np.asarray(values, dtype=np.float32)
        if values.ndim == 1:
            values = values[:, None]
        n = len(frames)
        co = np.empty((n, 2), dtype=np.float32)
        co[:, 0] = frames
        interp = np.full(n, _INTERP_LINEAR, dtype=np.int32)
        for i in range(values.shape[1]):
            fc = self.fcurve(data_path, i, group)
            kp = fc.keyframe_points
            kp.add(n)
            co[:, 1] = values[:, i]
            kp.foreach_set("co", co.ravel())
            kp.foreach_set("interpolation", interp)
            fc.update()
        return n * values.shape[1]

    def assign(self, id_data) -> None:
        """Make this the active action of ``id_data`` (with its slot on 4.4+)."""
        ad = id_data.animation_data or id_data.animation_data_create()
        ad.action = self.action
        if self.slot is not None:
            ad.action_slot = self.slot

    def push_to_nla(self, id_data, track_name: str, start_frame: int):
        """One NLA strip holding this action on a new track named ``track_name`` (on top),
        and no active action left over (the NLA plays it). Returns the strip."""
        ad = id_data.animation_data or id_data.animation_data_create()
        if ad.action is not None and ad.action == self.action:
            ad.action = None
        track = ad.nla_tracks.new()
        track.name = track_name
        strip = track.strips.new(track_name, int(start_frame), self.action)
        if self.slot is not None and hasattr(strip, "action_slot"):
            strip.action_slot = self.slot
        return strip
