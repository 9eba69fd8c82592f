"""Library scan: audio found by content, faults recorded, diffs against a snapshot."""

from __future__ import annotations

import base64
import importlib
import json
import os
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest
from sfxmatch.errors import Cancelled, ConfigError
from sfxmatch.library.scan import (
    FULL_HASH_LIMIT,
    LibraryRoot,
    Snapshot,
    content_hash,
    derive_sound_id,
    scan,
    sniff_audio,
    sniff_file,
)
from sfxmatch.testing.synth import make_audio_file, noise_burst, tone

scan_module = importlib.import_module("sfxmatch.library.scan")  # the package exports scan()

RATE = 16000
BAD_NAME = b"bad \xff\xfe name.flac"  # not valid UTF-8


def _write(path: Path, freq: float = 440.0, seconds: float = 0.3, channels: int = 1) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    make_audio_file(path, tone(freq, seconds, RATE, channels=channels), RATE)
    return path


def _faults(result: scan_module.ScanResult) -> dict[str, str]:
    return {os.fsencode(f.path.name).decode("utf-8", "replace"): f.kind for f in result.faults}


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A small library with every kind of file a real one has."""
    root = tmp_path / "lib"
    _write(root / "doors" / "door open.wav")
    _write(root / "doors" / "door close.flac", 330)
    _write(root / "nature" / "Café ☕ ambience.mp3", 220)
    _write(root / "nature" / "birds.m4a", 550)
    _write(root / "nature" / "rain.ogg", 660, channels=2)  # stereo: PyAV's own Vorbis needs it
    os.rename(_write(root / "mystery.wav", 770, seconds=0.2), root / "mystery")  # no extension
    shutil.copy(root / "doors" / "door close.flac", os.fsencode(root) + b"/" + BAD_NAME)
    (root / "fake.wav").write_text("this is not audio at all\n")
    (root / "empty.mp3").write_bytes(b"")
    (root / "notes.txt").write_text("sidecar text is never sniffed")
    (root / "picture.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))
    (root / ".hidden.wav").write_bytes((root / "doors" / "door open.wav").read_bytes())
    (root / "._door open.wav").write_bytes(b"\x00\x05\x16\x07 AppleDouble")
    return root


def test_audio_is_found_by_content_and_faults_are_recorded(tree: Path) -> None:
    result = scan([tree])
    found = {e.relpath_bytes: e.format for e in result.added}
    assert found == {
        b"doors/door close.flac": "flac",
        b"doors/door open.wav": "wav",
        "nature/Café ☕ ambience.mp3".encode(): "mp3",
        b"nature/birds.m4a": "m4a",
        b"nature/rain.ogg": "ogg",
        b"mystery": "wav",
        BAD_NAME: "flac",
    }
    assert _faults(result) == {"fake.wav": "not_audio", "empty.mp3": "empty"}
    reason = next(f.reason for f in result.faults if f.kind == "not_audio")
    assert "text" in reason
    assert result.snapshot.entries == result.added
    assert len({e.sound_id for e in result.added}) == len(result.added)
    assert all(e.path.is_file() for e in result.added)


def test_invalid_utf8_names_round_trip(tree: Path) -> None:
    result = scan([tree])
    bad = next(e for e in result.added if e.relpath_bytes == BAD_NAME)
    assert os.fsencode(bad.path) == os.fsencode(tree) + b"/" + BAD_NAME
    assert "\ufffd" in bad.display_path  # printable, but the raw bytes are what is stored
    text = result.snapshot.to_json()
    rows = json.loads(text)["entries"]  # plain UTF-8 JSON: the odd name travels as base64
    assert [base64.b64decode(r[2]["b64"]) for r in rows if isinstance(r[2], dict)] == [BAD_NAME]
    again = Snapshot.from_json(text)
    assert again == result.snapshot
    assert again.by_key[(bad.library_id, bad.relpath)].path == bad.path


def test_symlinks_are_followed_without_looping(tmp_path: Path) -> None:
    root = tmp_path / "lib"
    outside = _write(tmp_path / "elsewhere" / "thunder.wav")
    _write(root / "a" / "one.wav")
    (root / "a" / "up").symlink_to("..")  # back to the root: a loop
    (root / "again").symlink_to("a")  # a second way into a scanned folder
    (root / "thunder.wav").symlink_to(outside)  # a linked file outside the root
    (root / "gone.wav").symlink_to(tmp_path / "missing.wav")
    (root / "self").symlink_to("self")  # a link cycle: ELOOP
    result = scan([root])
    assert sorted(e.relpath for e in result.added) == ["a/one.wav", "thunder.wav"]
    kinds = _faults(result)
    assert kinds == {
        "up": "symlink_loop",
        "again": "duplicate",
        "gone.wav": "broken_symlink",
        "self": "symlink_loop",
    }


def test_one_inside_test_serves_every_exclusion_check(tmp_path: Path) -> None:
    from sfxmatch.config import Settings
    from sfxmatch.errors import AccessDeniedError
    from sfxmatch.files import inside, real_paths
    from sfxmatch.pipeline import Pipeline
    from sfxmatch.service.translate import PathPolicy

    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "bc").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "a" / "b")
    folders = real_paths([tmp_path / "link"])  # links resolved
    assert folders == (str(tmp_path / "a" / "b"),)
    assert inside(str(tmp_path / "a" / "b"), folders) == folders[0]
    assert inside(str(tmp_path / "a" / "b" / "x.wav"), folders) == folders[0]
    assert inside(str(tmp_path / "a" / "bc"), folders) is None  # whole components only
    assert inside("/anything", ("/",)) == "/"
    # The scan, the facade and the daemon's requests all answer alike.
    settings = Settings(data_dir=tmp_path / "d", cache_dir=tmp_path / "c")
    pipeline = Pipeline(settings, model="imagebind-tiny", excluded=[tmp_path / "link"])
    assert pipeline.is_excluded(tmp_path / "link" / "x.wav")
    assert not pipeline.is_excluded(tmp_path / "a" / "bc")
    policy = PathPolicy.from_folders([tmp_path / "link"])
    with pytest.raises(AccessDeniedError, match="inside the excluded folder"):
        policy.existing(str(tmp_path / "a" / "b"), "folder", folder=True)
    assert policy.existing(str(tmp_path / "a" / "bc"), "folder", folder=True)


def test_nothing_inside_an_excluded_folder_is_read(tmp_path: Path) -> None:
    private = tmp_path / "private"
    _write(private / "secret.wav")
    _write(private / "deeper" / "more.wav", 330)
    root = tmp_path / "lib"
    _write(root / "mine.wav")
    (root / "to-folder").symlink_to(private)
    (root / "to-file.wav").symlink_to(private / "secret.wav")
    (root / "hop").symlink_to(root / "to-folder")  # a link to a link into it
    _write(root / "inner" / "kept-out.wav")  # an excluded folder inside the library itself
    seen_before = scan([root]).snapshot.entries
    assert len(seen_before) >= 3
    result = scan([root], excluded=[private, root / "inner"])
    assert [e.relpath for e in result.snapshot.entries] == ["mine.wav"]
    assert _faults(result) == {
        "hop": "excluded", "inner": "excluded", "to-file.wav": "excluded", "to-folder": "excluded"
    }  # fmt: skip
    # What was known from there before is gone from the library (not "unreachable").
    again = scan([root], Snapshot(result.snapshot.roots, seen_before), excluded=[private])
    assert {e.relpath for e in again.snapshot.entries} == {"mine.wav", "inner/kept-out.wav"}
    assert {e.relpath for e in again.deleted} == {e.relpath for e in seen_before} - {
        "mine.wav", "inner/kept-out.wav"
    }  # fmt: skip
    assert scan([private / "deeper"], excluded=[private]).faults[0].kind == "excluded"


def test_a_cancelled_scan_raises_at_once(tmp_path: Path) -> None:
    root = tmp_path / "lib"
    for i in range(300):
        _write(root / f"d{i % 3}" / f"s{i}.wav", seconds=0.01)
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(Cancelled):
        scan([root], cancel=cancel)
    walked = []
    real = scan_module._scandir

    def counting(folder):  # type: ignore[no-untyped-def]
        walked.append(folder)
        if len(walked) == 2:
            cancel.set()
        return real(folder)

    cancel.clear()
    scan_module._scandir = counting
    try:
        with pytest.raises(Cancelled):
            scan([root], cancel=cancel)
    finally:
        scan_module._scandir = real
    assert len(walked) == 2  # stopped in the second folder, never listed the third
    assert len(scan([root], cancel=threading.Event()).snapshot.entries) == 300


def test_hard_link_and_nested_root_are_scanned_once(tmp_path: Path) -> None:
    root = tmp_path / "lib"
    first = _write(root / "sub" / "x.wav")
    os.link(first, root / "y.wav")
    result = scan([root, root / "sub"])
    assert len(result.added) == 1  # y.wav (files before subfolders); x.wav is the same file
    assert sorted(f.kind for f in result.faults) == ["duplicate", "duplicate"]


def test_permission_denied_folder_keeps_its_entries(
    tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Root reads every folder, so the denial is simulated where the scanner lists folders."""
    before = scan([tree])
    real = scan_module._scandir
    blocked = str(tree / "nature")

    def scandir(path: str):  # type: ignore[no-untyped-def]
        if os.fspath(path) == blocked:
            raise PermissionError(13, "Permission denied", path)
        return real(path)

    monkeypatch.setattr(scan_module, "_scandir", scandir)
    after = scan([tree], before.snapshot)
    assert _faults(after)["nature"] == "permission_denied"
    assert after.deleted == ()
    assert sorted(e.relpath for e in after.unreachable) == [
        "nature/Café ☕ ambience.mp3",
        "nature/birds.m4a",
        "nature/rain.ogg",
    ]
    assert after.snapshot.by_id.keys() == before.snapshot.by_id.keys()


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root reads chmod 000 folders")
def test_permission_denied_folder_for_real(tree: Path) -> None:
    before = scan([tree])
    folder = tree / "nature"
    folder.chmod(0)
    try:
        after = scan([tree], before.snapshot)
    finally:
        folder.chmod(0o755)
    assert _faults(after)["nature"] == "permission_denied"
    assert len(after.unreachable) == 3 and after.deleted == ()


def test_unreadable_file_is_a_fault_not_a_deletion(
    tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = scan([tree])
    target = tree / "doors" / "door open.wav"
    target.write_bytes(target.read_bytes() + b"\0\0")  # size changed: it will be re-read
    real_open = scan_module._open

    def guarded(path, *args, **kwargs):  # type: ignore[no-untyped-def]
        if os.fspath(path) == str(target):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(scan_module, "_open", guarded)
    after = scan([tree], before.snapshot)
    assert _faults(after)["door open.wav"] == "unreadable"
    assert [e.relpath for e in after.unreachable] == ["doors/door open.wav"]
    assert after.deleted == () and after.changed == ()


def test_missing_root_is_not_a_mass_deletion(tree: Path, tmp_path: Path) -> None:
    root = LibraryRoot.of(tree, "usb-drive")
    before = scan([root])
    tree.rename(tmp_path / "unplugged")
    after = scan([root], before.snapshot)
    assert [f.kind for f in after.faults] == ["root_missing"]
    assert after.deleted == () and len(after.unreachable) == len(before.added)


def test_rescan_of_an_unchanged_library_hashes_nothing(tree: Path) -> None:
    first = scan([tree])
    assert first.files_hashed == len(first.added)
    second = scan([tree], first.snapshot)
    assert second.files_hashed == 0 and second.bytes_hashed == 0
    assert second.unchanged == first.added
    assert second.to_process == ()
    assert second.snapshot == first.snapshot


def test_diff_added_changed_touched_moved_deleted(tree: Path) -> None:
    first = scan([tree])
    ids = {e.relpath: e.sound_id for e in first.snapshot.entries}

    _write(tree / "new" / "wind.wav", 123)  # added
    _write(tree / "doors" / "door open.wav", 880, seconds=0.5)  # changed in place
    touched = tree / "nature" / "birds.m4a"
    os.utime(touched, ns=(touched.stat().st_atime_ns, touched.stat().st_mtime_ns + 10**9))
    (tree / "moved").mkdir()
    os.rename(tree / "nature" / "rain.ogg", tree / "moved" / "rain renamed.ogg")  # moved
    os.remove(tree / "doors" / "door close.flac")  # deleted (a copy lives on as BAD_NAME)

    second = scan([tree], first.snapshot)
    assert [e.relpath for e in second.added] == ["new/wind.wav"]
    assert [(c.old.relpath, c.new.sound_id) for c in second.changed] == [
        ("doors/door open.wav", ids["doors/door open.wav"])
    ]
    assert [(m.old.relpath, m.new.relpath, m.new.sound_id) for m in second.moved] == [
        ("nature/rain.ogg", "moved/rain renamed.ogg", ids["nature/rain.ogg"])
    ]
    assert [e.relpath for e in second.deleted] == ["doors/door close.flac"]
    assert "nature/birds.m4a" in {e.relpath for e in second.unchanged}  # touched: same hash
    # Hashed: the new, changed, touched and moved files; nothing else.
    assert second.files_hashed == 4
    assert {e.relpath for e in second.to_process} == {"new/wind.wav", "doors/door open.wav"}
    assert len(second.snapshot.entries) == len(first.snapshot.entries)
    kept = second.snapshot.by_id
    assert kept[ids["nature/rain.ogg"]].relpath == "moved/rain renamed.ogg"


def test_new_file_at_a_moved_files_old_path_gets_a_new_id(tmp_path: Path) -> None:
    root = tmp_path / "lib"
    _write(root / "a.wav", 300)
    first = scan([root])
    old_id = first.added[0].sound_id
    os.rename(root / "a.wav", root / "b.wav")
    _write(root / "a.wav", 900)  # different content where the moved file was
    second = scan([root], first.snapshot)
    assert [(m.new.relpath, m.new.sound_id) for m in second.moved] == [("b.wav", old_id)]
    [added] = second.added
    assert added.relpath == "a.wav" and added.sound_id != old_id
    assert added.sound_id == derive_sound_id(added.library_id, "a.wav", salt=1)


def test_identical_copies_moving_pair_up_in_path_order(tmp_path: Path) -> None:
    root = tmp_path / "lib"
    _write(root / "x1.wav")
    shutil.copy(root / "x1.wav", root / "x2.wav")
    first = scan([root])
    ids = {e.relpath: e.sound_id for e in first.added}
    (root / "sub").mkdir()
    for name in ("x1.wav", "x2.wav"):
        os.rename(root / name, root / "sub" / name)
    second = scan([root], first.snapshot)
    assert {m.new.relpath: m.new.sound_id for m in second.moved} == {
        "sub/x1.wav": ids["x1.wav"],
        "sub/x2.wav": ids["x2.wav"],
    }
    assert second.added == () and second.deleted == ()


def test_other_libraries_pass_through(tmp_path: Path) -> None:
    a = LibraryRoot.of(_write(tmp_path / "a" / "one.wav").parent, "lib-a")
    b = LibraryRoot.of(_write(tmp_path / "b" / "two.wav", 500).parent, "lib-b")
    both = scan([a, b])
    only_a = scan([a], both.snapshot)
    assert only_a.deleted == () and only_a.added == ()
    assert only_a.snapshot.by_id.keys() == both.snapshot.by_id.keys()
    assert {r.library_id for r in only_a.snapshot.roots} == {"lib-a", "lib-b"}
    with pytest.raises(ConfigError):
        scan([a, LibraryRoot(tmp_path / "c", "lib-a")])


def test_big_files_get_a_partial_hash(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    big = tmp_path / "big.bin"
    data = bytearray(rng.integers(0, 256, 3 * FULL_HASH_LIMIT, dtype=np.uint8).tobytes())
    big.write_bytes(data)
    digest = content_hash(big)
    assert digest.startswith("b2p:")
    data[10] ^= 0xFF  # the head block is part of the hash
    big.write_bytes(data)
    assert content_hash(big) != digest
    big.write_bytes(bytes(data) + b"x")  # so is the size
    assert content_hash(big) != digest
    small = tmp_path / "small.bin"
    small.write_bytes(b"abc")
    assert content_hash(small).startswith("b2:")


def test_sniffing_headers() -> None:
    assert sniff_audio(b"RIFF\x24\x00\x00\x00WAVEfmt ") == "wav"
    assert sniff_audio(b"RF64\xff\xff\xff\xffWAVEds64") == "wav"
    assert sniff_audio(b"RIFF\x24\x00\x00\x00AVI LIST") is None  # a video
    assert sniff_audio(b"FORM\x00\x00\x00\x10AIFFCOMM") == "aiff"
    assert sniff_audio(b"fLaC\x00\x00\x00\x22") == "flac"
    ogg = b"OggS" + bytes(24)
    assert sniff_audio(ogg + b"\x01vorbis") == "ogg"
    assert sniff_audio(ogg + b"OpusHead") == "opus"
    assert sniff_audio(ogg + b"\x80theora") is None
    assert sniff_audio(b"\x00\x00\x00\x20ftypM4A \x00\x00\x02\x00") == "m4a"
    assert sniff_audio(b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00") == "mp4"
    assert sniff_audio(b"caff\x00\x01\x00\x00") == "caf"
    assert sniff_audio(b"hello world, plain text") is None


def test_random_bytes_are_not_taken_for_audio() -> None:
    rng = np.random.default_rng(7)
    hits = [sniff_audio(rng.integers(0, 256, 4096, dtype=np.uint8).tobytes()) for _ in range(300)]
    assert hits.count(None) == 300


def test_mp3_behind_an_id3_tag_and_video_under_an_audio_name(tmp_path: Path) -> None:
    from mutagen.id3 import ID3, TIT2

    mp3 = _write(tmp_path / "tagged.mp3")
    tags = ID3()
    tags.add(TIT2(encoding=3, text="x" * 6000))  # a tag longer than the sniffed head
    tags.save(mp3)
    assert mp3.read_bytes()[:3] == b"ID3"
    assert sniff_file(mp3) == "mp3"
    clip = tmp_path / "clip.mp3"
    clip.write_bytes(b"\x00\x00\x00\x20ftypisom" + bytes(200))
    result = scan([tmp_path])
    assert [e.relpath for e in result.added] == ["tagged.mp3"]
    assert "likely video" in result.faults[0].reason


def test_long_noise_file_is_found_and_hashed_partially(tmp_path: Path) -> None:
    path = tmp_path / "bed.wav"
    make_audio_file(path, noise_burst(40.0, RATE), RATE)  # 1.28 MB of PCM
    [entry] = scan([tmp_path]).added
    assert entry.size > FULL_HASH_LIMIT and entry.content_hash.startswith("b2p:")


@pytest.mark.real_media
def test_real_libraries_scan_cleanly(
    minetest_sounds: Path, tuxpaint_sounds: Path, ovos_sounds: Path
) -> None:
    roots = [minetest_sounds, tuxpaint_sounds, ovos_sounds]
    first = scan(roots)
    by_lib = {}
    for entry in first.added:
        by_lib[entry.root] = by_lib.get(entry.root, 0) + 1
    assert by_lib[Path(os.path.abspath(minetest_sounds))] >= 100
    assert by_lib[Path(os.path.abspath(tuxpaint_sounds))] >= 100
    assert by_lib[Path(os.path.abspath(ovos_sounds))] == 10
    assert first.faults == ()
    assert {e.format for e in first.added} == {"ogg", "mp3"}
    second = scan(roots, first.snapshot)
    assert second.files_hashed == 0 and len(second.unchanged) == len(first.added)
