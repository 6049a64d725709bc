"""Skeletal motion onto any humanoid rig.

``bonemap``  bone-map profiles (data files in ``assets/bonemaps/``), detection, checks
``gltf``     glTF 2.0 / GLB / VRM read, write and structural validation (pure numpy)
``rig``      ``Rig`` = world-aligned skeleton + rest pose + bind data + meshes; GLB export
``retarget`` retargeting as named passes (map, rest alignment, rotations, root, foot IK)
``fbx``      FBX export through Blender in a worker process
``batch``    ``understudy batch``: manifests, jobs, process pool or Dask
``character`` synthetic actors: parametric rigged humanoids with 52 ARKit shape keys; checks
``autorig``  auto-rigging of unrigged humanoid meshes (orientation, joints, skin weights)
``obj``, ``ply`` pure-numpy mesh readers/writers for the auto-rig

Imports no camera, MediaPipe or Blender code, so it loads fast anywhere; FBX goes
through Blender in a worker process.
"""
