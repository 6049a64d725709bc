"""``understudy addon build``: the Blender extension zip (see docs/blender.md)."""

from __future__ import annotations

import argparse


def cmd_addon_build(args) -> int:
    from blender_addon.build import build_addon, manifest

    path, n = build_addon(args.output)
    m = manifest()
    print(f"built {path} ({n} files): extension {m['id']!r} {m['version']} for Blender {m['blender_version_min']}+")
    print(f"install: Blender > Edit > Preferences > Get Extensions > Install from Disk, or "
          f"`blender --command extension install-file -r user_default {path}`")
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser("addon", help="the Blender add-on (build the extension zip)",
                              description="Tools for the Understudy Blender extension.")
    sub = p.add_subparsers(dest="addon_command", metavar="ACTION")
    sub.required = True
    q = sub.add_parser("build", help="build the extension zip to install in Blender 4.2+",
                       description="Zip the add-on (manifest at the root, Python files, shipped bone maps and "
                                   "canonical skeleton as data) for Blender's Install from Disk.",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    q.add_argument("-o", "--output", default="understudy_addon.zip", metavar="ZIP",
                   help="zip file to write")
    q.set_defaults(func=cmd_addon_build)
