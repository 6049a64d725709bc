"""Skeletal motion onto any humanoid rig: rig loading, bone maps, retargeting passes,
exporters. Imports no camera, MediaPipe or Blender code, so it loads fast anywhere."""
