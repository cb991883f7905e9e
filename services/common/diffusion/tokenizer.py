"""Offline CLIP tokenizer: byte-level BPE vocab and merges learned in code from a fixed corpus.

Tiny models must never touch the Hub, so instead of shipping openai/clip-vit vocab files we train a
small BPE (a few hundred merges) on the caption vocabulary of the synthetic domains plus common
English words. Any text still tokenizes (every byte is in the base alphabet); only frequent words
become single tokens.
"""
from __future__ import annotations

import re
from collections import Counter
from functools import lru_cache
from pathlib import Path

from transformers import CLIPTokenizer

BOS_TOKEN = "<|startoftext|>"
EOS_TOKEN = "<|endoftext|>"
END_OF_WORD = "</w>"
DEFAULT_MAX_LENGTH = 32
DEFAULT_NUM_MERGES = 4096  # upper bound: training stops once every corpus word is one token

# Words the synthetic captions use (kept in sync with data.py by listing them generously) and a
# few hundred everyday words, so real prompts are not shredded into single bytes.
_CORPUS_TEXT = """
a an the of on in with and or to from at by for is are this that these those it its one two three
four five six seven eight nine ten zero digit digits number handwritten
red green blue yellow orange purple pink brown black white gray grey cyan magenta teal navy olive
maroon gold silver beige lime violet dark light bright pale pastel warm cool colorful colourful
circle circles square squares triangle triangles shape shapes ring rings concentric stripe stripes
striped checkerboard checker squares grid gradient gradients smooth blob blobs soft gaussian noise
noisy texture textures cloud cloudy clouds grain grainy fine coarse small large big tiny medium
horizontal vertical diagonal left right top bottom center centre corner background foreground
image photo picture painting drawing sketch render illustration pattern patterns abstract
dog dogs cat cats bird birds car cars house houses tree trees flower flowers person people man
woman child face portrait landscape sky sea ocean water mountain mountains city street road
sunset sunrise night day forest field beach river lake snow rain winter summer spring autumn
style art artistic realistic photograph detailed high quality low resolution close up view
sitting standing running walking flying swimming wearing holding looking under over behind
near next between inside outside very more most less many few some all each every other new old
young beautiful cute happy sad big little long short tall round flat glossy shiny matte wooden
metal glass stone paper plastic fabric
"""


@lru_cache(maxsize=1)
def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2/CLIP byte -> printable unicode table (the byte-level BPE alphabet)."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    codes = printable[:]
    extra = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            codes.append(256 + extra)
            extra += 1
    return dict(zip(printable, (chr(c) for c in codes)))


def _word_units(word: str) -> tuple[str, ...]:
    table = _bytes_to_unicode()
    chars = [table[b] for b in word.encode("utf-8")]
    chars[-1] = chars[-1] + END_OF_WORD
    return tuple(chars)


def _learn_merges(corpus: str, num_merges: int) -> list[tuple[str, str]]:
    """Plain BPE training with incremental pair counts; ties broken lexicographically (deterministic)."""
    counts = Counter(re.findall(r"[a-z]+|[0-9]", corpus.lower()))
    words = [list(_word_units(w)) for w in sorted(counts)]
    freq = [counts[w] for w in sorted(counts)]
    pair_counts: Counter = Counter()
    pair_words: dict[tuple[str, str], set[int]] = {}
    for idx, units in enumerate(words):
        for pair in zip(units, units[1:]):
            pair_counts[pair] += freq[idx]
            pair_words.setdefault(pair, set()).add(idx)
    merges: list[tuple[str, str]] = []
    while len(merges) < num_merges:
        live = [(c, p) for p, c in pair_counts.items() if c > 0]
        if not live:
            break
        best = min(live, key=lambda cp: (-cp[0], cp[1]))[1]
        merges.append(best)
        for idx in sorted(pair_words.pop(best, ())):
            units = words[idx]
            for pair in zip(units, units[1:]):
                pair_counts[pair] -= freq[idx]
            merged: list[str] = []
            i = 0
            while i < len(units):
                if i + 1 < len(units) and (units[i], units[i + 1]) == best:
                    merged.append(units[i] + units[i + 1])
                    i += 2
                else:
                    merged.append(units[i])
                    i += 1
            words[idx] = merged
            for pair in zip(merged, merged[1:]):
                pair_counts[pair] += freq[idx]
                pair_words.setdefault(pair, set()).add(idx)
        pair_counts.pop(best, None)
    return merges


@lru_cache(maxsize=4)
def offline_vocab_and_merges(num_merges: int = DEFAULT_NUM_MERGES) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """CLIP-layout vocab (bytes, bytes+</w>, merges, specials) and the ordered merge list."""
    alphabet = list(_bytes_to_unicode().values())
    tokens = alphabet + [c + END_OF_WORD for c in alphabet]
    merges = _learn_merges(_CORPUS_TEXT, num_merges)
    tokens += [a + b for a, b in merges]
    tokens += [BOS_TOKEN, EOS_TOKEN]
    vocab: dict[str, int] = {}
    for token in tokens:
        vocab.setdefault(token, len(vocab))
    return vocab, merges


def build_offline_tokenizer(directory: str | Path | None = None, *, model_max_length: int = DEFAULT_MAX_LENGTH,
                            num_merges: int = DEFAULT_NUM_MERGES) -> CLIPTokenizer:
    """A CLIPTokenizer built without any download; saved to `directory` (save_pretrained) if given."""
    vocab, merges = offline_vocab_and_merges(num_merges)
    tokenizer = CLIPTokenizer(vocab=dict(vocab), merges=list(merges), model_max_length=model_max_length)
    if directory is not None:
        tokenizer.save_pretrained(str(directory))
    return tokenizer
