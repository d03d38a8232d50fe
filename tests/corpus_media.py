"""One clip's media file, for tests that look at a few clips.

The package never looks up a clip on its own: it finds a whole corpus's media
through one `training.dataset.MediaIndex`, which lists each folder once.
"""

from __future__ import annotations

from pathlib import Path

from training.dataset import Clip, MediaIndex


def find_media(root: Path, clip: Clip) -> Path | None:
    """The clip's media file under `root` (`MediaIndex.find`); None if there is none."""
    return MediaIndex(root).find(clip)
