"""View3D > Sidebar > Understudy: import buttons and the rig's editable bone map."""

from __future__ import annotations

import bpy


class UNDERSTUDY_UL_bonemap(bpy.types.UIList):  # noqa: N801 (Blender naming convention)
    def draw_item(self, context, layout, data, item, icon, active_data, active_propname, index):
        row = layout.row(align=True)
        row.label(text=item.canonical)
        row.prop_search(item, "bone", data, "bones", text="")


class VIEW3D_PT_understudy(bpy.types.Panel):  # noqa: N801 (Blender naming convention)
    bl_label = "Understudy"
    bl_idname = "VIEW3D_PT_understudy"
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "Understudy"

    def draw(self, context):
        layout = self.layout
        obj = context.active_object
        arm = obj if obj is not None and obj.type == "ARMATURE" else None
        layout.label(text=f"Rig: {arm.name}" if arm else "Select an armature", icon="ARMATURE_DATA")
        col = layout.column(align=True)
        col.enabled = arm is not None
        col.operator("understudy.import_take", icon="IMPORT")
        col.operator("understudy.import_bvh", icon="IMPORT")
        layout.operator("understudy.import_face_csv", icon="SHAPEKEY_DATA")
        live = layout.row(align=True)  # VMC live link (understudy record --vmc, VSeeFace, Warudo ...)
        live.enabled = arm is not None
        live.operator("understudy.live_link", text="Live link (VMC)", icon="LINKED")
        live.operator("understudy.live_link_stop", text="", icon="CANCEL")
        if arm is None:
            return
        box = layout.box()
        data = arm.data
        box.label(text=f"Bone map: {data.understudy_map_name or 'none (detected on import)'}")
        row = box.row(align=True)
        row.operator("understudy.map_detect", text="Detect")
        row.operator("understudy.map_import", text="Load")
        row.operator("understudy.map_export", text="Save")
        row.operator("understudy.map_clear", text="", icon="X")
        if len(data.understudy_map):
            box.template_list("UNDERSTUDY_UL_bonemap", "", data, "understudy_map", data, "understudy_map_index",
                              rows=8)


_CLASSES = (UNDERSTUDY_UL_bonemap, VIEW3D_PT_understudy)


def register():
    for c in _CLASSES:
        bpy.utils.register_class(c)


def unregister():
    for c in reversed(_CLASSES):
        bpy.utils.unregister_class(c)
