"""Vector ids (``sfxmatch.library.vector_ids``): every id made reads back as what it names."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sfxmatch.library.registry import library_id_for
from sfxmatch.library.scan import derive_sound_id
from sfxmatch.library.vector_ids import (
    VectorId,
    audio_vector_ids,
    label_vector_id,
    parse_vector_id,
    sound_vector_id,
    window_vector_id,
)
from sfxmatch.store.base import check_id

sound_ids = st.builds(derive_sound_id, st.text(max_size=8), st.text(min_size=1, max_size=40))
library_ids = st.text(min_size=1, max_size=64).map(library_id_for)


@given(sound_ids, st.integers(0, 64))
def test_audio_ids_round_trip(sound_id: str, windows: int) -> None:
    ids = audio_vector_ids(sound_id, windows)
    assert len(set(ids)) == windows + 1
    assert parse_vector_id(ids[0]) == VectorId("sound", sound_id=sound_id)
    for k, vid in enumerate(ids[1:]):
        assert vid == window_vector_id(sound_id, k)
        assert parse_vector_id(vid) == VectorId("window", sound_id=sound_id, window=k)
    assert all(check_id(vid) for vid in ids), "every store takes them (Pinecone's rules)"


@given(library_ids, st.text(max_size=300), st.sampled_from(["ambience", "effect", "music"]))
def test_label_ids_round_trip(library_id: str, label: str, kind: str) -> None:
    vid = label_vector_id(library_id, label, kind)
    parsed = parse_vector_id(vid)
    assert parsed.kind == "label" and parsed.library_id == library_id
    assert vid == label_vector_id(library_id, label, kind), "deterministic"
    assert check_id(vid)


def test_the_scheme_is_the_one_stored_indexes_hold() -> None:
    # Indexes on users' disks hold these ids: the scheme must not drift.
    assert sound_vector_id("0123abcd0123abcd") == "0123abcd0123abcd:0"
    assert window_vector_id("0123abcd0123abcd", 12) == "0123abcd0123abcd:w12"
    assert label_vector_id("lib-0a1b2c3d4e5f", "Rain", "ambience") == (
        "t:lib-0a1b2c3d4e5f:85eb504820d73b09d2aa"
    )


def test_labels_of_another_kind_or_library_get_other_ids() -> None:
    ids = {
        label_vector_id(lib, "Rain", kind)
        for lib in ("lib-a", "lib-b")
        for kind in ("ambience", "effect")
    }
    assert len(ids) == 4


@pytest.mark.parametrize(
    "bad", ["", "abc", "abc:", ":0", "abc:1", "abc:w", "abc:w-1", "abc:w01", "abc:w1:0",
            "t:", "t:lib", "t::digest", "t:lib:", "t:lib:a:b"],
)  # fmt: skip
def test_ids_sfxmatch_never_makes_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="not a vector id"):
        parse_vector_id(bad)


@pytest.mark.parametrize("part", ["", "a:b"])
def test_parts_that_would_make_ambiguous_ids_are_refused(part: str) -> None:
    with pytest.raises(ValueError, match="no colon"):
        sound_vector_id(part)
    with pytest.raises(ValueError, match="no colon"):
        label_vector_id(part, "Rain", "effect")
