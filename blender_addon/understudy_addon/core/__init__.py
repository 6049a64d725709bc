"""The add-on's format and maths code: numpy and the standard library only, no ``bpy``.

Blender bundles numpy but not scipy, so nothing here imports scipy, ``mocap`` or
``retarget``: these modules are small, independent re-implementations of the parts of
Understudy the add-on needs (see docs/blender.md, "Why the add-on has its own core"):

* :mod:`.quat`      quaternion maths (wxyz), numpy only;
* :mod:`.formats`   ``motion.npz`` (schema ``understudy.motion`` v1), BVH and Live Link
                    Face CSV readers;
* :mod:`.bonemaps`  bone-map TOML files (schema ``understudy.bonemap`` v1), the shipped
                    profiles, detection, writing;
* :mod:`.retarget`  world-space rest alignment (the maths of ``retarget.retarget``'s
                    ``rest_alignment``/``solve_rotations``) and the root path.

Tests check each against the project's own implementation (``mocap.bvh``,
``mocap.motion_io``, ``retarget.bonemap``) and import them with scipy blocked.
"""
