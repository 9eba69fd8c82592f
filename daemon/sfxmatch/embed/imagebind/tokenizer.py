"""CLIP's byte-level BPE tokenizer, as ImageBind's text tower expects its input.

Behaviour follows upstream ImageBind's ``SimpleTokenizer`` (same at its HEAD and in
imagebind-unofficial 0.1.1): text is repaired with ftfy, HTML-unescaped twice, whitespace
collapsed and lower-cased; every row is ``[start] + tokens + [end]`` zero-padded to 77, and a
text longer than that keeps its first 75 tokens and still ends with the end token. The
model pools the feature at ``argmax(tokens)``, which is the end token (the largest id), so
keeping it on truncation matters.

One difference in shape only: upstream returns a 1-D row for a single text; ``tokenize``
always returns (texts, context_length).
"""

from __future__ import annotations

import gzip
import html
from collections.abc import Iterable, Sequence
from functools import cache, lru_cache
from importlib import resources
from itertools import pairwise

import ftfy
import regex
import torch

CONTEXT_LENGTH = 77
START_TOKEN = 49406
END_TOKEN = 49407
VOCAB_FILE = "bpe_simple_vocab_16e6.txt.gz"

# CLIP's vocabulary uses the first 48,894 merges of the file (49,152 ids minus 256 bytes,
# 256 end-of-word bytes and 2 special tokens).
_N_MERGES = 49152 - 256 - 2
_END_OF_WORD = "</w>"
_SPECIAL = ("<|startoftext|>", "<|endoftext|>")

# Words, single digits, runs of other non-space symbols and English contractions.
_WORD_PATTERN = regex.compile(
    r"<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+",
    regex.IGNORECASE,
)
_WHITESPACE = regex.compile(r"\s+")


def _byte_alphabet() -> dict[int, str]:
    """Map each byte to a printable character, so BPE never sees whitespace or control codes.

    Printable Latin-1 bytes stand for themselves; the other 68 bytes take the code points
    from 256 upwards, in byte order.
    """
    printable = [
        *range(ord("!"), ord("~") + 1),
        *range(ord("¡"), ord("¬") + 1),
        *range(ord("®"), ord("ÿ") + 1),
    ]
    table = {b: chr(b) for b in printable}
    extra = 0
    for b in range(256):
        if b not in table:
            table[b] = chr(256 + extra)
            extra += 1
    return table


class _Vocabulary:
    def __init__(self, merges: list[tuple[str, str]]) -> None:
        alphabet = _byte_alphabet()
        symbols = list(alphabet.values())
        symbols += [s + _END_OF_WORD for s in symbols]
        symbols += [a + b for a, b in merges]
        symbols += _SPECIAL
        self.byte_to_char = alphabet
        self.char_to_byte = {c: b for b, c in alphabet.items()}
        self.ids = {s: i for i, s in enumerate(symbols)}
        self.symbols = symbols
        self.ranks = {pair: rank for rank, pair in enumerate(merges)}


@cache
def _vocabulary() -> _Vocabulary:
    data = resources.files(__package__).joinpath(VOCAB_FILE).read_bytes()
    lines = gzip.decompress(data).decode("utf-8").split("\n")
    # Line 0 is a version header.
    merges = [tuple(line.split()) for line in lines[1 : _N_MERGES + 1]]
    return _Vocabulary(merges)  # type: ignore[arg-type]


@lru_cache(maxsize=1 << 16)
def _merge_word(word: str) -> tuple[str, ...]:
    """Apply BPE merges to one pre-token (already in the byte alphabet), lowest rank first."""
    ranks = _vocabulary().ranks
    parts = [*word[:-1], word[-1] + _END_OF_WORD]
    while len(parts) > 1:
        best = min(pairwise(parts), key=lambda p: ranks.get(p, len(ranks)))
        if best not in ranks:
            break
        first, second = best
        merged: list[str] = []
        i = 0
        while i < len(parts):
            if i + 1 < len(parts) and parts[i] == first and parts[i + 1] == second:
                merged.append(first + second)
                i += 2
            else:
                merged.append(parts[i])
                i += 1
        parts = merged
    return tuple(parts)


def clean_text(text: str) -> str:
    """ftfy repair, double HTML unescape, collapsed whitespace, lower case."""
    text = html.unescape(html.unescape(ftfy.fix_text(text))).strip()
    return _WHITESPACE.sub(" ", text).strip().lower()


def encode(text: str) -> list[int]:
    """BPE ids of a text, without start and end tokens."""
    vocab = _vocabulary()
    ids: list[int] = []
    for piece in _WORD_PATTERN.findall(clean_text(text)):
        if piece in _SPECIAL:
            # Upstream maps the literal special-token strings in a text to their ids.
            ids.append(vocab.ids[piece])
            continue
        word = "".join(vocab.byte_to_char[b] for b in piece.encode("utf-8"))
        ids.extend(vocab.ids[s] for s in _merge_word(word))
    return ids


def decode(ids: Iterable[int]) -> str:
    """Text of BPE ids: end-of-word marks become spaces, special tokens stay visible."""
    vocab = _vocabulary()
    chars = "".join(vocab.symbols[int(i)] for i in ids)
    raw = bytes(vocab.char_to_byte[c] for c in chars)
    return raw.decode("utf-8", errors="replace").replace(_END_OF_WORD, " ")


def tokenize(texts: str | Sequence[str], context_length: int = CONTEXT_LENGTH) -> torch.Tensor:
    """Token ids, int64 of shape (len(texts), context_length); a str counts as one text."""
    if context_length < 2:
        raise ValueError("context_length must leave room for the start and end tokens")
    if isinstance(texts, str):
        texts = [texts]
    result = torch.zeros(len(texts), context_length, dtype=torch.long)
    for row, text in enumerate(texts):
        ids = [START_TOKEN, *encode(text)][: context_length - 1]
        ids.append(END_TOKEN)
        result[row, : len(ids)] = torch.tensor(ids, dtype=torch.long)
    return result
