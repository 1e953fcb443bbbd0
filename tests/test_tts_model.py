"""CAT-TTS model: shapes, progressive sequence dropout, a tiny model memorising a few utterances, streaming frames."""

from __future__ import annotations

import pytest
import torch

from training.generation import SamplingConfig
from tts.configuration_tts import CATTTSConfig
from tts.depth_decoding import DepthStepper
from tts.generation import generate_codes, iter_frames
from tts.modeling_tts import CATTTSModel
from helpers.tiny_tts import TOK, batch, tiny_config  # noqa: E402  (shared tiny TTS)


def test_forward_shapes_and_loss():
    torch.manual_seed(0)
    model = CATTTSModel(tiny_config()).eval()
    text, tl, codes, fl = batch(["hello there", "hi"], [7, 4])
    out = model(text, tl, codes, fl)
    assert out.loss.dim() == 0 and torch.isfinite(out.loss)
    assert out.loss_per_level.shape == (3,)
    n = int(fl.sum()) + 2  # every frame plus one end-of-speech prediction per item
    assert [tuple(l.shape) for l in out.logits] == [(n, 17), (n, 16), (n, 16)]  # level 0 has the extra end class


def test_padding_does_not_change_an_items_loss():
    torch.manual_seed(0)
    model = CATTTSModel(tiny_config()).eval()
    text, tl, codes, fl = batch(["a short one", "and a much longer sentence here"], [5, 9])
    levels = torch.tensor([3, 3])
    both = model(text, tl, codes, fl, levels)
    alone = model(text[:1, : tl[0]], tl[:1], codes[:1, :, :5], fl[:1], levels[:1])
    first = [lg[:6] for lg in both.logits]
    for a, b in zip(first, alone.logits):
        assert torch.allclose(a, b, atol=1e-5)


def test_progressive_dropout_masks_input_and_loss():
    torch.manual_seed(0)
    model = CATTTSModel(tiny_config()).train()
    text, tl, codes, fl = batch(["one two three"], [6])
    out = model(text, tl, codes, fl, levels=torch.tensor([1]))
    assert out.loss_per_level[1:].abs().sum() == 0 and out.loss_per_level[0] > 0
    out.loss.backward()
    # deeper codebooks neither feed the temporal input nor get a loss: no gradient reaches their embeddings
    assert model.code_embeds[0].weight.grad.abs().sum() > 0
    assert model.code_embeds[1].weight.grad is None or model.code_embeds[1].weight.grad.abs().sum() == 0
    assert model.heads[2].weight.grad is None or model.heads[2].weight.grad.abs().sum() == 0
    # sampling of levels: eval keeps all, train with p=1 draws from 1..K
    model.config.progressive_dropout = 1.0
    drawn = model.sample_levels(2000, torch.device("cpu"))
    assert set(drawn.tolist()) == {1, 2, 3}
    model.eval()
    assert set(model.sample_levels(50, torch.device("cpu")).tolist()) == {3}


def test_frame_dropout_zeroes_whole_frame_inputs_in_training_only():
    torch.manual_seed(0)
    model = CATTTSModel(tiny_config(frame_dropout=0.5))
    text, tl, codes, fl = batch(["one two three", "four"], [200, 150])
    levels = torch.tensor([3, 3])
    frames = lambda x: torch.cat([x[0, int(tl[0]) + 1 : int(tl[0]) + 201], x[1, int(tl[1]) + 1 : int(tl[1]) + 151]])
    x, *_ = model.train()._sequences(text, tl, codes, fl, levels)
    zero = (frames(x).abs().sum(-1) == 0).float().mean()
    assert 0.4 < zero < 0.6  # about half of the 350 frames lost their input ...
    assert torch.equal(x[0, : int(tl[0]) + 1], model._sequences(text, tl, codes, fl, levels)[0][0, : int(tl[0]) + 1])  # ... text never
    x, *_ = model.eval()._sequences(text, tl, codes, fl, levels)
    assert (frames(x).abs().sum(-1) == 0).sum() == 0  # and never outside training
    with pytest.raises(ValueError, match="frame_dropout"):
        tiny_config(frame_dropout=1.0)


def test_tiny_tts_memorises_a_few_utterances_and_stops():
    """The CI-sized overfit: three sentences, each with its own frames; greedy synthesis gives them back."""
    torch.manual_seed(0)
    model = CATTTSModel(tiny_config(progressive_dropout=0.3))
    texts = ["good morning", "see you soon", "the cat sat"]
    text, tl, codes, fl = batch(texts, [6, 8, 5], seed=1)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for _ in range(400):
        model.train()
        loss = model(text, tl, codes, fl).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    greedy = SamplingConfig(temperature=0)
    for i, t in enumerate(texts):
        got = generate_codes(model, TOK.encode(t), sampling=greedy, max_frames=20)
        assert torch.equal(got, codes[i, :, : fl[i]]), f"{t!r}: {got.tolist()} vs {codes[i, :, : fl[i]].tolist()}"
        coarse = generate_codes(model, TOK.encode(t), num_quantizers=1, sampling=greedy, max_frames=20)
        assert torch.equal(coarse, codes[i, :1, : fl[i]])  # any bitrate from one model


def test_iter_frames_streams_and_validates():
    torch.manual_seed(0)
    model = CATTTSModel(tiny_config()).eval()
    frames = iter_frames(model, TOK.encode("hello"), num_quantizers=2, sampling=SamplingConfig(temperature=1.0, seed=3),
                         max_frames=5)
    first = next(frames)
    assert first.shape == (2,) and 0 <= int(first.min()) and int(first.max()) < 16
    rest = list(frames)
    assert len(rest) <= 4
    again = generate_codes(model, TOK.encode("hello"), num_quantizers=2, sampling=SamplingConfig(temperature=1.0, seed=3), max_frames=5)
    assert torch.equal(again[:, 0], first)  # seeded: reproducible
    with pytest.raises(ValueError, match="num_quantizers"):
        next(iter_frames(model, TOK.encode("hi"), num_quantizers=4))
    prompt = torch.randint(0, 16, (3, 4))
    assert next(iter_frames(model, TOK.encode("hi"), prompt_codes=prompt, sampling=SamplingConfig(temperature=0))).shape == (3,)


def test_depth_stepper_gives_the_depth_transformers_logits_level_by_level():
    """The cached one-position-at-a-time depth decoding used in generation equals the whole-sequence forward."""
    torch.manual_seed(0)
    model = CATTTSModel(tiny_config(num_quantizers=4, depth_num_layers=2)).eval()
    context, codes = torch.randn(2, 64), torch.randint(0, 16, (2, 4))
    with torch.no_grad():
        whole = model.depth_logits(context, codes)
        stepper = DepthStepper(model)
        stepped = [stepper.start(context)] + [stepper.push(codes[:, k]) for k in range(3)]
        assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(whole, stepped))
        assert [tuple(lg.shape) for lg in stepped] == [(2, 17), (2, 16), (2, 16), (2, 16)]  # level 0 can end speech
        with pytest.raises(ValueError, match="already decoded"):
            stepper.push(codes[:, 3])
        again = [stepper.start(context)] + [stepper.push(codes[:, k]) for k in range(3)]  # start() resets
        assert all(torch.equal(a, b) for a, b in zip(stepped, again))


@pytest.mark.parametrize("aligned", [False, True])
def test_greedy_frames_equal_a_whole_sequence_reference(aligned):
    """iter_frames (cached temporal and depth steps) picks the argmax of the uncached forward, frame by frame,
    with text positions one after another or spaced at a speaking rate (aligned_positions)."""
    torch.manual_seed(1)
    model = CATTTSModel(tiny_config(num_quantizers=3, aligned_positions=aligned)).eval()
    ids = TOK.encode("hi there")
    rate = 0.7
    frames = generate_codes(model, ids, sampling=SamplingConfig(temperature=0), max_frames=6, chars_per_frame=rate)
    text = torch.tensor([ids])
    with torch.no_grad():
        for t in range(frames.shape[1]):
            x, mask, positions, starts = model._sequences(text, torch.tensor([len(ids)]), frames[None, :, :t],
                                                          torch.tensor([t]), torch.tensor([3]), torch.tensor([rate]))
            assert (positions is not None) == aligned
            state = model.temporal(inputs_embeds=x, attention_mask=mask, position_ids=positions).last_hidden_state[:, starts[0] + t]
            logits = model.depth_logits(state, frames[None, :, t])
            assert [int(lg[0, : 16].argmax()) for lg in logits] == frames[:, t].tolist()


def test_aligned_positions_space_the_text_at_the_speaking_rate():
    """Character n at n / rate, the start of audio at 0, frame t at t + 1; each item's own rate in eval, jittered
    in training; one after another without aligned_positions."""
    plain = CATTTSModel(tiny_config())
    assert plain.temporal_positions(3, 2).tolist() == [0, 1, 2, 3, 4, 5]
    model = CATTTSModel(tiny_config(aligned_positions=True, chars_per_frame=2.0, rate_jitter=0.2))
    assert model.temporal_positions(5, 2).tolist() == [0, 0.5, 1.0, 1.5, 2.0, 0, 1, 2]  # default rate 2 characters a frame
    assert model.temporal_positions(3, 1, chars_per_frame=0.5).tolist() == [0, 2, 4, 0, 1]
    # a 4-frame voice prompt without its transcript: the text starts where the new frames do (after frame 4)
    assert model.temporal_positions(3, 5, text_offset=4.0).tolist() == [4, 4.5, 5, 0, 1, 2, 3, 4, 5]
    lengths, frames = torch.tensor([12, 6]), torch.tensor([5, 8])
    model.eval()
    assert model.item_rates(lengths, frames).tolist() == [2.0, 0.5]  # characters without BOS / EOS per frame
    model.train()
    torch.manual_seed(0)
    jittered = model.item_rates(lengths.repeat(500), frames.repeat(500))
    ratio = (jittered / torch.tensor([2.0, 0.5]).repeat(500)).log()
    assert abs(float(ratio.std()) - 0.2) < 0.03 and abs(float(ratio.mean())) < 0.03


def test_an_audio_only_prompt_places_the_text_after_its_frames_in_training():
    """text_offsets: the item's rate counts only the frames after the prompt, and its text starts there, as the
    pipeline places it for a voice prompt without its transcript."""
    model = CATTTSModel(tiny_config(aligned_positions=True, chars_per_frame=2.0, guided_attention_weight=1.0)).eval()
    text = torch.tensor([[TOK.BOS, 5, 6, 7, 8, TOK.EOS]])  # 4 characters
    codes = torch.randint(0, model.config.codebook_size, (1, model.config.num_quantizers, 6))
    levels = torch.tensor([model.config.num_quantizers])
    _, _, positions, starts = model._sequences(text, torch.tensor([6]), codes, torch.tensor([6]), levels,
                                               text_offsets=torch.tensor([4]))
    # 4 characters over the 2 frames after the prompt: 2 a frame (over all 6 frames it would be 2 / 3)
    assert positions[0, :6].tolist() == [4, 4.5, 5, 5.5, 6, 6.5]
    assert positions[0, 6:].tolist() == list(range(7)) and starts == [6]
    with torch.no_grad():
        plain = model(text, torch.tensor([6]), codes, torch.tensor([6]), levels=levels)
        offset = model(text, torch.tensor([6]), codes, torch.tensor([6]), levels=levels, text_offsets=torch.tensor([4]))
    assert not torch.allclose(plain.logits[0], offset.logits[0])  # the text sits elsewhere for the frames
    model.train()  # guided training with a batch that mixes items with and without a prompt
    text_ids, text_lengths, codes, frames = batch(["abc", "de"], [5, 7], model.config.num_quantizers)
    out = model(text_ids, text_lengths, codes, frames, text_offsets=torch.tensor([0, 3]))
    assert torch.isfinite(out.loss) and out.attention_penalty is not None


def test_config_validation():
    with pytest.raises(ValueError, match="num_quantizers"):
        tiny_config(num_quantizers=0)
    with pytest.raises(ValueError, match="hidden_size"):
        tiny_config(hidden_size=60, num_heads=8)


def test_code_embeddings_can_start_from_the_codec_code_vectors():
    """Both Transformers' code inputs become linear images of the codec's latent, at the initialiser's scale."""
    from catcodec import CATConfig, CATModel

    torch.manual_seed(0)
    codec = CATModel(CATConfig(sampling_rate=16000, patch_size=40, stage_dims=[32, 32, 32, 48],
                               stage_layers=[1, 1, 1, 1], stage_heads=[2, 2, 2, 2], stage_output_dims=[16, 16, 24, 32],
                               quantizer_dim=24, num_quantizers=4, codebook_size=16)).eval()
    vectors = codec.code_vectors(3)
    model = CATTTSModel(tiny_config())
    model.init_code_embeddings(vectors)
    codes = torch.randint(0, 16, (2, 3, 7))
    frames = model.frame_embedding(codes, 3)  # [2, 7, 64]
    latent = sum(codec.quantizer.layers[k].decode(codes[:, k]) for k in range(3))  # [2, 7, 24]
    solution = torch.linalg.lstsq(latent.reshape(-1, 24), frames.reshape(-1, 64)).solution
    assert torch.allclose(latent.reshape(-1, 24) @ solution, frames.reshape(-1, 64), atol=1e-5)
    weights = torch.cat([e.weight for e in model.code_embeds])
    assert weights.pow(2).mean().sqrt().item() == pytest.approx(model.config.initializer_range, rel=1e-4)
    depth = model.depth_code_embeds[1](codes[:, 1])  # the depth input of level 1 is a linear image of its code vector
    sol = torch.linalg.lstsq(codec.quantizer.layers[1].decode(codes[:, 1]).reshape(-1, 24), depth.reshape(-1, 32)).solution
    assert torch.allclose(codec.quantizer.layers[1].decode(codes[:, 1]).reshape(-1, 24) @ sol, depth.reshape(-1, 32), atol=1e-5)
    with pytest.raises(ValueError, match="code vectors"):
        model.init_code_embeddings(vectors[:2])
