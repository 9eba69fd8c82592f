"""Find, download (resumably) and verify model checkpoints.

Where a checkpoint is looked for, first match wins:

1. an explicit path (argument or configuration): used as is, never downloaded or hashed,
   so a fine-tuned file can be pointed at;
2. the environment variable named by the spec (``SFXMATCH_IMAGEBIND_CHECKPOINT``): same;
3. the user cache, ``<cache>/models/<filename>`` (``SFXMATCH_CACHE_DIR`` or platformdirs'
   ``user_cache_dir("sfxmatch")``): verified against the pinned SHA-256 once, then trusted
   through a ``<filename>.sha256`` stamp recording hash, size and mtime; downloaded from the
   spec's URL when absent.

Downloads go to ``<filename>.part`` beside the target and resume with an HTTP Range request
guarded by ``If-Range`` (the server's ETag / Last-Modified, kept in ``<filename>.part.json``),
so a file that changed on the server restarts rather than splicing two versions. The file
is hashed while it streams and only renamed into place (atomically) when the hash matches;
a complete-but-wrong ``.part`` is deleted, because resuming can never repair it.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import json
import os
import re
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Literal, Protocol

from sfxmatch.config import ENV_CACHE_DIR, ENV_IMAGEBIND_CHECKPOINT, ENV_OFFLINE, Settings, env_path
from sfxmatch.errors import ModelError
from sfxmatch.files import fsync_folder, write_text_atomic

ProgressCallback = Callable[[int, "int | None"], None]
"""Called with (bytes done, total bytes or None) as a download or a hash check advances."""

DownloadProgress = ProgressCallback | Literal["rich"] | None
"""``"rich"``: a progress bar on stderr; None: silent; a callable: the daemon's own seam."""

_CHUNK = 1 << 20
_MAX_ATTEMPTS = 5  # resumes after a dropped connection that still made progress


@dataclass(frozen=True)
class CheckpointSpec:
    """What a checkpoint is and where it comes from."""

    name: str  # human name for messages
    filename: str
    url: str
    sha256: str | None  # pinned hash; None records the first download's hash in the stamp
    size: int | None  # bytes, for messages and an early sanity check
    env_var: str
    license: str


IMAGEBIND_HUGE = CheckpointSpec(
    name="ImageBind huge",
    filename="imagebind_huge.pth",
    # The URL upstream's imagebind_model.imagebind_huge(pretrained=True) downloads.
    url="https://dl.fbaipublicfiles.com/imagebind/imagebind_huge.pth",
    # Meta publishes no checksum. This one is published twice independently for that URL's
    # file: the Git LFS object of a Hugging Face mirror (vdo/Video-LLaMA-Series,
    # ckpt/imagebind_huge.pth) and a project that hashed the official download (4803584173 B).
    sha256="d6f6c22bedcc90708448d5d2fbb7b2db9c73f505dc89bd0b2e09b23af1b62157",
    size=4_803_584_173,
    env_var=ENV_IMAGEBIND_CHECKPOINT,
    license="CC BY-NC-SA 4.0 (non-commercial use only)",
)


def cache_path(spec: CheckpointSpec = IMAGEBIND_HUGE, settings: Settings | None = None) -> Path:
    """Where the checkpoint lives in the user cache (whether or not it exists yet)."""
    settings = settings or Settings.from_env()
    return settings.models_dir / spec.filename


def ensure_checkpoint(
    spec: CheckpointSpec = IMAGEBIND_HUGE,
    path: str | os.PathLike[str] | None = None,
    *,
    settings: Settings | None = None,
    download: bool = True,
    progress: DownloadProgress = "rich",
    timeout: float = 30.0,
) -> Path:
    """Return the path of a usable checkpoint, downloading it into the cache if needed.

    Raises ModelError, saying what failed and how to provide the file by hand, when the
    file cannot be had (offline, hash mismatch, an explicit path that does not exist).
    """
    settings = settings or Settings.from_env()
    if path is not None:
        return _existing(Path(path).expanduser(), spec, "the path given")
    if spec.env_var == ENV_IMAGEBIND_CHECKPOINT:
        from_env = settings.imagebind_checkpoint  # read from that variable by Settings
    else:
        from_env = env_path(spec.env_var)  # config reads the environment
    if from_env is not None:
        return _existing(from_env, spec, f"${spec.env_var}")

    target = cache_path(spec, settings)
    if _stamp_ok(target, spec):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with file_lock(target.with_name(target.name + ".lock")):
        # Another process may have finished the work while we waited for the lock.
        if _stamp_ok(target, spec):
            return target
        if target.exists():
            _verify_in_place(target, spec, progress)
            return target
        if not download or settings.offline:
            why = "it is not in the cache" + (f" and ${ENV_OFFLINE} is set" if download else "")
            raise ModelError(_missing_message(spec, target, why))
        digest = download_file(
            spec.url,
            target,
            sha256=spec.sha256,
            expected_size=spec.size,
            progress=progress,
            timeout=timeout,
            description=f"{spec.name} ({spec.license})",
        )
        # Unpinned specs trust the first download and check hand-placed files against it.
        _write_stamp(target, digest)
        return target


def download_file(
    url: str,
    dest: str | os.PathLike[str],
    *,
    sha256: str | None = None,
    expected_size: int | None = None,
    progress: DownloadProgress = "rich",
    timeout: float = 30.0,
    description: str | None = None,
    by_hand: str | None = None,
) -> str:
    """Download ``url`` to ``dest`` through ``dest.part``, resuming, and return its SHA-256.

    The caller holds any inter-process lock. Network failures raise ModelError and keep the
    ``.part`` for the next call to resume; a hash mismatch deletes it and raises ModelError.
    ``by_hand``: what the error tells a user without network access to do instead.
    """
    dest = Path(dest)
    part = dest.with_name(dest.name + ".part")
    meta = dest.with_name(dest.name + ".part.json")
    with progress_sink(progress, description or dest.name) as report:
        attempts = 0
        while True:
            attempts += 1
            before = part.stat().st_size if part.exists() else 0
            try:
                digest = _download_attempt(url, part, meta, expected_size, report, timeout)
                break
            except _Interrupted as interrupted:
                after = part.stat().st_size if part.exists() else 0
                # Retry at once while each attempt gets further; give up when one makes none.
                if after > before and attempts < _MAX_ATTEMPTS:
                    continue
                reason = str(interrupted.__cause__ or interrupted)
                raise ModelError(_offline_message(url, dest, part, reason, by_hand)) from None
    if sha256 is not None and digest != sha256.lower():
        part.unlink(missing_ok=True)
        meta.unlink(missing_ok=True)
        raise ModelError(
            f"downloaded {url} but its SHA-256 is {digest}, not the expected {sha256}; the "
            f"corrupt download was deleted: run again to download it afresh, or put a good "
            f"copy at {dest} by hand"
        )
    os.replace(part, dest)  # atomic on one filesystem: the final name is never half-written
    fsync_folder(dest.parent)
    meta.unlink(missing_ok=True)
    return digest


def checkpoint_digest(
    path: str | os.PathLike[str],
    *,
    settings: Settings | None = None,
    progress: DownloadProgress = "rich",
) -> str:
    """SHA-256 of a checkpoint, computed once per (path, size, mtime) and remembered.

    Model ids (and so embedding cache keys) name the weights by content; hashing 4.8 GB on
    every start would cost seconds, so results live in ``<models>/digests.json``. A cache
    file with a valid stamp needs no hashing at all.
    """
    settings = settings or Settings.from_env()
    path = Path(path).resolve()
    stat = path.stat()
    with contextlib.suppress(OSError, ValueError):
        digest, size, mtime_ns = _stamp_path(path).read_text().split()
        if int(size) == stat.st_size and int(mtime_ns) == stat.st_mtime_ns:
            return digest
    book = settings.models_dir / "digests.json"
    signature = [stat.st_size, stat.st_mtime_ns]
    known: dict[str, list[object]] = {}
    with contextlib.suppress(OSError, ValueError):
        known = json.loads(book.read_text())
    entry = known.get(str(path))
    if isinstance(entry, list) and entry[:2] == signature and isinstance(entry[2], str):
        return entry[2]
    with progress_sink(progress, f"hashing {path.name}") as report:
        digest = sha256_file(path, report)
    book.parent.mkdir(parents=True, exist_ok=True)
    with file_lock(book.with_name(book.name + ".lock")):
        with contextlib.suppress(OSError, ValueError):
            known = json.loads(book.read_text())  # another process may have added entries
        known[str(path)] = [*signature, digest]
        write_text_atomic(book, json.dumps(known, indent=1))
    return digest


def sha256_file(path: str | os.PathLike[str], report: ProgressCallback | None = None) -> str:
    """SHA-256 of a file, read in 1 MiB chunks."""
    hasher = hashlib.sha256()
    _hash_into(hasher, Path(path), report)
    return hasher.hexdigest()


# --- the download itself ------------------------------------------------------------------


class _Interrupted(Exception):
    """The transfer stopped (network); the .part is kept for a resume."""


class _Restart(Exception):
    """The partial file cannot be continued; start again from byte 0."""


_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)", re.IGNORECASE)
_UNSATISFIED_RANGE = re.compile(r"bytes\s+\*/(\d+)", re.IGNORECASE)


def _download_attempt(
    url: str,
    part: Path,
    meta: Path,
    expected_size: int | None,
    report: ProgressCallback,
    timeout: float,
) -> str:
    for _ in range(2):  # a second pass only after a _Restart
        try:
            return _fetch_into(url, part, meta, expected_size, report, timeout)
        except _Restart:
            part.unlink(missing_ok=True)
            meta.unlink(missing_ok=True)
    raise _Interrupted("the server would not serve a consistent file")


def _fetch_into(
    url: str,
    part: Path,
    meta: Path,
    expected_size: int | None,
    report: ProgressCallback,
    timeout: float,
) -> str:
    offset = part.stat().st_size if part.exists() else 0
    if expected_size is not None and offset > expected_size:
        raise _Restart
    headers = {"User-Agent": "sfxmatch (checkpoint download)", "Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
        validator = _read_validator(meta)
        if validator:
            # The server sends the whole (new) file with 200 if it changed since the .part began.
            headers["If-Range"] = validator
    request = urllib.request.Request(url, headers=headers)
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as error:
        if error.code == 416 and offset:
            # Nothing left to send: the .part is complete when the resource is exactly this size.
            match = _UNSATISFIED_RANGE.search(error.headers.get("Content-Range", ""))
            error.close()
            if match and int(match.group(1)) == offset:
                return sha256_file(part, report)
            raise _Restart from None
        error.close()
        raise _Interrupted(f"HTTP {error.code} {error.reason}") from error
    except (urllib.error.URLError, OSError, http.client.HTTPException) as error:
        raise _Interrupted(str(getattr(error, "reason", error))) from error

    with response:
        hasher = hashlib.sha256()
        if response.status == 206:
            match = _CONTENT_RANGE.search(response.headers.get("Content-Range", ""))
            if not match or int(match.group(1)) != offset:
                raise _Restart  # a range we did not ask for: do not splice it in
            total = None if match.group(3) == "*" else int(match.group(3))
            _check_size(total, expected_size, url, part, meta)
            _hash_into(hasher, part, report, total)  # the existing prefix, then the new bytes
            mode = "ab"
        elif response.status == 200:
            # The server ignored Range, or If-Range said the file changed: start over.
            offset = 0
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            _check_size(total, expected_size, url, part, meta)
            mode = "wb"
        else:
            raise _Interrupted(f"unexpected HTTP status {response.status}")
        _write_validator(meta, response.headers)
        done = offset
        with open(part, mode) as out:
            try:
                while chunk := response.read(_CHUNK):
                    out.write(chunk)
                    hasher.update(chunk)
                    done += len(chunk)
                    report(done, total)
            except (OSError, http.client.HTTPException) as error:
                raise _Interrupted(str(error) or type(error).__name__) from error
            finally:
                out.flush()
                os.fsync(out.fileno())
        if total is not None and done != total:
            raise _Interrupted(f"connection closed after {done} of {total} bytes")
    return hasher.hexdigest()


def _check_size(total: int | None, expected: int | None, url: str, part: Path, meta: Path) -> None:
    # Fail before gigabytes are fetched: a different size can never give the pinned hash.
    if total is not None and expected is not None and total != expected:
        part.unlink(missing_ok=True)
        meta.unlink(missing_ok=True)
        raise ModelError(
            f"{url} offers {total} bytes, not the expected {expected}: the file on the server "
            f"is not the known checkpoint; put a good copy in place by hand"
        )


def _read_validator(meta: Path) -> str | None:
    try:
        data = json.loads(meta.read_text())
    except (OSError, ValueError):
        return None
    etag = data.get("etag")
    # Weak ETags are not allowed in If-Range; fall back to the date then.
    if isinstance(etag, str) and etag and not etag.startswith("W/"):
        return etag
    modified = data.get("last_modified")
    return modified if isinstance(modified, str) and modified else None


def _write_validator(meta: Path, headers: http.client.HTTPMessage) -> None:
    data = {"etag": headers.get("ETag"), "last_modified": headers.get("Last-Modified")}
    meta.write_text(json.dumps(data))


class _Hasher(Protocol):
    def update(self, data: bytes, /) -> None: ...


def _hash_into(
    hasher: _Hasher,
    path: Path,
    report: ProgressCallback | None,
    total: int | None = None,
) -> None:
    if not path.exists():
        return
    size = path.stat().st_size if total is None else total
    done = 0
    with open(path, "rb") as stream:
        while block := stream.read(_CHUNK):
            hasher.update(block)
            done += len(block)
            if report is not None:
                report(done, size)


# --- files found in the cache -----------------------------------------------------------------


def _stamp_path(target: Path) -> Path:
    return target.with_name(target.name + ".sha256")


def _stamp_ok(target: Path, spec: CheckpointSpec) -> bool:
    """True when the file exists and was verified before, unchanged since (size, mtime)."""
    try:
        digest, size, mtime_ns = _stamp_path(target).read_text().split()
        stat = target.stat()
    except (OSError, ValueError):
        return False
    if int(size) != stat.st_size or int(mtime_ns) != stat.st_mtime_ns:
        return False
    return spec.sha256 is None or digest == spec.sha256


def _write_stamp(target: Path, digest: str) -> None:
    stat = target.stat()
    stamp = _stamp_path(target)
    write_text_atomic(stamp, f"{digest} {stat.st_size} {stat.st_mtime_ns}\n")


def _verify_in_place(target: Path, spec: CheckpointSpec, progress: DownloadProgress) -> None:
    """A file put in the cache by hand (or an old stamp): hash it once."""
    recorded = None
    with contextlib.suppress(OSError, ValueError):
        recorded = _stamp_path(target).read_text().split()[0]
    with progress_sink(progress, f"checking {target.name}") as report:
        digest = sha256_file(target, report)
    expected = spec.sha256 or recorded
    if expected is not None and digest != expected:
        raise ModelError(
            f"{target} has SHA-256 {digest}, not the expected {expected}: the file is damaged "
            f"or is another model; delete it so it is downloaded again from {spec.url}, or "
            f"point ${spec.env_var} at the file you mean to use"
        )
    _write_stamp(target, digest)


def _existing(path: Path, spec: CheckpointSpec, source: str) -> Path:
    if path.is_file():
        return path
    raise ModelError(
        f"the {spec.name} checkpoint named by {source} does not exist: {path}; fix the path, "
        f"or unset it to use the cache (download from {spec.url})"
    )


def _size_text(spec_size: int | None) -> str:
    return f", {spec_size / 1e9:.1f} GB" if spec_size else ""


def _missing_message(spec: CheckpointSpec, target: Path, why: str) -> str:
    return (
        f"the {spec.name} checkpoint is missing ({why}); download {spec.url}"
        f"{_size_text(spec.size)} and put it at {target}, or point ${spec.env_var} at it "
        f"(cache location: ${ENV_CACHE_DIR})"
    )


def _offline_message(url: str, dest: Path, part: Path, reason: str, by_hand: str | None) -> str:
    kept = part.stat().st_size if part.exists() else 0
    resume = f"; {kept} bytes kept in {part} resume next time" if kept else ""
    instead = by_hand or (
        f"download it on another machine and put it at {dest}, or point "
        f"${ENV_IMAGEBIND_CHECKPOINT} at it"
    )
    return f"could not download {url}: {reason}{resume}. Without network access, {instead}"


# --- progress and locking -----------------------------------------------------------------


@contextlib.contextmanager
def progress_sink(progress: DownloadProgress, description: str) -> Iterator[ProgressCallback]:
    if progress is None:
        yield lambda done, total: None
        return
    if callable(progress):
        yield progress
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )
    from rich.progress import Progress as RichProgress

    bar = RichProgress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=Console(file=sys.stderr),
        transient=False,
    )
    with bar:
        task = bar.add_task(description, total=None)

        def report(done: int, total: int | None) -> None:
            bar.update(task, completed=done, total=total)

        yield report


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive inter-process lock held while one process downloads or verifies."""
    with open(path, "a+b") as handle:
        _lock(handle)
        try:
            yield
        finally:
            _unlock(handle)


def _lock(handle: IO[bytes]) -> None:
    if sys.platform == "win32":  # spelled so type checkers skip it elsewhere
        import msvcrt

        handle.seek(0)
        while True:
            try:
                msvcrt.locking(handle.fileno(), msvcrt.LK_LOCK, 1)  # retries for ~10 s itself
                return
            except OSError:
                continue
    import fcntl

    fcntl.flock(handle.fileno(), fcntl.LOCK_EX)


def _unlock(handle: IO[bytes]) -> None:
    if sys.platform == "win32":
        import msvcrt

        handle.seek(0)
        msvcrt.locking(handle.fileno(), msvcrt.LK_UNLCK, 1)
        return
    import fcntl

    fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
