"""PE-AV checkpoint folders: a named folder, or huggingface_hub against a loopback hub double."""

from __future__ import annotations

import hashlib
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from hub_double import Drop, Fail, HubDouble, git_blob_sha1, running, use_double
from huggingface_hub import constants, file_download
from huggingface_hub.utils import _detect_agent
from huggingface_hub.utils import _http as hf_http
from sfxmatch.config import Settings
from sfxmatch.embed.pe import hub
from sfxmatch.embed.pe.hub import OPTIONAL, REQUIRED, cached_folder, checkpoint_folder, verify
from sfxmatch.embed.registry import get_model
from sfxmatch.errors import ModelError

SPEC = get_model("pe-av-small")
# Over two of the downloader's 1 MiB reads: several progress steps.
WEIGHTS = np.random.default_rng(11).integers(0, 256, 2_500_000, dtype=np.uint8).tobytes()
SHA256 = hashlib.sha256(WEIGHTS).hexdigest()
FILES = {
    "config.json": b'{"model_type": "pe_audio_video"}',
    "model.safetensors": WEIGHTS,
    "tokenizer.json": b'{"version": "1.0", "model": {"type": "BPE"}}',
    "tokenizer_config.json": b'{"tokenizer_class": "PreTrainedTokenizerFast"}',
    "preprocessor_config.json": b'{"sampling_rate": 48000}',
    "video_preprocessor_config.json": b'{"size": {"height": 336, "width": 336}}',
}
CHUNK = 65_536  # huggingface_hub's download chunk (10 MiB) made small: several progress steps


class _Clock:
    """huggingface_hub's ``time`` module without the waits: its backoff sleeps 1-8 s a retry."""

    def __init__(self) -> None:
        self.slept: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)

    def __getattr__(self, name: str) -> object:
        return getattr(time, name)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> _Clock:
    clock = _Clock()
    monkeypatch.setattr(file_download, "time", clock)  # http_get's wait before resuming
    monkeypatch.setattr(hf_http, "time", clock)  # http_backoff's waits
    monkeypatch.setattr(constants, "DOWNLOAD_CHUNK_SIZE", CHUNK)
    return clock


@pytest.fixture
def double(monkeypatch: pytest.MonkeyPatch, clock: _Clock) -> Iterator[HubDouble]:
    with running(SPEC.hub_repo or "", FILES, frozenset({"model.safetensors"})) as served:
        use_double(monkeypatch, served.endpoint)
        yield served


def _settings(tmp_path: Path, **changes: object) -> Settings:
    return Settings(cache_dir=tmp_path / "cache", **changes)  # type: ignore[arg-type]


def _fetch(settings: Settings, **kwargs: object) -> Path:
    kwargs.setdefault("progress", None)
    return checkpoint_folder(SPEC, settings=settings, **kwargs)  # type: ignore[arg-type]


def _repo_dir(settings: Settings) -> Path:
    return settings.models_dir / "hub" / "models--facebook--pe-av-small"


def _leftovers(settings: Settings) -> list[str]:
    blobs = _repo_dir(settings) / "blobs"
    return sorted(p.name for p in blobs.iterdir() if p.name.endswith(".incomplete"))


def _content_gets(double: HubDouble) -> list[tuple[str, str | None]]:
    """(file, Range) of each GET that fetched a file's bytes (the CDN's named by sha256)."""
    gets = [r for r in double.gets() if r.server == "cdn" or "/resolve/" in r.path]
    return [
        ("model.safetensors" if r.server == "cdn" else r.path.rsplit("/", 1)[1], r.range)
        for r in gets
    ]


def test_first_use_downloads_every_file_then_the_cache_answers(double, tmp_path, monkeypatch):
    settings = _settings(tmp_path)
    assert cached_folder(SPEC, settings) is None
    seen: list[tuple[int, int | None]] = []

    folder = _fetch(settings, progress=lambda done, total: seen.append((done, total)))

    assert folder == _repo_dir(settings) / "snapshots" / double.commit
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == FILES
    assert sorted(_content_gets(double)) == sorted((name, None) for name in FILES)
    assert double.gets("cdn")[0].path == f"/repos/{SHA256}"
    dones = [done for done, _ in seen]
    assert len(dones) > 1 and dones == sorted(dones)
    assert seen[-1] == (len(WEIGHTS), len(WEIGHTS))
    blobs = _repo_dir(settings) / "blobs"
    assert (blobs / SHA256).read_bytes() == WEIGHTS  # the LFS file is named by its sha256
    assert (blobs / git_blob_sha1(FILES["config.json"])).is_file()  # a small one by git's id
    assert len(list(blobs.glob("*.verified"))) == len(FILES)
    assert cached_folder(SPEC, settings) == folder

    hashed: list[Path] = []
    real_hash = hub._hash
    monkeypatch.setattr(hub, "_hash", lambda path, h: hashed.append(path) or real_hash(path, h))
    double.requests.clear()
    assert _fetch(settings) == folder
    # huggingface_hub revalidates each name with a HEAD; the stamps spare the hashing.
    assert {(r.server, r.method) for r in double.requests} == {("hub", "HEAD")}
    assert len(double.requests) == len(REQUIRED) + len(OPTIONAL)
    assert hashed == []

    double.requests.clear()
    assert _fetch(_settings(tmp_path, offline=True)) == folder
    assert double.requests == []


def test_dropped_connection_resumes_with_a_range_request(double, tmp_path, clock):
    settings = _settings(tmp_path)
    double.faults["model.safetensors"] = [Drop(1_500_000)]
    seen: list[tuple[int, int | None]] = []

    folder = _fetch(settings, progress=lambda done, total: seen.append((done, total)))

    assert (folder / "model.safetensors").read_bytes() == WEIGHTS
    # Every byte that arrived is kept: the download goes on from exactly there.
    assert [r.range for r in double.gets("cdn")] == [None, "bytes=1500000-"]
    # (the kept part is hashed again before the rest arrives, and reported as it is)
    assert all(done <= len(WEIGHTS) for done, _ in seen)
    assert seen[-1] == (len(WEIGHTS), len(WEIGHTS))
    assert not list((_repo_dir(settings) / "blobs").glob("*.part*"))


def test_a_download_failing_for_good_is_resumed_by_the_next_call(double, tmp_path):
    # Gigabytes of weights over a bad connection: what arrived is kept beside the blob and
    # the next run asks only for the rest.
    settings = _settings(tmp_path)
    double.faults["model.safetensors"] = [Drop(1_500_000), Fail(503)]

    with pytest.raises(ModelError, match="could not download") as failure:
        _fetch(settings)
    message = str(failure.value)
    assert message.startswith("pe-av-small: ") and "1500000 bytes kept" in message
    assert "SFXMATCH_WEIGHTS" in message and "SFXMATCH_OFFLINE" not in message
    assert not (_repo_dir(settings) / "blobs" / SHA256).exists()
    assert cached_folder(SPEC, settings) is None

    double.requests.clear()
    folder = _fetch(settings)
    assert (folder / "model.safetensors").read_bytes() == WEIGHTS
    assert [r.range for r in double.gets("cdn")] == ["bytes=1500000-"]
    assert cached_folder(SPEC, settings) == folder


def test_connection_dropping_on_every_try_is_a_model_error(double, tmp_path, clock):
    double.faults["model.safetensors"] = [Drop(0)] * 10

    with pytest.raises(ModelError, match="pe-av-small: could not download"):
        _fetch(_settings(tmp_path))
    assert len(double.gets("cdn")) == 1  # no progress, no point retrying at once


def test_corrupt_download_is_deleted_and_fetched_again(double, tmp_path):
    settings = _settings(tmp_path)
    double.corrupt.add("model.safetensors")

    with pytest.raises(ModelError, match=r"model\.safetensors .*corrupt.*deleted"):
        _fetch(settings)
    blobs = _repo_dir(settings) / "blobs"
    assert not (blobs / SHA256).exists()
    assert not (blobs / f"{SHA256}.verified").exists()
    assert cached_folder(SPEC, settings) is None
    with pytest.raises(ModelError, match=r"not in .* \$SFXMATCH_OFFLINE is set"):
        _fetch(_settings(tmp_path, offline=True))  # the dangling link is not a cached file

    double.corrupt.clear()
    double.requests.clear()
    folder = _fetch(settings)
    assert (folder / "model.safetensors").read_bytes() == WEIGHTS
    # config.json came before the failure and stays; the files after it were never fetched.
    assert sorted(_content_gets(double)) == sorted((n, None) for n in FILES if n != "config.json")


def test_missing_optional_file_is_fine(double, tmp_path):
    del double.files["video_preprocessor_config.json"]
    settings = _settings(tmp_path)

    folder = _fetch(settings)

    assert sorted(p.name for p in folder.iterdir()) == sorted(
        set(FILES) - {"video_preprocessor_config.json"}
    )
    missing = [r for r in double.requests if r.path.endswith("/video_preprocessor_config.json")]
    assert [r.method for r in missing] == ["HEAD"]
    double.requests.clear()
    assert _fetch(_settings(tmp_path, offline=True)) == folder  # the absence is cached too
    assert double.requests == []


def test_missing_required_file_is_named(double, tmp_path):
    del double.files["tokenizer.json"]
    with pytest.raises(
        ModelError, match=r"^pe-av-small: facebook/pe-av-small has no tokenizer\.json$"
    ):
        _fetch(_settings(tmp_path))


@pytest.mark.parametrize("how", ["environment", "settings", "download=False"])
def test_offline_with_an_empty_cache_says_how_to_get_the_weights(
    double, tmp_path, monkeypatch, how
):
    # Telemetry on, as users have it: offline must not even fetch huggingface_hub's agent list.
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_TELEMETRY", False)
    monkeypatch.setattr(constants, "AGENT_HARNESSES_PATH", str(tmp_path / "agents.json"))
    monkeypatch.setattr(_detect_agent, "_registry", None)
    kwargs: dict[str, object] = {}
    if how == "environment":
        monkeypatch.setenv("SFXMATCH_OFFLINE", "1")
        monkeypatch.setenv("SFXMATCH_CACHE_DIR", str(tmp_path / "cache"))
        monkeypatch.delenv("SFXMATCH_WEIGHTS", raising=False)
        settings = Settings.from_env()
    elif how == "settings":
        settings = _settings(tmp_path, offline=True)
    else:
        settings = _settings(tmp_path)
        kwargs["download"] = False

    with pytest.raises(ModelError) as failure:
        _fetch(settings, **kwargs)

    message = str(failure.value)
    assert "\n" not in message
    assert message.startswith("pe-av-small: ")
    assert f"not in {settings.models_dir / 'hub'} and $SFXMATCH_OFFLINE is set" in message
    assert "`sfxmatch models fetch pe-av-small`" in message
    assert "$SFXMATCH_WEIGHTS" in message
    assert double.requests == []


def test_unreachable_hub_is_a_failed_download_not_offline(tmp_path, monkeypatch, clock):
    with socket.socket() as probe:  # a port nothing listens on once closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    use_double(monkeypatch, f"http://127.0.0.1:{port}")

    with pytest.raises(ModelError) as failure:
        _fetch(_settings(tmp_path))

    message = str(failure.value)
    assert "\n" not in message
    assert "the download failed (" in message
    assert "SFXMATCH_OFFLINE is set" not in message
    assert "`sfxmatch models fetch pe-av-small`" in message
    assert clock.slept  # huggingface_hub retried with backoff before giving up


def _folder(tmp_path: Path, names: tuple[str, ...]) -> Path:
    folder = tmp_path / "weights"
    folder.mkdir()
    for name in names:
        (folder / name).write_bytes(FILES[name])
    return folder


def test_explicit_folder_with_the_required_files_is_used_as_is(double, tmp_path, monkeypatch):
    folder = _folder(tmp_path, REQUIRED)
    settings = _settings(tmp_path, weights=folder)
    assert _fetch(settings) == folder
    assert cached_folder(SPEC, settings) == folder

    monkeypatch.setenv("SFXMATCH_WEIGHTS", str(folder))
    monkeypatch.setenv("SFXMATCH_CACHE_DIR", str(tmp_path / "cache"))
    assert _fetch(Settings.from_env()) == folder
    assert checkpoint_folder(SPEC, folder, settings=_settings(tmp_path), progress=None) == folder
    assert double.requests == []
    assert not (tmp_path / "cache").exists()  # nothing downloaded, no cache made


def test_explicit_folder_lacking_files_is_refused_naming_them(double, tmp_path):
    folder = _folder(tmp_path, ("config.json", "model.safetensors"))
    settings = _settings(tmp_path, weights=folder)
    with pytest.raises(
        ModelError, match=rf"^pe-av-small: {folder} lacks tokenizer\.json, tokenizer_config\.json: "
    ):
        _fetch(settings)
    assert cached_folder(SPEC, settings) is None

    absent = _settings(tmp_path, weights=tmp_path / "nowhere")
    with pytest.raises(ModelError, match="is not a folder"):
        _fetch(absent)
    assert cached_folder(SPEC, absent) is None
    assert double.requests == []


def test_verify_hashes_once_then_rehashes_a_changed_file(tmp_path):
    data = FILES["config.json"]
    blob = tmp_path / git_blob_sha1(data)
    blob.write_bytes(data)
    verify(blob)
    assert blob.with_name(f"{blob.name}.verified").is_file()

    blob.write_bytes(data.replace(b"pe_", b"xx_"))  # same size, a new mtime: the stamp is stale
    os.utime(blob, ns=(1, 1))
    with pytest.raises(ModelError, match="corrupt"):
        verify(blob)
    assert not blob.exists()
