"""CAT-ASR model on a tiny random config: shapes, the loss reads only the text, training masks, any number of
codebooks, decoding through training.generation, save / load."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from asr.configuration_asr import CATASRConfig
from asr.decoding import max_characters, transcribe, transcribe_ids
from asr.modeling_asr import CATASRModel
from tts.text import CharTokenizer

pytestmark = pytest.mark.usefixtures("single_thread")

K, SIZE = 4, 64


def tiny(seed: int = 0, **overrides) -> CATASRModel:
    torch.manual_seed(seed)
    fields = dict(num_quantizers=K, codebook_size=SIZE, hidden_size=32, num_layers=2, num_heads=2, intermediate_size=64,
                  max_positions=256, text_vocab_size=CharTokenizer().vocab_size, initializer_range=0.2)
    return CATASRModel(CATASRConfig(**{**fields, **overrides}))


def batch(seed: int = 0) -> dict[str, torch.Tensor]:
    """Two items: 9 frames + 'hi there' and 5 frames + 'yes', right-padded with garbage."""
    g = torch.Generator().manual_seed(seed)
    tok = CharTokenizer()
    texts = [tok.encode("hi there"), tok.encode("yes")]
    text = torch.randint(3, 38, (2, max(map(len, texts))), generator=g)  # garbage in the padding
    for i, t in enumerate(texts):
        text[i, : len(t)] = torch.tensor(t)
    return {"codes": torch.randint(0, SIZE, (2, K, 9), generator=g), "frame_lengths": torch.tensor([9, 5]),
            "text_ids": text, "text_lengths": torch.tensor([len(t) for t in texts])}


def test_shapes_and_labels_are_the_text_only():
    model = tiny().eval()
    b = batch()
    out = model(**b)
    n_text = int((b["text_lengths"] - 1).sum())  # BOS..last char predict the chars and EOS
    assert out.logits.shape == (n_text, CharTokenizer().vocab_size)
    expected = torch.cat([b["text_ids"][i, 1 : b["text_lengths"][i]] for i in range(2)])
    assert torch.equal(out.labels, expected)
    assert out.labels[int(b["text_lengths"][0]) - 2] == CharTokenizer.EOS
    assert torch.isfinite(out.loss) and out.loss.item() == pytest.approx(F.cross_entropy(out.logits, out.labels).item())


def test_loss_equals_each_item_alone_and_ignores_padding():
    model = tiny().eval()
    b = batch()
    out = model(**b)
    # each item alone, unpadded: its logits are the batch's
    rows, start = [], 0
    for i in range(2):
        lf, lt = int(b["frame_lengths"][i]), int(b["text_lengths"][i])
        alone = model(codes=b["codes"][i : i + 1, :, :lf], frame_lengths=torch.tensor([lf]),
                      text_ids=b["text_ids"][i : i + 1, :lt], text_lengths=torch.tensor([lt]))
        assert torch.allclose(alone.logits, out.logits[start : start + lt - 1], atol=1e-4)
        start += lt - 1
    # whatever sits in the padding (frames or characters) changes nothing
    noisy = {k: v.clone() for k, v in b.items()}
    noisy["codes"][1, :, 5:] = (noisy["codes"][1, :, 5:] + 7) % SIZE
    noisy["text_ids"][1, 5:] = 9
    assert model(**noisy).loss.item() == pytest.approx(out.loss.item(), abs=1e-6)


def test_hidden_states_for_distillation_cover_the_real_frames_and_the_text_positions():
    model = tiny().eval()
    b = batch()
    assert model(**b).audio_hidden_states is None  # only on request
    out = model(**b, output_hidden_states=True)
    assert out.audio_hidden_states.shape == (9 + 5, 32)  # the real frames of both items, not the padding
    assert out.text_hidden_states.shape == (out.logits.shape[0], 32)
    # the second item's frames are its own states, whatever its padding holds
    alone = model(codes=b["codes"][1:, :, :5], frame_lengths=torch.tensor([5]), text_ids=b["text_ids"][1:, :4],
                  text_lengths=torch.tensor([4]), output_hidden_states=True)
    assert torch.allclose(alone.audio_hidden_states, out.audio_hidden_states[9:], atol=1e-4)


def test_loss_gradient_reaches_audio_but_no_loss_on_audio_positions():
    model = tiny().train()
    model.config.progressive_dropout, model.config.level_mask_prob, model.config.time_mask_count = 0.0, 0.0, 0
    out = model(**batch())
    out.loss.backward()
    assert model.code_embed.weight.grad.abs().sum() > 0  # the transcript is predicted from the audio
    # the audio positions are never targets: text logits only, one per character of each transcript (+ EOS)
    assert out.logits.shape[0] == int((batch()["text_lengths"] - 1).sum())


def test_training_masks_shapes_and_bounds():
    model = tiny(time_mask_count=3, time_mask_max_frames=4, level_mask_prob=0.5).train()
    torch.manual_seed(1)
    levels = torch.tensor([4, 1, 3, 2])
    lengths = torch.tensor([40, 40, 8, 3])
    frame_levels, masked = model.sample_masks(levels, lengths, 40)
    assert frame_levels.shape == (4, 40) and masked.shape == (4, 40) and masked.dtype == torch.bool
    assert (frame_levels >= 1).all() and (frame_levels <= levels[:, None]).all()
    assert (frame_levels[0] < 4).any() and (frame_levels[0] == 4).any()  # some frames lose their finer codebooks
    assert (frame_levels[1] == 1).all()  # one codebook: nothing finer to drop
    assert int(masked[0].sum()) <= 3 * 4 and int(masked[2].sum()) <= 3 * (8 // 4)
    assert not masked[3].any()  # 3 frames: a quarter is 0 frames, so no mask
    # masks on: training differs from evaluation; masks off: the same
    b = batch()
    torch.manual_seed(2)
    assert model(**b, levels=torch.tensor([4, 4])).loss.item() != pytest.approx(model.eval()(**b).loss.item(), abs=1e-5)
    plain = tiny(progressive_dropout=0.0, time_mask_count=0, level_mask_prob=0.0)
    assert plain.train()(**b).loss.item() == pytest.approx(plain.eval()(**b).loss.item(), abs=1e-6)


def test_progressive_dropout_levels():
    model = tiny(progressive_dropout=1.0).train()
    torch.manual_seed(0)
    levels = model.sample_levels(400, K, torch.device("cpu"))
    assert set(levels.tolist()) == {1, 2, 3, 4}
    assert (model.eval().sample_levels(5, K, torch.device("cpu")) == K).all()


@pytest.mark.parametrize("n", [1, 2, 3, 4])
def test_any_number_of_codebooks(n):
    model = tiny().eval()
    b = batch()
    emb = model.frame_embedding(b["codes"], n)
    assert torch.allclose(emb, model.frame_embedding(b["codes"][:, :n], n), atol=1e-6)  # finer rows unread
    per_frame = torch.full((2, 9), n)
    assert torch.allclose(emb, model.frame_embedding(b["codes"], per_frame), atol=1e-6)
    out = model(**{**b, "codes": b["codes"][:, :n]})
    assert torch.isfinite(out.loss)
    texts = transcribe(model, [b["codes"][0, :n], b["codes"][1, :, :5]], num_quantizers=n)
    assert len(texts) == 2 and all(isinstance(t, str) and t for t in texts)


def test_errors():
    model = tiny().eval()
    with pytest.raises(ValueError, match="1..4 codebooks"):
        model.frame_embedding(torch.zeros(1, 5, 3, dtype=torch.long), 5)
    with pytest.raises(ValueError, match="num_quantizers must be in 1..4"):
        transcribe_ids(model, [torch.zeros(4, 3, dtype=torch.long)], num_quantizers=5)
    with pytest.raises(ValueError, match=">= 2 codebooks"):
        transcribe_ids(model, [torch.zeros(1, 3, dtype=torch.long)], num_quantizers=2)
    with pytest.raises(ValueError, match="beam"):
        transcribe_ids(model, [torch.zeros(4, 3, dtype=torch.long)], beam=0)
    with pytest.raises(ValueError, match="progressive_dropout"):
        CATASRConfig(progressive_dropout=1.5)
    with pytest.raises(ValueError, match="even heads"):
        CATASRConfig(hidden_size=30, num_heads=4)
    with pytest.raises(ValueError, match="time_mask"):
        CATASRConfig(time_mask_count=-1)


def test_decoding_batched_equals_alone_and_respects_limits():
    model = tiny().eval()
    g = torch.Generator().manual_seed(3)
    items = [torch.randint(0, SIZE, (K, f), generator=g) for f in (12, 3, 7)]
    for beam in (1, 3):
        batched = transcribe_ids(model, items, beam=beam)
        assert batched == [transcribe_ids(model, [x], beam=beam)[0] for x in items]
        assert all(len(ids) <= max_characters(x.shape[1], 256) for ids, x in zip(batched, items))
        assert all(min(ids) >= 3 for ids in batched if ids)  # never padding, BOS or EOS
    assert max_characters(12, 256) == 32 and max_characters(250, 256) == 5  # the positions left bound it


def test_save_and_load(tmp_path):
    model = tiny().eval()
    model.save_pretrained(tmp_path / "asr")
    loaded = CATASRModel.from_pretrained(tmp_path / "asr").eval()
    b = batch()
    assert loaded.config.num_quantizers == K and loaded.config.time_mask_max_frames == 4
    assert torch.allclose(loaded(**b).logits, model(**b).logits, atol=1e-6)


def test_bf16_export_loads_back_in_fp32(tmp_path):
    from asr.configuration_asr import CATASRConfig
    from asr.modeling_asr import CATASRModel
    from catcodec.export import export

    torch.manual_seed(0)
    model = CATASRModel(CATASRConfig(text_vocab_size=38, num_quantizers=2, codebook_size=16, hidden_size=32,
                                     num_layers=1, num_heads=2, intermediate_size=64, max_positions=64))
    model.save_pretrained(tmp_path / "run")
    (weights,) = export(tmp_path / "run", tmp_path / "shipped", model_class=CATASRModel)
    assert weights.stat().st_size < (tmp_path / "run" / "model.safetensors").stat().st_size * 0.6  # half the bytes
    loaded = CATASRModel.from_pretrained(tmp_path / "shipped")
    assert loaded.lm_head.weight.dtype == torch.float32
    assert torch.allclose(loaded.lm_head.weight, model.lm_head.weight, atol=1e-2)
    assert not torch.equal(loaded.lm_head.weight, model.lm_head.weight)  # bf16 rounding happened


def test_sharded_export_keeps_each_file_under_the_limit_and_loads_back(tmp_path):
    """`--max-shard-mb`: several files, none over the limit, read back by from_pretrained as one model."""
    from asr.configuration_asr import CATASRConfig
    from asr.modeling_asr import CATASRModel
    from catcodec.export import main

    torch.manual_seed(0)
    model = CATASRModel(CATASRConfig(text_vocab_size=38, num_quantizers=2, codebook_size=64, hidden_size=64,
                                     num_layers=2, num_heads=2, intermediate_size=128, max_positions=64))
    model.save_pretrained(tmp_path / "run")
    whole = (tmp_path / "run" / "model.safetensors").stat().st_size / 2  # bytes in bf16
    limit_mb = whole / 3 / 1e6
    assert main([str(tmp_path / "run"), "--out", str(tmp_path / "shipped"), "--max-shard-mb", str(limit_mb)],
                model_class=CATASRModel) == 0
    shards = sorted((tmp_path / "shipped").glob("*.safetensors"))
    assert len(shards) >= 3 and (tmp_path / "shipped" / "model.safetensors.index.json").is_file()
    # a shard may pass the limit by one tensor's header at most; the biggest tensor here is far smaller
    assert all(f.stat().st_size <= limit_mb * 1e6 + 4096 for f in shards)
    loaded = CATASRModel.from_pretrained(tmp_path / "shipped")
    for (name, a), (_, b) in zip(loaded.state_dict().items(), model.state_dict().items()):
        assert torch.allclose(a, b, atol=2e-2), name


def test_auxiliary_ctc_loss_adds_to_the_loss_and_ignores_padding():
    assert not hasattr(tiny(), "ctc_head")  # off by default: no extra weights in the saved model
    model = tiny(ctc_weight=0.5, ctc_upsample=3).eval()
    b = batch()
    out = model(**b)
    ce = F.cross_entropy(out.logits, out.labels)
    assert out.ctc_loss is not None and out.ctc_loss.item() > 0
    assert out.loss.item() == pytest.approx(ce.item() + 0.5 * out.ctc_loss.item(), rel=1e-5)
    noisy = {k: v.clone() for k, v in b.items()}
    noisy["codes"][1, :, 5:] = (noisy["codes"][1, :, 5:] + 7) % SIZE
    noisy["text_ids"][1, 5:] = 9
    assert model(**noisy).ctc_loss.item() == pytest.approx(out.ctc_loss.item(), abs=1e-5)
    # item 0 alone: F.ctc_loss over its 9 frames x 3 positions, targets "hi there" without BOS / EOS
    lt = int(b["text_lengths"][0])
    hidden = model.decoder(inputs_embeds=torch.cat([model.frame_embedding(b["codes"][:1], K),
                                                    model.text_embed(b["text_ids"][:1, :lt])], dim=1)).last_hidden_state
    alone = model.ctc_loss(hidden, torch.tensor([9]), b["text_ids"][:1, :lt], torch.tensor([lt]))
    up = F.gelu(model.ctc_upsample(hidden[:, :9])).reshape(1, 27, -1)
    log_probs = F.log_softmax(model.ctc_head(up), -1).transpose(0, 1)
    target = b["text_ids"][:1, 1 : lt - 1]
    manual = F.ctc_loss(log_probs, target, torch.tensor([27]), torch.tensor([lt - 2]), blank=0)
    assert alone.item() == pytest.approx(manual.item(), rel=1e-5)
    model.train()
    model(**b).loss.backward()
    assert model.ctc_head.weight.grad.abs().sum() > 0 and model.code_embed.weight.grad.abs().sum() > 0


def test_code_embeddings_can_start_from_the_codec_code_vectors():
    from catcodec import CATConfig, CATModel

    torch.manual_seed(0)
    codec = CATModel(CATConfig(sampling_rate=16000, patch_size=40, stage_dims=[32, 32, 32, 48],
                               stage_layers=[1, 1, 1, 1], stage_heads=[2, 2, 2, 2], stage_output_dims=[16, 16, 24, 32],
                               quantizer_dim=24, num_quantizers=K + 1, codebook_size=SIZE)).eval()
    vectors = codec.code_vectors(K)
    assert vectors.shape == (K, SIZE, 24)
    model = tiny()
    model.init_code_embeddings(vectors)
    codes = torch.randint(0, SIZE, (2, K, 7))
    frames = model.frame_embedding(codes, K)  # [2, 7, 32]: a fixed linear map of the codec's latent (pre output_proj)
    latent = sum(codec.quantizer.layers[k].decode(codes[:, k]) for k in range(K))  # [2, 7, 24]
    solution = torch.linalg.lstsq(latent.reshape(-1, 24), frames.reshape(-1, 32)).solution
    assert torch.allclose(latent.reshape(-1, 24) @ solution, frames.reshape(-1, 32), atol=1e-5)
    assert model.code_embed.weight.std().item() == pytest.approx(model.config.initializer_range, rel=0.05)
    with pytest.raises(ValueError, match="code vectors"):
        model.init_code_embeddings(vectors[:2])


def test_audio_encoder_is_bidirectional_padding_free_and_decodes_batched_as_alone():
    model = tiny(audio_encoder_layers=2, ctc_weight=0.5).eval()
    assert sum(p.numel() for p in model.audio_encoder.parameters()) > 0
    g = torch.Generator().manual_seed(5)
    frames = torch.randn(2, 9, 32, generator=g)
    lengths = torch.tensor([9, 5])
    out = model.encode_frames(frames, lengths)
    # bidirectional: the last frame moves the first frame's state (a causal stack could not)
    later = frames.clone()
    later[0, 8] += 1.0
    assert (model.encode_frames(later, lengths)[0, 0] - out[0, 0]).abs().max() > 1e-3
    # padding: item 1 alone (5 frames) equals its row in the batch, whatever the padding holds
    alone = model.encode_frames(frames[1:, :5], torch.tensor([5]))
    assert torch.allclose(alone[0], out[1, :5], atol=1e-5)
    noisy = frames.clone()
    noisy[1, 5:] = 100.0
    assert torch.allclose(model.encode_frames(noisy, lengths)[1, :5], out[1, :5], atol=1e-5)
    # the whole model: each item alone gives the batch's logits, CTC reads the encoder, decoding batched == alone
    b = batch()
    full = model(**b)
    assert full.ctc_loss is not None and torch.isfinite(full.loss)
    lt = int(b["text_lengths"][1])
    one = model(codes=b["codes"][1:, :, :5], frame_lengths=torch.tensor([5]), text_ids=b["text_ids"][1:, :lt],
                text_lengths=torch.tensor([lt]))
    assert torch.allclose(one.logits, full.logits[-(lt - 1):], atol=1e-4)
    items = [torch.randint(0, SIZE, (K, f), generator=g) for f in (12, 3, 7)]
    assert transcribe_ids(model, items, beam=1) == [transcribe_ids(model, [x], beam=1)[0] for x in items]


def test_audio_encoder_layers_must_not_be_negative():
    with pytest.raises(ValueError, match="audio_encoder_layers"):
        tiny(audio_encoder_layers=-1)


def test_ctc_log_probs_match_training_and_ignore_padding():
    model = tiny(ctc_weight=0.5).eval()
    b = batch()
    u = model.config.ctc_upsample
    probs = model.ctc_log_probs(b["codes"], b["frame_lengths"], K)
    assert probs.shape == (2, 9 * u, model.config.text_vocab_size)
    assert torch.allclose(probs.exp().sum(-1), torch.ones(2, 9 * u), atol=1e-5)
    alone = model.ctc_log_probs(b["codes"][1:, :, :5], b["frame_lengths"][1:], K)
    assert torch.allclose(alone[0], probs[1, : 5 * u], atol=1e-5)
    # the training loss is the CTC loss of these log-probabilities
    with torch.no_grad():
        hidden = model.decoder(inputs_embeds=model.frame_embedding(b["codes"], K)).last_hidden_state
        loss = model.ctc_loss(hidden, b["frame_lengths"], b["text_ids"], b["text_lengths"])
    expected = F.ctc_loss(probs.transpose(0, 1), b["text_ids"][:, 1:], b["frame_lengths"] * u, b["text_lengths"] - 2,
                          blank=0, zero_infinity=True)
    assert float(loss) == pytest.approx(float(expected), rel=1e-5)


def test_joint_ctc_decoding():
    model = tiny(ctc_weight=0.5).eval()
    codes = [torch.randint(0, SIZE, (K, n), generator=torch.Generator().manual_seed(n)) for n in (6, 9)]
    beam = transcribe_ids(model, codes, beam=3)
    assert transcribe_ids(model, codes, beam=3, ctc_weight=0.0) == beam
    joint = transcribe_ids(model, codes, beam=3, ctc_weight=0.5)
    assert [transcribe_ids(model, [c], beam=3, ctc_weight=0.5)[0] for c in codes] == joint  # batched = alone
    # joint decoding keeps to what CTC can align: 3 steps per frame, a repeated character needs a blank between
    def ctc_steps(ids):
        return len(ids) + sum(a == b for a, b in zip(ids, ids[1:]))

    assert all(ctc_steps(ids) <= 3 * c.shape[1] for ids, c in zip(joint, codes))
    # one beam scored jointly, with a vanishing CTC weight: plain greedy decoding (the other code path) for as long
    # as greedy's text still fits the CTC steps, then the best that fits
    greedy = transcribe_ids(model, codes, beam=1)
    barely = transcribe_ids(model, codes, beam=1, ctc_weight=1e-9)
    for g, j, c in zip(greedy, barely, codes):
        fits = max(n for n in range(len(g) + 1) if ctc_steps(g[:n]) <= 3 * c.shape[1])
        assert j[:fits] == g[:fits] and ctc_steps(j) <= 3 * c.shape[1]
        assert (j == g) == (fits == len(g))
    assert any(j != g for g, j in zip(greedy, barely))  # this random model's greedy text runs too long for one item


def test_ctc_weight_errors():
    codes = [torch.zeros(K, 5, dtype=torch.long)]
    with pytest.raises(ValueError, match="trained with a CTC head"):
        transcribe_ids(tiny(), codes, beam=2, ctc_weight=0.3)
    with pytest.raises(ValueError, match=r"in \[0, 1\)"):
        transcribe_ids(tiny(ctc_weight=0.5), codes, beam=2, ctc_weight=1.0)
