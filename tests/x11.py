"""A virtual X display (Xvfb), key presses and the window manager's "close" for tests of
the preview window: :func:`press_key` sends key events to a window by title (as
``xdotool key --window`` does), :func:`close_window` sends ``WM_DELETE_WINDOW``, which is
what a window manager does when the user clicks the close button (Xvfb has no window
manager). libX11 through ctypes, no extra Python package."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import shutil
import subprocess

import pytest

_KEY_PRESS, _KEY_RELEASE, _CLIENT_MESSAGE = 2, 3, 33  # X.h event types


class _XClientMessageEvent(ctypes.Structure):
    _fields_ = [("type", ctypes.c_int), ("serial", ctypes.c_ulong), ("send_event", ctypes.c_int),
                ("display", ctypes.c_void_p), ("window", ctypes.c_ulong), ("message_type", ctypes.c_ulong),
                ("format", ctypes.c_int), ("data", ctypes.c_long * 5)]


class _XKeyEvent(ctypes.Structure):
    _fields_ = [("type", ctypes.c_int), ("serial", ctypes.c_ulong), ("send_event", ctypes.c_int),
                ("display", ctypes.c_void_p), ("window", ctypes.c_ulong), ("root", ctypes.c_ulong),
                ("subwindow", ctypes.c_ulong), ("time", ctypes.c_ulong), ("x", ctypes.c_int), ("y", ctypes.c_int),
                ("x_root", ctypes.c_int), ("y_root", ctypes.c_int), ("state", ctypes.c_uint),
                ("keycode", ctypes.c_uint), ("same_screen", ctypes.c_int)]


class _XEvent(ctypes.Union):
    _fields_ = [("xclient", _XClientMessageEvent), ("xkey", _XKeyEvent), ("pad", ctypes.c_long * 24)]


def _libx11():
    name = ctypes.util.find_library("X11")
    if name is None:
        pytest.skip("libX11 is not installed (scripts/setup.sh installs xvfb, which brings it)")
    x = ctypes.CDLL(name)
    vp, ul = ctypes.c_void_p, ctypes.c_ulong
    x.XOpenDisplay.restype, x.XOpenDisplay.argtypes = vp, [ctypes.c_char_p]
    x.XDefaultRootWindow.restype, x.XDefaultRootWindow.argtypes = ul, [vp]
    x.XInternAtom.restype, x.XInternAtom.argtypes = ul, [vp, ctypes.c_char_p, ctypes.c_int]
    x.XQueryTree.argtypes = [vp, ul, ctypes.POINTER(ul), ctypes.POINTER(ul),
                             ctypes.POINTER(ctypes.POINTER(ul)), ctypes.POINTER(ctypes.c_uint)]
    x.XFetchName.argtypes = [vp, ul, ctypes.POINTER(ctypes.c_void_p)]
    x.XSendEvent.argtypes = [vp, ul, ctypes.c_int, ctypes.c_long, ctypes.POINTER(_XEvent)]
    x.XStringToKeysym.restype, x.XStringToKeysym.argtypes = ul, [ctypes.c_char_p]
    x.XKeysymToKeycode.restype, x.XKeysymToKeycode.argtypes = ctypes.c_ubyte, [vp, ul]
    for f in (x.XFree, x.XFlush, x.XCloseDisplay):
        f.argtypes = [vp]
    return x


def window_ids(display: str, title: str) -> list[int]:
    """X window ids whose WM_NAME is ``title`` on ``display``."""
    return _with_display(display, lambda x, d: _find(x, d, title))


def close_window(display: str, title: str) -> int:
    """Send WM_DELETE_WINDOW to every window titled ``title``; returns how many."""

    def send(x, d):
        found = _find(x, d, title)
        for w in found:
            ev = _XEvent()
            ev.xclient.type = _CLIENT_MESSAGE
            ev.xclient.window = w
            ev.xclient.message_type = x.XInternAtom(d, b"WM_PROTOCOLS", 0)
            ev.xclient.format = 32
            ev.xclient.data[0] = x.XInternAtom(d, b"WM_DELETE_WINDOW", 0)
            x.XSendEvent(d, w, 0, 0, ctypes.byref(ev))
        x.XFlush(d)
        return len(found)

    return _with_display(display, send)


def press_key(display: str, title: str, key: str) -> int:
    """Send a key press and release (X keysym name: "space", "d", "q", "Escape") to every
    window titled ``title``, as ``xdotool key --window`` does; returns how many."""

    def send(x, d):
        found = _find(x, d, title)
        code = x.XKeysymToKeycode(d, x.XStringToKeysym(key.encode()))
        if code == 0:
            raise ValueError(f"no keycode for the keysym {key!r}")
        root = x.XDefaultRootWindow(d)
        for w in found:
            for kind, mask in ((_KEY_PRESS, 1), (_KEY_RELEASE, 2)):  # KeyPressMask, KeyReleaseMask
                ev = _XEvent()
                k = ev.xkey
                k.type, k.window, k.root, k.subwindow, k.keycode, k.same_screen = kind, w, root, 0, code, 1
                x.XSendEvent(d, w, 1, mask, ctypes.byref(ev))
        x.XFlush(d)
        return len(found)

    return _with_display(display, send)


def _with_display(display: str, fn):
    x = _libx11()
    d = x.XOpenDisplay(display.encode())
    if not d:
        raise RuntimeError(f"cannot open X display {display}")
    try:
        return fn(x, d)
    finally:
        x.XCloseDisplay(d)


def _find(x, d, title: str) -> list[int]:
    found, stack = [], [x.XDefaultRootWindow(d)]
    while stack:
        w = stack.pop()
        name = ctypes.c_void_p()
        if x.XFetchName(d, w, ctypes.byref(name)) and name.value:
            if ctypes.string_at(name.value).decode(errors="replace") == title:
                found.append(w)
            x.XFree(name)
        root, parent, n = ctypes.c_ulong(), ctypes.c_ulong(), ctypes.c_uint()
        kids = ctypes.POINTER(ctypes.c_ulong)()
        if x.XQueryTree(d, w, ctypes.byref(root), ctypes.byref(parent), ctypes.byref(kids), ctypes.byref(n)):
            stack.extend(kids[i] for i in range(n.value))
            if kids:
                x.XFree(kids)
    return found


@contextlib.contextmanager
def xvfb(size: str = "640x480x24"):
    """A fresh Xvfb server on a free display number; yields its name (":N")."""
    exe = shutil.which("Xvfb")
    if exe is None:
        pytest.skip("Xvfb is not installed (scripts/setup.sh installs the xvfb package)")
    r, w = os.pipe()
    p = subprocess.Popen([exe, "-displayfd", str(w), "-screen", "0", size, "-nolisten", "tcp"],
                         pass_fds=(w,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(w)
    try:
        with os.fdopen(r) as f:
            num = f.readline().strip()
        if not num.isdigit():
            raise RuntimeError(f"Xvfb did not report a display number (exit code {p.poll()})")
        yield f":{num}"
    finally:
        p.terminate()
        p.wait(10)
