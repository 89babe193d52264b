"""Window builder: every token's (window,) neighbourhood of ids, padded at sentence edges."""

from __future__ import annotations

import numpy as np


def window_positions(lengths: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Index (n_tokens, window) into a padded sequence, the start-pad mask and its length.

    Each sentence becomes [half start pads][tokens][half end pads], half = window // 2.
    """
    lengths = np.asarray(lengths, dtype=np.int64)
    half = window // 2
    n_sentences = len(lengths)
    sentence_of = np.repeat(np.arange(n_sentences), lengths)
    token_pos = np.arange(int(lengths.sum())) + half * (2 * sentence_of + 1)
    total = int(lengths.sum()) + 2 * half * n_sentences
    block_starts = np.cumsum(lengths + 2 * half) - (lengths + 2 * half)
    is_start_pad = np.zeros(total, dtype=bool)
    for j in range(half):
        is_start_pad[block_starts + j] = True
    index = token_pos[:, None] + np.arange(-half, half + 1)
    return index, is_start_pad, total


def make_windows(
    ids: np.ndarray, lengths: np.ndarray, window: int, start_id: int, end_id: int
) -> np.ndarray:
    """Windows (n_tokens, window) int32 of flat token `ids` split into sentences of `lengths`."""
    index, is_start_pad, total = window_positions(lengths, window)
    padded = np.full(total, end_id, dtype=np.int32)
    padded[is_start_pad] = start_id
    padded[index[:, window // 2]] = ids
    return padded[index]
