"""Guided attention for CAT-TTS: the diagonal prior, the loss on known attention maps, the model's eager path."""

from __future__ import annotations

import pytest
import torch

from tts.alignment import (diagonal_penalty, eager_attention, frame_text_attention, guided_attention_loss, off_diagonal_share,
                           reverse_word_order,
                           text_gain, word_order_gain)
from tts.modeling_tts import CATTTSModel

from helpers.tiny_tts import TOK, batch, tiny_config  # noqa: E402  (shared tiny TTS)


def one_layer_attention(rows: list[torch.Tensor], starts: list[int], length: int) -> list[torch.Tensor]:
    """Attention weights [B, 1 head, L, L] whose frame rows (from each item's start) are the given maps."""
    att = torch.zeros(len(rows), 1, length, length)
    for i, (r, s) in enumerate(zip(rows, starts)):
        att[i, 0, s : s + r.shape[0], : r.shape[1]] = r
    return [att]


def test_diagonal_penalty_is_zero_near_the_diagonal_and_near_one_far_off():
    w = diagonal_penalty(10, 20, sigma=0.2)
    assert w.shape == (10, 20)
    assert float(w[0, 0]) < 0.01 and float(w[9, 19]) < 0.01 and float(w[5, 10]) < 0.01
    assert float(w[0, 19]) > 0.99 and float(w[9, 0]) > 0.99
    assert torch.all(w >= 0) and torch.all(w <= 1)
    with pytest.raises(ValueError, match="at least one frame"):
        diagonal_penalty(0, 5, 0.2)


def test_guided_loss_small_on_the_diagonal_large_off_it_or_away_from_the_text():
    frames, chars = 12, 30  # frames + 1 rows (start of audio and every frame)
    rows = frames + 1
    diagonal = torch.zeros(rows, chars)
    diagonal[torch.arange(rows), (torch.arange(rows) * chars) // rows] = 1.0
    anti = diagonal.flip(0)
    length = chars + rows

    def loss(rows_map, fn=guided_attention_loss):
        return float(fn(one_layer_attention([rows_map], [chars], length), [chars], [frames]))

    assert loss(diagonal) < 0.05
    assert loss(anti) > 0.5
    # a head that gives the text 1 % of its attention (the rest to audio) pays nearly the whole penalty, and one
    # that gives it nothing (softmax weights underflow to 0) pays all of it: the loophole of runs 2 and 3
    assert loss(0.01 * diagonal) > 0.95
    assert loss(torch.zeros(rows, chars)) == pytest.approx(1.0)
    # the renormalised diagnostic says where a head looks within the text, whatever share it gives the text
    assert loss(0.01 * anti, off_diagonal_share) == pytest.approx(loss(anti, off_diagonal_share), rel=1e-5)
    assert loss(anti, off_diagonal_share) > 0.5
    assert loss(0.01 * diagonal, off_diagonal_share) < 0.05
    assert loss(torch.zeros(rows, chars), off_diagonal_share) == 0.0


def test_guided_loss_leaves_an_audio_only_prompt_out_and_runs_the_diagonal_after_it():
    """With text_offsets, the prompt's frames (which speak none of the text) are not guided, and the diagonal runs
    over the frames after them: attention on that diagonal pays nothing, wherever the prompt's rows look."""
    prompt, frames, chars = 6, 30, 30
    spoken_rows = frames - prompt + 1
    rows = torch.zeros(frames + 1, chars)  # the prompt's rows give the text nothing (they look at the audio)
    rows[prompt:][torch.arange(spoken_rows), (torch.arange(spoken_rows) * chars) // spoken_rows] = 1.0
    att = one_layer_attention([rows], [chars], chars + frames + 1)
    assert float(guided_attention_loss(att, [chars], [frames], text_offsets=[prompt])) < 0.05
    assert float(guided_attention_loss(att, [chars], [frames])) > 0.25  # unaware of the prompt: off the diagonal
    assert frame_text_attention(att, [chars], [frames], [prompt])[0].shape == (1, 1, spoken_rows, chars)


def test_guided_loss_counts_only_the_guided_heads():
    frames, chars = 8, 16
    rows, length = frames + 1, chars + frames + 1
    diagonal = torch.zeros(rows, chars)
    diagonal[torch.arange(rows), (torch.arange(rows) * chars) // rows] = 1.0
    att = torch.zeros(1, 2, length, length)
    att[0, 0, chars : chars + rows, :chars] = diagonal  # head 0 aligned, head 1 anti-aligned
    att[0, 1, chars : chars + rows, :chars] = diagonal.flip(0)
    first_only = float(guided_attention_loss([att], [chars], [frames], heads=1))
    both = float(guided_attention_loss([att], [chars], [frames], heads=0))
    assert first_only < 0.05 < both


def test_frame_text_attention_cuts_each_items_block():
    att = torch.arange(2 * 3 * 9 * 9, dtype=torch.float32).reshape(2, 3, 9, 9)
    maps = frame_text_attention([att, att + 1], starts=[4, 2], frame_lengths=[3, 5])
    assert [tuple(m.shape) for m in maps] == [(2, 3, 4, 4), (2, 3, 6, 2)]
    assert torch.equal(maps[1][1], att[1, :, 2:8, :2] + 1)


def test_eager_attention_is_restored_even_after_an_error():
    model = CATTTSModel(tiny_config())
    kernel = model.temporal.config._attn_implementation
    with pytest.raises(RuntimeError):
        with eager_attention(model.temporal):
            assert model.temporal.config._attn_implementation == "eager"
            raise RuntimeError("boom")
    assert model.temporal.config._attn_implementation == kernel


def test_attentions_do_not_change_the_loss_and_guided_training_adds_the_penalty():
    torch.manual_seed(0)
    model = CATTTSModel(tiny_config(guided_attention_weight=2.0))
    text, tl, codes, fl = batch(["hello there", "hi"], [7, 4])
    levels = torch.tensor([3, 3])
    model.eval()
    plain = model(text, tl, codes, fl, levels)
    watched = model(text, tl, codes, fl, levels, output_attentions=True)
    assert plain.attention_penalty is None and plain.attentions is None
    assert torch.allclose(plain.loss, watched.loss, atol=1e-5)  # eval: the loss is the next-frame loss only
    assert len(watched.attentions) == 2 and watched.attentions[0].shape[:2] == (2, 2)
    assert 0.0 < float(watched.attention_penalty) < 1.0
    model.train()  # no dropout in these Transformers; levels fixed: the same next-frame loss, plus the penalty
    trained = model(text, tl, codes, fl, levels)
    assert torch.allclose(trained.loss, watched.loss + 2.0 * watched.attention_penalty, atol=1e-5)
    unguided = model(text, tl, codes, fl, levels, guide=False)  # a recipe that stopped guiding
    assert unguided.attention_penalty is None and torch.allclose(unguided.loss, watched.loss, atol=1e-5)


def test_guided_loss_teaches_a_diagonal_alignment():
    torch.manual_seed(0)
    model = CATTTSModel(tiny_config(guided_attention_weight=20.0, guided_attention_heads=1)).train()
    text, tl, codes, fl = batch(["the quick brown fox jumps", "over the lazy dog"], [12, 9])
    levels = torch.tensor([3, 3])
    with torch.no_grad():
        before = float(model.eval()(text, tl, codes, fl, levels, output_attentions=True).attention_penalty)
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(40):
        opt.zero_grad()
        model(text, tl, codes, fl, levels).loss.backward()
        opt.step()
    with torch.no_grad():
        after = float(model.eval()(text, tl, codes, fl, levels, output_attentions=True).attention_penalty)
    assert after < 0.5 * before, (before, after)


def test_text_gain_is_zero_when_every_item_has_the_same_text_and_needs_two_items():
    torch.manual_seed(0)
    model = CATTTSModel(tiny_config()).eval()
    text, tl, codes, fl = batch(["same words", "same words", "same words"], [6, 6, 6])
    levels = torch.tensor([3, 3, 3])
    data = {"text_ids": text, "text_lengths": tl, "codes": codes, "frame_lengths": fl}
    own = float(model(**data, levels=levels).loss_per_level[0])
    assert text_gain(model, data, own, levels) == pytest.approx(0.0, abs=1e-6)
    text2, tl2, _, _ = batch(["same words", "other words entirely"], [6, 6])
    mixed = {"text_ids": text2, "text_lengths": tl2, "codes": codes[:2], "frame_lengths": fl[:2]}
    own2 = float(model(**mixed, levels=levels[:2]).loss_per_level[0])
    assert text_gain(model, mixed, own2, levels[:2]) != pytest.approx(0.0, abs=1e-6)  # the text changes the loss
    with pytest.raises(ValueError, match="two items"):
        text_gain(model, {k: v[:1] for k, v in data.items()}, own, levels[:1])


def test_word_order_gain_keeps_the_length_and_is_zero_for_one_word_texts():
    space = TOK.id_of(" ")
    ids = TOK.encode("coral turtles, for example.")
    assert TOK.decode(reverse_word_order(ids, space)) == "example. for turtles, coral"
    assert reverse_word_order(TOK.encode("one"), space) == TOK.encode("one")
    torch.manual_seed(0)
    model = CATTTSModel(tiny_config()).eval()
    levels = torch.tensor([3, 3])
    text, tl, codes, fl = batch(["hello", "world"], [6, 6])
    data = {"text_ids": text, "text_lengths": tl, "codes": codes, "frame_lengths": fl}
    own = float(model(**data, levels=levels).loss_per_level[0])
    assert word_order_gain(model, data, own, levels, space) == pytest.approx(0.0, abs=1e-6)  # nothing to reorder
    text, tl, codes, fl = batch(["the cat sat", "a dog ran off"], [6, 6])
    data = {"text_ids": text, "text_lengths": tl, "codes": codes, "frame_lengths": fl}
    before = data["text_ids"].clone()
    own = float(model(**data, levels=levels).loss_per_level[0])
    assert word_order_gain(model, data, own, levels, space) != pytest.approx(0.0, abs=1e-6)
    assert torch.equal(data["text_ids"], before)  # the batch is left as it was


def test_guided_attention_config_is_checked():
    with pytest.raises(ValueError, match="guided_attention"):
        tiny_config(guided_attention_weight=-1.0)
    with pytest.raises(ValueError, match="guided_attention"):
        tiny_config(guided_attention_sigma=0.0)
    with pytest.raises(ValueError, match="guided_attention_heads"):
        tiny_config(guided_attention_heads=3)  # the tiny model has 2 heads
