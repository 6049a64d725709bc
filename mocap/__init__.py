"""Footage -> take: footage sources, MediaPipe tracking, the take format, and (later)
cleanup and solving. Heavy libraries (mediapipe, cv2, av) are imported inside the
functions that need them, so ``import mocap`` is fast and works without a camera."""

__version__ = "0.1.0"
