"""Subcommands of ``understudy`` that live outside :mod:`mocap.cli`.

Each module defines ``register(subparsers)`` and is listed in
:data:`mocap.cli.COMMAND_MODULES`. Modules import only argparse at the top; the work is
imported inside the command functions so ``understudy --help`` stays fast.
"""
