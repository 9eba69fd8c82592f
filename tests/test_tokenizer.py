"""Our CLIP BPE tokenizer against upstream ImageBind's SimpleTokenizer and known CLIP ids."""

from __future__ import annotations

import importlib
from importlib import resources
from pathlib import Path

import pytest
import torch
from sfxmatch.embed.imagebind import tokenizer as tok
from upstream_imagebind import require_upstream

LABELS = [
    "A vacuum cleaner.",
    "dirt footstep",
    "Footsteps on GRAVEL",
    "",
    "   \n\t wind   howling \n",
    "it's the dog's bark, they'll run",
    "1234 church bells",
    "Café crème — naïve façade",
    "cafÃ© door creak",  # mojibake that ftfy repairs
    "&amp;lt;b&amp;gt;birds&amp;lt;/b&amp;gt;",  # HTML escaped twice
    "東京の雨の音",
    "🔥 fire crackling 🔥",
    "<|endoftext|> special tokens in text <|startoftext|>",
    "lava" * 40,
    " ".join(["thunder rolls over the distant hills"] * 20),  # far over 77 tokens
]


@pytest.fixture(scope="module")
def upstream_tokenizer():  # type: ignore[no-untyped-def]
    require_upstream()
    module = importlib.import_module("imagebind.models.multimodal_preprocessors")
    spec = importlib.util.find_spec("imagebind")
    assert spec is not None and spec.submodule_search_locations
    vocab = Path(next(iter(spec.submodule_search_locations))) / "bpe" / tok.VOCAB_FILE
    return module.SimpleTokenizer(bpe_path=str(vocab))


def _around_limit() -> list[str]:
    # One-token words: texts of 74..78 tokens straddle the 75 text tokens that fit.
    return [" ".join(["dog"] * n) for n in range(73, 79)]


def test_matches_upstream_on_labels(upstream_tokenizer) -> None:  # type: ignore[no-untyped-def]
    texts = LABELS + _around_limit()
    ours = tok.tokenize(texts)
    theirs = upstream_tokenizer(texts)
    assert ours.dtype == theirs.dtype == torch.long
    assert torch.equal(ours, theirs)
    for text in texts:
        assert tok.encode(text) == upstream_tokenizer.encode(text)


@pytest.mark.real_media
def test_matches_upstream_on_real_library_labels(upstream_tokenizer, tuxpaint_sounds) -> None:  # type: ignore[no-untyped-def]
    labels = []
    for txt in sorted(tuxpaint_sounds.rglob("*.txt")):
        lines = txt.read_text(encoding="utf-8", errors="replace").splitlines()
        if lines:
            labels.append(lines[0])
    assert len(labels) > 50
    assert torch.equal(tok.tokenize(labels), upstream_tokenizer(labels))


def test_known_clip_ids() -> None:
    # Published CLIP ids: "a" 320, "photo" 1125, "of" 539, "dog" 1929, "." 269.
    row = tok.tokenize("a photo of a dog.")[0]
    assert row[:8].tolist() == [49406, 320, 1125, 539, 320, 1929, 269, 49407]
    assert row[8:].eq(0).all()


def test_shape_padding_and_empty_text() -> None:
    out = tok.tokenize(["", "wind"])
    assert out.shape == (2, tok.CONTEXT_LENGTH)
    assert out[0, :2].tolist() == [tok.START_TOKEN, tok.END_TOKEN]
    assert out[0, 2:].eq(0).all()
    assert tok.tokenize([]).shape == (0, tok.CONTEXT_LENGTH)


def test_truncation_keeps_end_token() -> None:
    text = LABELS[-1]
    ids = tok.encode(text)
    assert len(ids) > tok.CONTEXT_LENGTH
    row = tok.tokenize(text)[0]
    assert row[0] == tok.START_TOKEN and row[-1] == tok.END_TOKEN
    assert row[1:-1].tolist() == ids[: tok.CONTEXT_LENGTH - 2]
    # The model pools at argmax(tokens): that must be the end token's position.
    assert int(row.argmax()) == tok.CONTEXT_LENGTH - 1


def test_cleaning_and_decode() -> None:
    assert tok.clean_text("  Hello&amp;amp;\n\tWORLD  ") == "hello& world"
    assert tok.decode(tok.encode("Footsteps on GRAVEL")) == "footsteps on gravel "
    assert tok.decode(tok.encode("naïve 東京")) == "naïve 東京 "


def test_vocabulary_is_package_data() -> None:
    data = resources.files("sfxmatch.embed.imagebind").joinpath(tok.VOCAB_FILE)
    assert data.is_file()
    assert (Path(str(data)).parent / "BPE_VOCAB_LICENSE.txt").is_file()
    vocab = tok._vocabulary()
    assert len(vocab.ids) == 49408
    assert vocab.ids["<|startoftext|>"] == tok.START_TOKEN
    assert vocab.ids["<|endoftext|>"] == tok.END_TOKEN


def test_bpe_results_are_cached() -> None:
    tok.encode("xylophone glissando")
    before = tok._merge_word.cache_info().hits
    tok.encode("xylophone glissando")
    assert tok._merge_word.cache_info().hits >= before + 2
