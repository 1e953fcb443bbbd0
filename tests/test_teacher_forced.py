"""Ground-truth-aligned codes: the TTS's teacher-forced predictions (tts.teacher_forced) and the frame-aligned
(audio, codes) crops a decoder trains on (training.data.aligned_codes)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
import torch

from catcodec import CATConfig, CATModel
from catcodec.codes_file import read_codes
from catcodec.tokenize import tokenize_manifest
from training.data.aligned_codes import AlignedCodesDataset
from training.generation import SamplingConfig
from tts.modeling_tts import CATTTSModel
from tts.teacher_forced import main as teacher_forced_main
from tts.teacher_forced import predict_codes
from tts.training_task import collate_tts
from helpers.tiny_tts import TOK, tiny_config  # noqa: E402

TINY_CODEC = dict(sampling_rate=16000, patch_size=40, stage_dims=[32, 32, 32, 48], stage_layers=[1, 1, 1, 1],
                  stage_heads=[2, 2, 2, 2], stage_output_dims=[16, 16, 24, 32], quantizer_dim=32, num_quantizers=4,
                  codebook_size=64)


def test_greedy_predictions_are_each_frames_argmax_without_the_end_class():
    torch.manual_seed(0)
    model = CATTTSModel(tiny_config()).eval()
    g = torch.Generator().manual_seed(1)
    items = [{"text": torch.tensor(TOK.encode(t)), "codes": torch.randint(0, 16, (3, n), generator=g)}
             for t, n in (("hello there", 7), ("hi", 4))]
    batch = collate_tts(items)
    predicted = predict_codes(model, batch, SamplingConfig(temperature=0))
    assert [p.shape for p in predicted] == [(3, 7), (3, 4)]
    out = model(**batch, levels=torch.tensor([3, 3]))
    # item 0's frames are positions 0..6, item 1's 8..11 (position 7 predicts item 0's end of speech)
    for item, rows in ((0, slice(0, 7)), (1, slice(8, 12))):
        for k, logits in enumerate(out.logits):
            assert np.array_equal(predicted[item][k], logits[rows, :16].argmax(-1).numpy())
    assert all(p.max() < 16 and p.min() >= 0 for p in predicted)


def test_sampled_predictions_follow_the_seed():
    torch.manual_seed(0)
    model = CATTTSModel(tiny_config()).eval()
    batch = collate_tts([{"text": torch.tensor(TOK.encode("one two")), "codes": torch.randint(0, 16, (3, 9))}])
    sampling = SamplingConfig(temperature=1.0, top_p=0.95)
    runs = [predict_codes(model, batch, sampling, torch.Generator().manual_seed(s))[0] for s in (5, 5, 6)]
    assert np.array_equal(runs[0], runs[1]) and not np.array_equal(runs[0], runs[2])


def test_cli_writes_codes_that_line_up_with_each_source_line(tmp_path, capsys):
    torch.manual_seed(0)
    codec = CATModel(CATConfig(**TINY_CODEC)).eval()
    rng = np.random.default_rng(0)
    rows = []
    for i, text in enumerate(["hello", "good day", "", "café", "see you"]):
        sf.write(tmp_path / f"u{i}.wav", (0.1 * rng.standard_normal(4800 + 800 * i)).astype(np.float32), 16000)
        rows.append({"audio": f"u{i}.wav", "text": text or None, "speaker": "a", "sample_rate": 16000})
    manifest = tmp_path / "m.jsonl"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    codes_manifest = tokenize_manifest(codec, manifest, num_quantizers=4, progress=False).manifest
    tts_dir = tmp_path / "tts"
    CATTTSModel(tiny_config(num_quantizers=3, codebook_size=64)).save_pretrained(tts_dir)

    out = tmp_path / "gta" / "m.jsonl"
    teacher_forced_main([str(codes_manifest), "--model", str(tts_dir), "--out", str(out), "--threads", "1"])
    written = [json.loads(line) for line in out.read_text().splitlines()]
    # no transcript and an unsupported character ('é') are left out
    assert sorted(r["text"] for r in written) == ["good day", "hello", "see you"]
    for row in written:
        source = read_codes(row["real_codes"])
        assert row["real_codes"] == str(tmp_path / next(json.loads(l)["codes"] for l in codes_manifest.read_text().splitlines()
                                                        if json.loads(l)["text"] == row["text"]))
        predicted = read_codes(row["codes"])
        assert predicted.codes.shape == (3, source.codes.shape[1]) == (3, row["num_frames"])
        assert predicted.weights_id == source.weights_id != ""  # what the codes mean: the same codec's
        assert predicted.num_samples == source.num_samples
        assert (tmp_path / row["audio"]).exists() and row["audio"].startswith("/")
    assert "3 utterances" in capsys.readouterr().out


def _aligned_corpus(tmp_path, frames: list[int], hop: int) -> tuple:
    """Files whose every sample is its frame's index / 100 and codes [2, F] equal to the frame index (and + 1000)."""
    rows = []
    for i, n in enumerate(frames):
        samples = n * hop - hop // 2  # the last frame is partial
        audio = (np.arange(samples) // hop).astype(np.float32) / 100
        sf.write(tmp_path / f"a{i}.wav", audio, 16000, subtype="FLOAT")
        np.savez(tmp_path / f"a{i}.npz", codes=np.stack([np.arange(n), np.arange(n) + 1000]).astype(np.int16))
        rows.append({"audio": f"a{i}.wav", "codes": f"a{i}.npz", "num_frames": n, "speaker": "s"})
    manifest = tmp_path / "aligned.jsonl"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return manifest


def test_aligned_crops_keep_audio_and_codes_in_step(tmp_path):
    hop = 160
    manifest = _aligned_corpus(tmp_path, [12, 3, 30], hop)
    data = AlignedCodesDataset(manifest, 16000, hop, crop_frames=5, seed=1)
    assert len(data) == 2  # the 3-frame file is shorter than a crop
    starts = set()
    for epoch in range(6):
        data.set_epoch(epoch)
        for i in range(len(data)):
            item = data[i]
            codes, audio = item["codes"], item["audio"]
            assert codes.shape == (2, 5) and audio.shape == (5 * hop,)
            assert torch.equal(codes[1], codes[0] + 1000)
            last = (11, 29)[i]  # each kept file's partial last frame
            for j in range(5):
                span = audio[j * hop : (j + 1) * hop]
                real = span[: hop // 2] if int(codes[0, j]) == last else span
                assert torch.allclose(real, torch.full_like(real, int(codes[0, j]) / 100), atol=1e-6)
                if int(codes[0, j]) == last:  # past the end of the file: zeros
                    assert span[hop // 2 :].abs().max() == 0
            starts.add((i, int(codes[0, 0])))
    assert len(starts) > 4  # the crops move from epoch to epoch
    data.set_epoch(2)
    again = AlignedCodesDataset(manifest, 16000, hop, crop_frames=5, seed=1)
    again.set_epoch(2)
    assert torch.equal(data[1]["codes"], again[1]["codes"])  # and are fixed by (seed, epoch, index)


def test_aligned_dataset_refuses_a_manifest_without_long_enough_items(tmp_path):
    manifest = _aligned_corpus(tmp_path, [3], 160)
    with pytest.raises(ValueError, match="at least 5 frames"):
        AlignedCodesDataset(manifest, 16000, 160, crop_frames=5)
