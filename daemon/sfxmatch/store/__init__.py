"""Vector stores: where the library's embeddings live and how they are searched.

``open_store()`` picks a backend by name; all of them satisfy ``VectorStore``:

- ``"lance"`` (default): embedded LanceDB in the user's data directory for durability;
  searched in memory, exactly below ``LanceIndexConfig.min_rows`` vectors, through a faiss
  IVF index per kind above (saved beside the table).
- ``"exact"``: numpy brute force, in memory or one ``.npz`` file; for tiny libraries and as
  the ground truth of benchmarks.
- ``"pinecone"``: a Pinecone index through the official SDK, one namespace per library
  (needs ``pip install 'sfxmatch[pinecone]'`` and ``PINECONE_API_KEY``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from sfxmatch.errors import StoreError
from sfxmatch.store.base import (
    DEFAULT_DIM,
    KINDS,
    MODALITIES,
    Filter,
    Hit,
    Kind,
    Modality,
    Record,
    SoundMeta,
    VectorStore,
)

if TYPE_CHECKING:
    import os

    from sfxmatch.store.exact import ExactStore
    from sfxmatch.store.lance import IvfSearch, LanceIndexConfig, LanceStore, default_store_dir

Backend = Literal["lance", "exact", "pinecone"]
_LANCE_NAMES = frozenset({"IvfSearch", "LanceIndexConfig", "LanceStore", "default_store_dir"})


def __getattr__(name: str) -> Any:
    """The backends load on first use: code that needs only the contract (``store.base``:
    records, filters, the protocol) imports no storage engine and touches no file."""
    if name == "ExactStore":
        from sfxmatch.store.exact import ExactStore

        return ExactStore
    if name in _LANCE_NAMES:
        from sfxmatch.store import lance

        return getattr(lance, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def open_store(
    backend: Backend = "lance",
    *,
    path: str | os.PathLike[str] | None = None,
    dim: int = DEFAULT_DIM,
    **options: Any,
) -> VectorStore:
    """Open (creating if needed) a store.

    ``path`` is the folder of the embedded stores (default: ``default_store_dir()``; the
    exact store keeps no file without one). ``options`` go to the backend's constructor,
    e.g. ``index=LanceIndexConfig(...)`` or, for Pinecone, ``index_name=``, ``api_key=``,
    ``host=``, ``create=True``.
    """
    if backend == "lance":
        from sfxmatch.store.lance import LanceStore

        return LanceStore(path, dim, **options)
    if backend == "exact":
        from sfxmatch.store.exact import ExactStore

        return ExactStore(dim, path, **options)
    if backend == "pinecone":
        from sfxmatch.store.pinecone import PineconeStore

        return PineconeStore(dim=dim, **options)
    raise ValueError(f"unknown store backend {backend!r}: use 'lance', 'exact' or 'pinecone'")


__all__ = [
    "DEFAULT_DIM",
    "KINDS",
    "MODALITIES",
    "Backend",
    "ExactStore",
    "Filter",
    "Hit",
    "IvfSearch",
    "Kind",
    "LanceIndexConfig",
    "LanceStore",
    "Modality",
    "Record",
    "SoundMeta",
    "StoreError",
    "VectorStore",
    "default_store_dir",
    "open_store",
]
