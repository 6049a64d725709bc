"""The only place that imports bpy or mathutils: the Blender add-on and the headless
render scripts. The format and maths code it uses lives in ``mocap`` and ``retarget``."""
