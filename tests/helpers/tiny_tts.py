"""A tiny CAT-TTS configuration and a batch of (text, random codes) items, shared by the TTS model tests."""

from __future__ import annotations

import torch

from tts.configuration_tts import CATTTSConfig
from tts.text import CharTokenizer

TOK = CharTokenizer()


def tiny_config(**kw) -> CATTTSConfig:
    base = dict(num_quantizers=3, codebook_size=16, hidden_size=64, num_layers=2, num_heads=2, intermediate_size=128,
                depth_hidden_size=32, depth_num_layers=1, depth_num_heads=2, depth_intermediate_size=64,
                max_positions=256, text_vocab_size=TOK.vocab_size)
    base.update(kw)
    return CATTTSConfig(**base)


def batch(texts: list[str], frames: list[int], k: int = 3, size: int = 16, seed: int = 0):
    """(text_ids [B, Lt], text_lengths [B], codes [B, k, F], frame_lengths [B]), right-padded, codes random."""
    g = torch.Generator().manual_seed(seed)
    ids = [torch.tensor(TOK.encode(t)) for t in texts]
    text = torch.zeros(len(ids), max(len(i) for i in ids), dtype=torch.long)
    for r, i in enumerate(ids):
        text[r, : len(i)] = i
    codes = torch.randint(0, size, (len(ids), k, max(frames)), generator=g)
    return text, torch.tensor([len(i) for i in ids]), codes, torch.tensor(frames)
