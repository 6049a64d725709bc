"""The bone map saved per rig: a collection on the Armature datablock (so it is saved in
the .blend with the rig and shared by every object using that armature)."""

from __future__ import annotations

import bpy

from .core.bonemaps import BoneMap, canonical_tree


class UNDERSTUDY_PG_map_item(bpy.types.PropertyGroup):  # noqa: N801 (Blender naming convention)
    canonical: bpy.props.StringProperty(name="Canonical", description="Canonical (VRM humanoid) joint name")
    bone: bpy.props.StringProperty(name="Bone", description="This armature's bone playing the canonical joint "
                                                           "(empty: not driven)")


def map_from_armature(data) -> BoneMap | None:
    """The map stored on Armature ``data`` (None when none is stored)."""
    bones = {it.canonical: it.bone for it in data.understudy_map if it.bone}
    if not bones:
        return None
    return BoneMap(name=data.understudy_map_name or "custom", bones=bones)


def store_map(data, m: BoneMap, found: dict[str, str]) -> None:
    """Store ``m`` on Armature ``data`` as one row per canonical joint, with the bone each
    resolved to (empty when the rig has none)."""
    data.understudy_map.clear()
    for c in canonical_tree()[0]:
        it = data.understudy_map.add()
        it.canonical = c
        it.bone = found.get(c, "")
    data.understudy_map_name = m.name


_CLASSES = (UNDERSTUDY_PG_map_item,)


def register():
    for c in _CLASSES:
        bpy.utils.register_class(c)
    bpy.types.Armature.understudy_map = bpy.props.CollectionProperty(type=UNDERSTUDY_PG_map_item)
    bpy.types.Armature.understudy_map_index = bpy.props.IntProperty(default=0)
    bpy.types.Armature.understudy_map_name = bpy.props.StringProperty(
        name="Map name", description="Name of this rig's bone map (the profile it started from)")


def unregister():
    for attr in ("understudy_map", "understudy_map_index", "understudy_map_name"):
        delattr(bpy.types.Armature, attr)
    for c in reversed(_CLASSES):
        bpy.utils.unregister_class(c)
