"""The snapshot diff is a pure function: every case built from values, no file touched."""

from __future__ import annotations

from pathlib import Path

from sfxmatch.library.scan import (
    FileEntry,
    LibraryRoot,
    Snapshot,
    derive_sound_id,
    diff_snapshot,
)

ROOT = LibraryRoot(Path("/lib/a"), "a")
OTHER = LibraryRoot(Path("/lib/b"), "b")


def entry(relpath: str, digest: str, *, sound_id: str = "", library: LibraryRoot = ROOT,
          mtime: int = 1) -> FileEntry:  # fmt: skip
    return FileEntry(sound_id, library.library_id, library.path, relpath, 10, mtime, digest, "wav")


def indexed(relpath: str, digest: str, library: LibraryRoot = ROOT) -> FileEntry:
    return entry(relpath, digest, sound_id=derive_sound_id(library.library_id, relpath),
                 library=library)  # fmt: skip


def test_a_first_scan_adds_everything_with_ids_from_the_path() -> None:
    result = diff_snapshot(Snapshot(), [ROOT], [entry("x.wav", "h1"), entry("y.wav", "h2")])
    assert [e.relpath for e in result.added] == ["x.wav", "y.wav"]
    assert [e.sound_id for e in result.added] == [derive_sound_id("a", "x.wav"),
                                                   derive_sound_id("a", "y.wav")]  # fmt: skip
    assert not (result.changed or result.moved or result.deleted or result.unchanged)
    assert result.snapshot.roots == (ROOT,)


def test_same_content_is_unchanged_and_new_content_is_changed_keeping_the_id() -> None:
    x, y = indexed("x.wav", "h1"), indexed("y.wav", "h2")
    previous = Snapshot((ROOT,), (x, y))
    seen = [entry("x.wav", "h1", mtime=5), entry("y.wav", "h9")]  # x touched, y rewritten
    result = diff_snapshot(previous, [ROOT], seen)
    assert [e.sound_id for e in result.unchanged] == [x.sound_id]
    assert result.unchanged[0].mtime_ns == 5
    assert [(c.old.content_hash, c.new.content_hash, c.new.sound_id) for c in result.changed] == [
        ("h2", "h9", y.sound_id)
    ]
    assert [e.relpath for e in result.to_process] == ["y.wav"]


def test_a_renamed_file_is_a_move_not_a_delete_and_an_add() -> None:
    x = indexed("x.wav", "h1")
    result = diff_snapshot(Snapshot((ROOT,), (x,)), [ROOT], [entry("sub/x.wav", "h1")])
    assert [(m.old.relpath, m.new.relpath, m.new.sound_id) for m in result.moved] == [
        ("x.wav", "sub/x.wav", x.sound_id)
    ]
    assert not result.added and not result.deleted


def test_rename_then_a_new_file_under_the_old_name() -> None:
    x = indexed("x.wav", "h1")
    seen = [entry("renamed.wav", "h1"), entry("x.wav", "h2")]
    result = diff_snapshot(Snapshot((ROOT,), (x,)), [ROOT], seen)
    assert [(m.new.relpath, m.new.sound_id) for m in result.moved] == [("renamed.wav", x.sound_id)]
    assert not result.changed
    # The new sound at the old path cannot take the moved sound's id: salted.
    assert [e.relpath for e in result.added] == ["x.wav"]
    assert result.added[0].sound_id == derive_sound_id("a", "x.wav", 1)


def test_missing_files_are_deleted_unless_their_folder_could_not_be_read() -> None:
    gone, hidden = indexed("gone.wav", "h1"), indexed("locked/in.wav", "h2")
    previous = Snapshot((ROOT,), (gone, hidden))
    result = diff_snapshot(previous, [ROOT], [], blocked={"a": {"locked"}})
    assert result.deleted == (gone,)
    assert result.unreachable == (hidden,)
    assert hidden in result.snapshot.entries and gone not in result.snapshot.entries


def test_a_whole_unreadable_root_keeps_everything() -> None:
    x = indexed("x.wav", "h1")
    result = diff_snapshot(Snapshot((ROOT,), (x,)), [ROOT], [], blocked={"a": {""}})
    assert result.unreachable == (x,) and not result.deleted


def test_libraries_outside_the_scan_pass_through() -> None:
    theirs = indexed("t.wav", "h5", OTHER)
    previous = Snapshot((ROOT, OTHER), (theirs,))
    result = diff_snapshot(previous, [ROOT], [entry("x.wav", "h1")])
    assert theirs in result.snapshot.entries
    assert set(result.snapshot.roots) == {ROOT, OTHER}
    assert not result.deleted


def test_the_diff_is_deterministic_whatever_the_walk_order() -> None:
    seen = [entry(f"{n}.wav", f"h{n}") for n in "dcba"]
    one = diff_snapshot(Snapshot(), [ROOT], seen)
    two = diff_snapshot(Snapshot(), [ROOT], list(reversed(seen)))
    assert one == two
