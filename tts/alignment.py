"""Where CAT-TTS's frames look in the text: the frames-to-text attention maps, a diagonal prior over them, and
the guided attention loss built on it (Tachibana et al. 2017, "DCTTS"), which makes a small model learn the
monotonic text-to-speech alignment in far fewer steps than from the next-frame loss alone.

A decoder-only TTS must discover by itself that frame t speaks roughly character t * N / T; until it does, its
output is babble. The penalty is the share of each guided head's attention that does *not* go to the text
near that diagonal: attention to the audio counts against it, so a guided head cannot escape by looking away
from the text (two earlier forms let it: `guided_attention_loss` says how). The other heads stay free.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator, Sequence

import torch
from transformers import PreTrainedModel


@contextmanager
def eager_attention(model: PreTrainedModel) -> Iterator[None]:
    """Run a transformers model with the eager attention kernel (the one that can return attention weights)
    inside the block, and with its own kernel again after it."""
    before = model.config._attn_implementation
    model.config._attn_implementation = "eager"
    try:
        yield
    finally:
        model.config._attn_implementation = before


def diagonal_penalty(num_frames: int, num_chars: int, sigma: float, device: torch.device | None = None) -> torch.Tensor:
    """[num_frames, num_chars] weights 1 - exp(-(n/N - t/T)^2 / 2 sigma^2): 0 on the diagonal, near 1 far off it."""
    if num_frames < 1 or num_chars < 1:
        raise ValueError(f"need at least one frame and one character, got {num_frames} and {num_chars}")
    t = (torch.arange(num_frames, device=device, dtype=torch.float32) + 0.5) / num_frames
    n = (torch.arange(num_chars, device=device, dtype=torch.float32) + 0.5) / num_chars
    return 1.0 - torch.exp(-((n[None, :] - t[:, None]) ** 2) / (2.0 * sigma**2))


def frame_text_attention(attentions: Sequence[torch.Tensor], starts: Sequence[int],
                         frame_lengths: Sequence[int], text_offsets: Sequence[int] | None = None) -> list[torch.Tensor]:
    """Per item, [layers, heads, frames + 1, characters]: the attention of each frame-predicting position (the
    start of audio and every frame) to the item's text, cut from the temporal model's attention weights
    [B, heads, L, L] (one tensor per layer; text at positions 0..start-1, then start of audio, then frames).
    With `text_offsets`, an item's first that-many positions (an audio-only voice prompt's) are left out."""
    maps = []
    for i, (start, frames) in enumerate(zip(starts, frame_lengths)):
        start, frames = int(start), int(frames)
        skip = int(text_offsets[i]) if text_offsets is not None else 0
        maps.append(torch.stack([a[i, :, start + skip : start + frames + 1, :start] for a in attentions]))
    return maps


def renormalised_over_text(maps: torch.Tensor) -> torch.Tensor:
    """Attention maps [..., characters] with each row scaled to sum to one over the text (0 where a row gives
    the text nothing): where a head looks in the text, whatever share of its attention it gives the text."""
    maps = maps.float()
    return maps / maps.sum(-1, keepdim=True).clamp_min(1e-12)


def off_diagonal_share(attentions: Sequence[torch.Tensor], starts: Sequence[int], frame_lengths: Sequence[int],
                       sigma: float = 0.2, heads: int = 0) -> torch.Tensor:
    """Where heads look *within* the text: the mean over items, layers, the first `heads` heads (0: all) and frames
    of the share of each frame's text attention (renormalised over the text) that lies far from the diagonal
    (`diagonal_penalty`); about 0.5 for attention spread evenly, near 0 on the diagonal. A diagnostic, not a
    loss: a row that gives the text nothing counts 0 (see `guided_attention_loss`)."""
    shares = []
    for att in frame_text_attention(attentions, starts, frame_lengths):
        att = renormalised_over_text(att[:, : heads or att.shape[1]])
        shares.append((att * diagonal_penalty(att.shape[-2], att.shape[-1], sigma, att.device)).sum(-1).mean())
    return torch.stack(shares).mean()


def guided_attention_loss(attentions: Sequence[torch.Tensor], starts: Sequence[int], frame_lengths: Sequence[int],
                          sigma: float = 0.2, heads: int = 0, text_offsets: Sequence[int] | None = None) -> torch.Tensor:
    """1 - the share of each frame's attention (first `heads` heads, 0: all) that goes to the text near the
    diagonal (weights 1 - `diagonal_penalty`), averaged over items, layers, heads and frames: 0 for a head that
    reads the text along the diagonal, 1 for one that looks anywhere else -- at the audio included.

    Attention given to the audio counts as off the diagonal. Two earlier forms let a guided head escape: the
    off-diagonal share of its raw attention (it stopped looking at the text: 0 within 250 steps), and that share
    renormalised over the text, which a head zeroes by giving the text no attention at all (softmax weights
    underflow to exactly 0: runs 2 and 3 reached a penalty of 0.000 by step ~1,000, and in run 3's final model
    the guided heads of layers 1-5 gave the text no attention at all in 84-95 % of frames).

    `text_offsets` [B]: frames of an audio-only voice prompt at the start of each item; they are not guided
    (they speak no part of the text) and the diagonal runs over the frames after them."""
    losses = []
    for att in frame_text_attention(attentions, starts, frame_lengths, text_offsets):
        att = att[:, : heads or att.shape[1]].float()
        on_diagonal = 1.0 - diagonal_penalty(att.shape[-2], att.shape[-1], sigma, att.device)
        losses.append(1.0 - (att * on_diagonal).sum(-1).mean())
    return torch.stack(losses).mean()


@torch.no_grad()
def text_gain(model: torch.nn.Module, batch: dict[str, torch.Tensor], own_first_loss: float, levels: torch.Tensor) -> float:
    """How much the text helps: the first codebook's loss with every item's transcript swapped for the next
    item's (same codes) minus `own_first_loss`, its loss with its own. About 0 for a model that does not read
    the text. Needs a batch of at least two items."""
    if batch["text_ids"].shape[0] < 2:
        raise ValueError("text_gain needs a batch of at least two items")
    shift = torch.roll(torch.arange(batch["text_ids"].shape[0]), -1)
    other = model(batch["text_ids"][shift], batch["text_lengths"][shift], batch["codes"], batch["frame_lengths"], levels=levels)
    return float(other.loss_per_level[0]) - own_first_loss


def reverse_word_order(ids: list[int], space_id: int) -> list[int]:
    """[BOS, w1, space, w2, ..., EOS] -> [BOS, ..., w2, space, w1, EOS]: the same characters, the same length."""
    words, word = [], []
    for token in ids[1:-1]:
        if token == space_id:
            words.append(word)
            word = []
        else:
            word.append(token)
    words.append(word)
    out = [ids[0]]
    for i, w in enumerate(reversed(words)):
        out += ([space_id] if i else []) + w
    return out + [ids[-1]]


@torch.no_grad()
def word_order_gain(model: torch.nn.Module, batch: dict[str, torch.Tensor], own_first_loss: float, levels: torch.Tensor,
                    space_id: int) -> float:
    """The first codebook's loss with each transcript's words in reverse order minus `own_first_loss`.

    `text_gain` swaps in another item's transcript, of another length, so a model that only paces its speech to
    the text's length already scores a gain there; reversed words keep the length and every character, so only
    a model that reads which sound comes when gains here."""
    text, lengths = batch["text_ids"].clone(), batch["text_lengths"]
    for i in range(text.shape[0]):
        n = int(lengths[i])
        text[i, :n] = torch.tensor(reverse_word_order(text[i, :n].tolist(), space_id))
    other = model(text, lengths, batch["codes"], batch["frame_lengths"], levels=levels)
    return float(other.loss_per_level[0]) - own_first_loss


__all__ = ["diagonal_penalty", "eager_attention", "frame_text_attention", "guided_attention_loss", "off_diagonal_share",
           "renormalised_over_text",
           "reverse_word_order", "text_gain", "word_order_gain"]
