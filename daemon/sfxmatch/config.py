"""Settings read from the environment, with per-user defaults from platformdirs.

Kept deliberately small: every value has one environment variable and one default, and
``Settings.from_env()`` reads them afresh each call (nothing is cached at import, so tests
and the daemon can change the environment). Modules that need a new setting add a field
here rather than reading ``os.environ`` themselves (a test fails when a module outside this
one and ``sfxmatch.testing`` reads it); those that run before any ``Settings`` exists (a
client finding its daemon) use the readers below.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from platformdirs import user_cache_dir, user_data_dir

from sfxmatch.errors import ConfigError

APP_NAME = "sfxmatch"

ENV_CACHE_DIR = "SFXMATCH_CACHE_DIR"
ENV_MODEL = "SFXMATCH_MODEL"
ENV_WEIGHTS = "SFXMATCH_WEIGHTS"
ENV_IMAGEBIND_CHECKPOINT = "SFXMATCH_IMAGEBIND_CHECKPOINT"
ENV_DEVICE = "SFXMATCH_DEVICE"
ENV_DTYPE = "SFXMATCH_DTYPE"
ENV_BATCH_SIZE = "SFXMATCH_BATCH_SIZE"
ENV_COMPILE = "SFXMATCH_COMPILE"
ENV_OFFLINE = "SFXMATCH_OFFLINE"
ENV_DATA_DIR = "SFXMATCH_DATA_DIR"
ENV_STORE_DIR = "SFXMATCH_STORE_DIR"
ENV_INDEX_BATCH = "SFXMATCH_INDEX_BATCH"  # files per committed batch of an index run
ENV_DAEMON_ADDRESS = "SFXMATCH_DAEMON_ADDRESS"  # a client connects here instead of daemon.json
ENV_DAEMON_TOKEN_FILE = "SFXMATCH_DAEMON_TOKEN_FILE"
ENV_PINECONE_API_KEY = "PINECONE_API_KEY"  # the name Pinecone's own SDK reads

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _get(environ: Mapping[str, str], name: str) -> str | None:
    value = environ.get(name)
    if value is None or not value.strip():
        return None  # an empty variable counts as unset, as shells make that easy to write
    return value.strip()


def environment() -> Mapping[str, str]:
    """The process environment, read only (the service installer copies the SFXMATCH_*
    variables into the service it writes)."""
    return dict(os.environ)


def env_text(name: str, environ: Mapping[str, str] | None = None) -> str | None:
    """A variable's text, stripped; None when unset or empty."""
    return _get(os.environ if environ is None else environ, name)


def env_path(name: str, environ: Mapping[str, str] | None = None) -> Path | None:
    """A path from the environment, with ``~`` expanded; None when unset or empty."""
    value = _get(os.environ if environ is None else environ, name)
    return Path(value).expanduser() if value is not None else None


def env_int(name: str, environ: Mapping[str, str] | None = None) -> int | None:
    value = _get(os.environ if environ is None else environ, name)
    if value is None:
        return None
    try:
        number = int(value)
    except ValueError:
        raise ConfigError(f"{name}={value!r} is not an integer") from None
    if number <= 0:
        raise ConfigError(f"{name}={value!r} must be a positive integer")
    return number


def env_bool(name: str, environ: Mapping[str, str] | None = None, default: bool = False) -> bool:
    value = (os.environ if environ is None else environ).get(name)
    if value is None:
        return default
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ConfigError(f"{name}={value!r} is not a boolean (use 1/0, true/false, yes/no, on/off)")


def default_data_dir() -> Path:
    """The per-user data directory (``~/.local/share/sfxmatch`` on Linux): libraries, index."""
    return Path(user_data_dir(APP_NAME, appauthor=False))


def default_cache_dir() -> Path:
    """The per-user cache directory (``~/.cache/sfxmatch`` on Linux)."""
    return Path(user_cache_dir(APP_NAME, appauthor=False))


@dataclass(frozen=True)
class Settings:
    """Process-wide settings. ``None`` means "let the component choose"."""

    cache_dir: Path
    model: str | None = None  # a name from sfxmatch.embed.registry; None: by device
    weights: Path | None = None  # the chosen model's weights: a PE-AV folder, an ImageBind file
    imagebind_checkpoint: Path | None = None
    device: str | None = None  # "cpu", "cuda", "cuda:1", ...
    dtype: str | None = None  # "fp32", "bf16", "fp16"
    batch_size: int | None = None
    compile: bool = False
    offline: bool = False  # never download (model weights); fail with instructions instead
    data_dir: Path | None = None  # None: default_data_dir()
    store_dir_override: Path | None = None  # $SFXMATCH_STORE_DIR
    index_batch: int | None = None  # files per committed batch; None: the indexer's default
    daemon_address: str | None = None  # where a client looks first for a daemon
    daemon_token_file: Path | None = None  # None: <data dir>/daemon/token
    pinecone_api_key: str | None = field(default=None, repr=False)

    @property
    def library_dir(self) -> Path:
        """Registered libraries and their index state (per model, see the indexer)."""
        return (self.data_dir or default_data_dir()) / "libraries"

    @property
    def store_dir(self) -> Path:
        """The embedded vector store's folder (one table per model inside)."""
        return self.store_dir_override or (self.data_dir or default_data_dir()) / "store"

    @property
    def models_dir(self) -> Path:
        """Where downloaded model weights live."""
        return self.cache_dir / "models"

    @property
    def embeddings_dir(self) -> Path:
        """Where the embedding cache lives."""
        return self.cache_dir / "embeddings"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        return cls(
            cache_dir=env_path(ENV_CACHE_DIR, env) or default_cache_dir(),
            model=_get(env, ENV_MODEL),
            weights=env_path(ENV_WEIGHTS, env),
            imagebind_checkpoint=env_path(ENV_IMAGEBIND_CHECKPOINT, env),
            device=_get(env, ENV_DEVICE),
            dtype=_get(env, ENV_DTYPE),
            batch_size=env_int(ENV_BATCH_SIZE, env),
            compile=env_bool(ENV_COMPILE, env),
            offline=env_bool(ENV_OFFLINE, env),
            data_dir=env_path(ENV_DATA_DIR, env),
            store_dir_override=env_path(ENV_STORE_DIR, env),
            index_batch=env_int(ENV_INDEX_BATCH, env),
            daemon_address=_get(env, ENV_DAEMON_ADDRESS),
            daemon_token_file=env_path(ENV_DAEMON_TOKEN_FILE, env),
            pinecone_api_key=_get(env, ENV_PINECONE_API_KEY),
        )


def settings() -> Settings:
    """Current settings from the environment (read each call)."""
    return Settings.from_env()
