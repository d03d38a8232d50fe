"""Input discovery: folders, manifests, missing paths, content ids."""

from __future__ import annotations

import shutil
from pathlib import Path

from pipelines.discover import content_id, discover


def touch(path: Path, data: bytes = b"media") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_folders_are_walked_recursively_for_media_only(tmp_path: Path) -> None:
    a = touch(tmp_path / "b" / "deep" / "x.MP4", b"1")
    b = touch(tmp_path / "a.wav", b"2")
    touch(tmp_path / "notes.json", b"3")
    touch(tmp_path / ".hidden.mp4", b"4")
    touch(tmp_path / ".cache" / "y.mp4", b"5")
    videos, missing = discover([tmp_path])
    assert [v.path for v in videos] == [str(b.resolve()), str(a.resolve())]
    assert missing == []


def test_files_named_explicitly_are_inputs_whatever_their_extension(tmp_path: Path) -> None:
    odd = touch(tmp_path / "recording.bin")
    assert [v.path for v in discover([odd])[0]] == [str(odd.resolve())]


def test_manifest_lines_are_paths_relative_to_the_manifest(tmp_path: Path) -> None:
    clip = touch(tmp_path / "clips" / "c $1 'ü'.mp4")
    folder_clip = touch(tmp_path / "more" / "d.mkv", b"other")
    manifest = tmp_path / "list.txt"
    manifest.write_text(f"# corpus\n\nclips/{clip.name}\n{tmp_path / 'more'}\nnope.mp4\n", encoding="utf-8")
    videos, missing = discover([manifest])
    assert [v.path for v in videos] == [str(clip.resolve()), str(folder_clip.resolve())]
    assert [Path(m.path).name for m in missing] == ["nope.mp4"]


def test_each_file_is_listed_once(tmp_path: Path) -> None:
    clip = touch(tmp_path / "a.mp4")
    assert len(discover([clip, tmp_path, str(clip)])[0]) == 1


def test_video_id_follows_content_not_location(tmp_path: Path) -> None:
    big = bytes(range(256)) * 20_000  # > 2 MiB: head and tail both hashed
    original = touch(tmp_path / "a.mp4", big)
    moved = tmp_path / "elsewhere" / "renamed.mp4"
    moved.parent.mkdir()
    shutil.copy(original, moved)
    assert content_id(original) == content_id(moved)
    changed_tail = touch(tmp_path / "c.mp4", big[:-1] + b"x")
    changed_size = touch(tmp_path / "d.mp4", big + b"x")
    assert len({content_id(p) for p in (original, changed_tail, changed_size)}) == 3
