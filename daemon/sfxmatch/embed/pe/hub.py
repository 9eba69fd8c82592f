"""Where a PE-AV checkpoint folder comes from: a folder you name, or the Hugging Face hub.

First match wins:

1. an explicit folder (argument or ``$SFXMATCH_WEIGHTS``): used as it is, for offline
   machines and fine-tuned copies; it must hold the files in :data:`REQUIRED`;
2. the user cache, ``<cache>/models/hub`` (``SFXMATCH_CACHE_DIR``), in huggingface_hub's
   cache layout: the small files downloaded by ``hf_hub_download``; the weights (gigabytes)
   located through huggingface_hub (``get_hf_file_metadata``: the hub's commit, the file's
   SHA-256 and where its bytes are served) and fetched by sfxmatch's resumable downloader
   into the cache's blob of that name, because huggingface_hub 2.x writes each attempt to a
   process-unique ``.incomplete`` file it deletes on failure: a download interrupted for
   good would start over. Every file is checked against the hash the hub names it by before
   first use, then trusted through a stamp of its size and time.

``$SFXMATCH_OFFLINE=1`` never touches the network: the cache (or the folder) must already
hold the files, else one line says which model, which folder and how to get it. It reads
the cache itself rather than calling ``hf_hub_download(local_files_only=True)``, which still
builds request headers: a token lookup (an OAuth token may be refreshed online) and, with
huggingface_hub's telemetry on, a fetch of the hub's agent list.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any

from sfxmatch.config import ENV_OFFLINE, ENV_WEIGHTS, Settings
from sfxmatch.embed.checkpoint import DownloadProgress, download_file, file_lock
from sfxmatch.embed.registry import ModelSpec
from sfxmatch.errors import ModelError

REVISION = "main"  # the hub's current checkpoint; its commit is part of the model id
WEIGHTS = "model.safetensors"
REQUIRED = ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json")
OPTIONAL = ("preprocessor_config.json", "video_preprocessor_config.json")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_GIT_SHA1 = re.compile(r"^[0-9a-f]{40}$")


def hub_cache(settings: Settings) -> Path:
    return settings.models_dir / "hub"


def checkpoint_folder(
    spec: ModelSpec,
    folder: str | os.PathLike[str] | None = None,
    *,
    settings: Settings,
    download: bool = True,
    progress: DownloadProgress = "rich",
) -> Path:
    """A folder holding ``spec``'s checkpoint files, downloading them if needed and allowed."""
    explicit = folder or settings.weights
    if explicit is not None:
        return _given(spec, Path(explicit).expanduser())
    if spec.hub_repo is None:
        raise ModelError(f"{spec.name} has no weights to download")
    offline = settings.offline or not download
    cache = hub_cache(settings)
    cache.mkdir(parents=True, exist_ok=True)
    with file_lock(cache / f"{spec.name}.lock"):
        paths = [_fetch(spec, name, cache, offline, progress, required=True) for name in REQUIRED]
        for name in OPTIONAL:
            _fetch(spec, name, cache, offline, progress, required=False)
    return paths[0].parent


def cached_folder(spec: ModelSpec, settings: Settings) -> Path | None:
    """The folder of ``spec``'s files when they are all here already (nothing downloaded)."""
    if settings.weights is not None:
        folder = Path(settings.weights).expanduser()
        return folder if all((folder / n).is_file() for n in REQUIRED) else None
    if spec.hub_repo is None:
        return None
    from huggingface_hub import try_to_load_from_cache

    cache = hub_cache(settings)
    found = [
        try_to_load_from_cache(spec.hub_repo, name, cache_dir=cache, revision=REVISION)
        for name in REQUIRED
    ]
    if not all(isinstance(path, str) for path in found):
        return None
    return Path(str(found[0])).parent


def _given(spec: ModelSpec, folder: Path) -> Path:
    if not folder.is_dir():
        raise ModelError(f"{spec.name}: {folder} (${ENV_WEIGHTS}) is not a folder")
    missing = [name for name in REQUIRED if not (folder / name).is_file()]
    if missing:
        raise ModelError(
            f"{spec.name}: {folder} lacks {', '.join(missing)}: it must hold the files of "
            f"https://huggingface.co/{spec.hub_repo}"
        )
    return folder


def _fetch(
    spec: ModelSpec,
    name: str,
    cache: Path,
    offline: bool,
    progress: DownloadProgress,
    *,
    required: bool,
) -> Path:
    import httpx2
    from huggingface_hub import hf_hub_download, try_to_load_from_cache
    from huggingface_hub.errors import EntryNotFoundError, LocalEntryNotFoundError

    assert spec.hub_repo is not None
    if offline:  # the cache only (see the module docstring for why not local_files_only)
        found = try_to_load_from_cache(spec.hub_repo, name, cache_dir=cache, revision=REVISION)
        if isinstance(found, str):
            verify(Path(found))
            return Path(found)
        if not required:
            return cache
        raise ModelError(_missing(spec, cache, offline, reason=""))
    try:
        if name == WEIGHTS:
            path = _fetch_weights(spec, cache, progress)
        else:
            path = hf_hub_download(
                spec.hub_repo, name, revision=REVISION, cache_dir=cache, tqdm_class=_silent_tqdm()
            )
    except LocalEntryNotFoundError as exc:  # (a subclass of EntryNotFoundError)
        # The hub could not be reached and the cache lacks the file.
        if not required:
            return cache
        raise ModelError(_missing(spec, cache, offline, reason=str(exc))) from None
    except EntryNotFoundError:
        if required:
            raise ModelError(f"{spec.name}: {spec.hub_repo} has no {name}") from None
        return cache
    # huggingface_hub's own errors are OSErrors, but httpx2's transport errors (a connection
    # dropped for good, a HEAD answered by a closed socket) are not and pass through it.
    except (OSError, httpx2.HTTPError) as exc:
        raise ModelError(_missing(spec, cache, offline, reason=str(exc))) from None
    verify(Path(path))
    return Path(path)


def _missing(spec: ModelSpec, cache: Path, offline: bool, reason: str) -> str:
    first = reason.strip().splitlines()[0][:160] if reason.strip() else "no connection"
    why = f"${ENV_OFFLINE} is set" if offline else f"the download failed ({first})"
    return (
        f"{spec.name}: the weights are not in {cache} and {why}: run `sfxmatch models fetch "
        f"{spec.name}` where https://huggingface.co/{spec.hub_repo} can be reached, or set "
        f"${ENV_WEIGHTS} to a folder holding that repository's files"
    )


def verify(path: Path) -> None:
    """Check a downloaded file against the name the hub gave it: huggingface_hub stores each
    file as a blob named by its ETag, the SHA-256 for large (LFS) files and the git blob
    hash for small ones. A mismatch deletes the blob (the next run downloads it again)."""
    blob = path.resolve()
    etag = blob.name
    stamp = blob.with_name(f"{etag}.verified")
    stat = blob.stat()
    signature = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    try:
        if json.loads(stamp.read_text()) == signature:
            return
    except (OSError, ValueError):
        pass
    if _SHA256.match(etag):
        digest = _hash(blob, hashlib.sha256())
    elif _GIT_SHA1.match(etag):
        digest = _hash(blob, hashlib.sha1(f"blob {stat.st_size}\0".encode()))
    else:
        return  # not a name we can check (a hand-made cache): trusted as the folder case
    if digest != etag:
        blob.unlink(missing_ok=True)
        raise ModelError(
            f"{path.name} from the hub is corrupt (its hash is {digest[:12]}..., the hub says "
            f"{etag[:12]}...); it was deleted: run the command again to download it again"
        )
    stamp.write_text(json.dumps(signature))


def _hash(path: Path, hasher: Any) -> str:
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            hasher.update(chunk)
    return str(hasher.hexdigest())


def _fetch_weights(spec: ModelSpec, cache: Path, progress: DownloadProgress) -> str:
    """The weights into huggingface_hub's cache layout (``blobs/<sha256>`` and the
    snapshot's link to it), through sfxmatch's resumable, hash-checking downloader."""
    from huggingface_hub import get_hf_file_metadata, hf_hub_download, hf_hub_url

    assert spec.hub_repo is not None
    meta = get_hf_file_metadata(hf_hub_url(spec.hub_repo, WEIGHTS, revision=REVISION))
    etag = (meta.etag or "").lower()
    if not _SHA256.match(etag) or not meta.commit_hash or not meta.location:
        # Not stored as a large (LFS) file: huggingface_hub fetches it whole.
        return str(hf_hub_download(spec.hub_repo, WEIGHTS, revision=REVISION, cache_dir=cache))
    repo = cache / f"models--{spec.hub_repo.replace('/', '--')}"
    blob = repo / "blobs" / etag
    if not blob.is_file():
        blob.parent.mkdir(parents=True, exist_ok=True)
        try:
            download_file(
                meta.location,
                blob,
                sha256=etag,
                expected_size=meta.size,
                progress=progress,
                description=f"{spec.name} weights ({spec.licence})",
                by_hand=(
                    f"set ${ENV_WEIGHTS} to a folder holding the files of "
                    f"https://huggingface.co/{spec.hub_repo}"
                ),
            )
        except ModelError as exc:
            raise ModelError(f"{spec.name}: {exc}") from None
        stat = blob.stat()  # just hashed while downloading: stamp it as verified
        blob.with_name(f"{etag}.verified").write_text(
            json.dumps({"size": stat.st_size, "mtime_ns": stat.st_mtime_ns})
        )
    pointer = repo / "snapshots" / meta.commit_hash / WEIGHTS
    pointer.parent.mkdir(parents=True, exist_ok=True)
    if not pointer.exists():
        pointer.unlink(missing_ok=True)  # a dangling link to a blob deleted as corrupt
        try:
            pointer.symlink_to(os.path.relpath(blob, pointer.parent))
        except OSError:  # no symlinks (Windows without developer mode): a hard link
            os.link(blob, pointer)
    refs = repo / "refs" / REVISION
    refs.parent.mkdir(parents=True, exist_ok=True)
    refs.write_text(meta.commit_hash)
    return str(pointer)


def _silent_tqdm() -> type:
    """A tqdm class for huggingface_hub's small downloads that draws nothing (the weights
    have sfxmatch's own progress)."""
    from tqdm.auto import tqdm

    class Silent(tqdm):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs["disable"] = True
            super().__init__(*args, **kwargs)

    return Silent
