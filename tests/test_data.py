"""training.data: manifests, the mixed/cropped AudioDataset, its collate, and the bucketing sampler.
Everything runs on audio generated into tmp_path."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import librosa
import numpy as np
import pytest
import soundfile as sf
import torch

from training.data import (AudioBatch, AudioDataset, BucketBatchSampler, ManifestEntry, collate_audio,
                           read_manifest, split_by_speaker, write_manifest)


def _write_wav(path: Path, seconds: float, rate: int = 16000, channels: int = 1, seed: int = 0,
               amplitude: float = 0.3) -> ManifestEntry:
    """Write seeded noise and return its manifest entry."""
    rng = np.random.default_rng(seed)
    data = (amplitude * rng.uniform(-1, 1, size=(round(seconds * rate), channels))).astype(np.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, data if channels > 1 else data[:, 0], rate)
    return ManifestEntry(str(path), f"text {seed}", f"spk{seed % 3}", rate, data.shape[0] / rate, {"id": seed})


def _manifest(tmp_path: Path, name: str, entries: list[ManifestEntry]) -> Path:
    path = tmp_path / name
    write_manifest(entries, path)
    return path


def _make_set(tmp_path: Path, count: int = 6, seconds: float = 1.0, rate: int = 16000, name: str = "m.jsonl") -> Path:
    entries = [_write_wav(tmp_path / "wavs" / f"{name}_{k}.wav", seconds + 0.1 * k, rate, seed=k) for k in range(count)]
    return _manifest(tmp_path, name, entries)


# ---------------------------------------------------------------- manifests


def test_manifest_round_trip_relative_and_absolute(tmp_path):
    inside = _write_wav(tmp_path / "set" / "a" / "x.wav", 0.2, seed=1)
    outside = _write_wav(tmp_path / "elsewhere" / "y.wav", 0.3, seed=2)
    outside.text = None
    path = tmp_path / "set" / "manifest.jsonl"
    write_manifest([inside, outside], path)
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    assert lines[0]["audio"] == "a/x.wav"  # stored relative to the manifest folder
    assert lines[1]["audio"] == str(tmp_path / "elsewhere" / "y.wav")
    assert lines[0]["id"] == 1 and "extra" not in lines[0]  # extras flattened into the line
    back = read_manifest(path)
    assert back == [inside, outside]
    assert Path(back[0].audio).is_absolute()
    assert not list(path.parent.glob("*.tmp"))  # the atomic write left no temp file


def test_manifest_blank_lines_and_malformed_line(tmp_path):
    good = {"audio": "a.wav", "text": "hi", "speaker": "s", "sample_rate": 16000, "duration": 1.0}
    path = tmp_path / "m.jsonl"
    bad = {k: v for k, v in good.items() if k != "speaker"}
    path.write_text(json.dumps(good) + "\n\n" + json.dumps(bad) + "\n")
    with pytest.raises(ValueError, match=r"m\.jsonl:3: missing field\(s\) speaker"):
        read_manifest(path)
    path.write_text(json.dumps(good) + "\n\n{not json\n")
    with pytest.raises(ValueError, match=r"m\.jsonl:3: invalid JSON"):
        read_manifest(path)
    path.write_text("\n" + json.dumps(good) + "\n\n")
    (entry,) = read_manifest(path)
    assert entry.audio == str(tmp_path / "a.wav") and entry.extra == {}


def test_split_by_speaker_is_disjoint():
    entries = [ManifestEntry(f"/x/{k}.wav", None, f"s{k % 7}", 16000, 1.0) for k in range(70)]
    train, val = split_by_speaker(entries, val_fraction=0.3, seed=3)
    assert len(train) + len(val) == 70 and val and train
    assert not {e.speaker for e in train} & {e.speaker for e in val}
    assert split_by_speaker(entries, val_fraction=0.3, seed=3) == (train, val)  # seeded
    train, val = split_by_speaker(entries, val_speakers=["s2"])
    assert {e.speaker for e in val} == {"s2"} and len(val) == 10


# ---------------------------------------------------------------- AudioDataset


def test_resamples_stereo_22k_to_16k_mono(tmp_path):
    entry = _write_wav(tmp_path / "st.wav", 1.0, rate=22050, channels=2, seed=5)
    ds = AudioDataset([_manifest(tmp_path, "m.jsonl", [entry])], sampling_rate=16000)
    item = ds[0]
    audio = item["audio"]
    assert audio.dtype == torch.float32 and audio.ndim == 1 and audio.shape[0] == 16000
    stereo, _ = sf.read(entry.audio, dtype="float32")
    expected = librosa.resample(stereo.mean(axis=1), orig_sr=22050, target_sr=16000, res_type="soxr_hq")
    np.testing.assert_allclose(audio.numpy(), expected, atol=1e-6)
    assert item["speaker"] == entry.speaker and item["text"] == entry.text and item["path"] == entry.audio


def test_crop_exact_length_and_deterministic(tmp_path):
    m = _make_set(tmp_path, count=4, seconds=2.0, rate=22050)
    short = _manifest(tmp_path, "short.jsonl", [_write_wav(tmp_path / "short.wav", 0.25, seed=9)])
    ds = AudioDataset([m, short], sampling_rate=16000, crop_seconds=0.5, seed=1)
    again = AudioDataset([m, short], sampling_rate=16000, crop_seconds=0.5, seed=1)
    for i in range(4):
        a = ds[i]["audio"]
        assert a.shape[0] == 8000
        assert torch.equal(a, again[i]["audio"])  # same (seed, epoch, index) -> same crop
    assert ds[4]["audio"].shape[0] == 4000  # shorter than the crop: whole file
    first = ds[0]["audio"]
    ds.set_epoch(1)
    assert not torch.equal(first, ds[0]["audio"])  # a new epoch moves the crop
    ds.set_epoch(0)
    assert torch.equal(first, ds[0]["audio"])


def test_a_crop_drops_the_transcript(tmp_path):
    long = _write_wav(tmp_path / "long.wav", 2.0, seed=4)
    short = _write_wav(tmp_path / "short.wav", 0.25, seed=5)
    ds = AudioDataset([_manifest(tmp_path, "m.jsonl", [long, short])], sampling_rate=16000, crop_seconds=0.5)
    assert ds[0]["text"] is None and ds[0]["audio"].shape[0] == 8000  # cut: its words are unknown
    assert ds[1]["text"] == "text 5"  # shorter than the crop: whole, so its transcript holds
    uncropped = AudioDataset([_manifest(tmp_path, "m2.jsonl", [long])], sampling_rate=16000)
    assert uncropped[0]["text"] == "text 4"


def test_gain_range_and_no_clipping(tmp_path):
    m = _make_set(tmp_path, count=5, seconds=0.5)
    plain = AudioDataset([m], sampling_rate=16000, crop_seconds=0.25, seed=2)
    gained = AudioDataset([m], sampling_rate=16000, crop_seconds=0.25, seed=2, gain_db=(-6.0, 6.0))
    gains = []
    for i in range(len(plain)):
        ref, out = plain[i]["audio"], gained[i]["audio"]
        ratio = out.abs().max() / ref.abs().max()  # the crop is the same; only the gain differs
        gains.append(20 * math.log10(float(ratio)))
        torch.testing.assert_close(out, ref * ratio)
    assert all(-6.0 - 1e-4 <= g <= 6.0 + 1e-4 for g in gains) and len(set(round(g, 3) for g in gains)) > 1
    loud = _manifest(tmp_path, "loud.jsonl", [_write_wav(tmp_path / "loud.wav", 0.5, amplitude=0.9, seed=k)
                                              for k in range(1)])
    hot = AudioDataset([loud], sampling_rate=16000, gain_db=(10.0, 12.0))
    assert float(hot[0]["audio"].abs().max()) <= 0.99 + 1e-6


def test_mixing_weights(tmp_path):
    m = _make_set(tmp_path, count=10, seconds=0.2)
    assert len(AudioDataset([(m, 2.0)], sampling_rate=16000)) == 20
    half = AudioDataset([(m, 0.5)], sampling_rate=16000, seed=4)
    assert len(half) == 5
    paths0 = [half.entry(i).audio for i in range(len(half))]
    assert len(set(paths0)) == 5
    draws = {tuple(paths0)}
    for epoch in range(1, 5):
        half.set_epoch(epoch)
        assert len(half) == 5
        draws.add(tuple(half.entry(i).audio for i in range(len(half))))
    assert len(draws) > 1  # re-drawn across epochs
    half.set_epoch(0)
    assert [half.entry(i).audio for i in range(len(half))] == paths0  # but fixed per (seed, epoch)
    mixed = AudioDataset([(m, 1.0), (m, 1.5)], sampling_rate=16000)
    assert len(mixed) == 10 + 10 + 5


def test_filters(tmp_path):
    entries = [_write_wav(tmp_path / f"{k}.wav", 0.1 * (k + 1), seed=k) for k in range(6)]
    entries[0].text = None
    m = _manifest(tmp_path, "m.jsonl", entries)
    assert len(AudioDataset([m], 16000, min_seconds=0.25, max_seconds=0.45)) == 2
    assert len(AudioDataset([m], 16000, require_text=True)) == 5


def test_corrupt_and_missing_files_fall_back(tmp_path, caplog):
    good = [_write_wav(tmp_path / f"good{k}.wav", 0.3, seed=k) for k in range(4)]
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk" + bytes(range(200)))
    missing = tmp_path / "missing.flac"
    bad = [ManifestEntry(str(corrupt), "x", "s", 16000, 0.3), ManifestEntry(str(missing), "y", "s", 16000, 0.3)]
    m = _manifest(tmp_path, "m.jsonl", [good[0], bad[0], good[1], bad[1], good[2], good[3]])
    ds = AudioDataset([(m, 2.0)], sampling_rate=16000, crop_seconds=0.2)
    good_paths = {e.audio for e in good}
    with caplog.at_level(logging.WARNING, logger="training.data"):
        for epoch in range(2):
            ds.set_epoch(epoch)
            items = [ds[i] for i in range(len(ds))]
            assert {it["path"] for it in items} <= good_paths
            assert all(it["audio"].shape[0] == 3200 and it["audio"].abs().max() > 0 for it in items)
    assert ds.num_failed == 2
    warnings = [r.getMessage() for r in caplog.records if r.name == "training.data"]
    assert len(warnings) == 2
    assert sum(str(corrupt) in w for w in warnings) == 1 and sum(str(missing) in w for w in warnings) == 1


def test_too_many_unreadable_files_raises(tmp_path):
    m = _manifest(tmp_path, "m.jsonl", [ManifestEntry(str(tmp_path / f"no{k}.wav"), None, "s", 16000, 1.0)
                                        for k in range(3)])
    ds = AudioDataset([m], sampling_rate=16000)
    with pytest.raises(RuntimeError, match="too many unreadable files"):
        ds[0]


def test_collate_pads_and_masks(tmp_path):
    m = _manifest(tmp_path, "m.jsonl", [_write_wav(tmp_path / f"{k}.wav", s, seed=k) for k, s in
                                        enumerate([0.1, 0.25, 0.2])])
    ds = AudioDataset([m], sampling_rate=16000)
    batch = collate_audio([ds[i] for i in range(3)])
    assert isinstance(batch, AudioBatch) and len(batch) == 3
    assert batch.audio.shape == (3, 1, 4000) and batch.audio.dtype == torch.float32
    assert batch.lengths.tolist() == [1600, 4000, 3200] and batch.lengths.dtype == torch.long
    assert batch.padding_mask.dtype == torch.long and batch.padding_mask.sum(1).tolist() == [1600, 4000, 3200]
    assert torch.all(batch.audio[0, 0, 1600:] == 0) and torch.equal(batch.audio[0, 0, :1600], ds[0]["audio"])
    assert batch.texts == ["text 0", "text 1", "text 2"] and len(batch.speakers) == len(batch.paths) == 3
    moved = batch.to("cpu")
    assert torch.equal(moved.audio, batch.audio) and moved.paths == batch.paths


# ---------------------------------------------------------------- BucketBatchSampler


def _lengths(n: int = 103, seed: int = 0) -> list[float]:
    return np.random.default_rng(seed).uniform(0.5, 20.0, size=n).round(3).tolist()


def test_bucket_sampler_covers_every_index_once_with_similar_lengths():
    lengths = _lengths()
    s = BucketBatchSampler(lengths, batch_size=8, seed=1, num_buckets=5)
    for epoch in range(2):
        s.set_position(epoch, 0)
        batches = list(s)
        assert len(batches) == len(s)
        flat = [i for b in batches for i in b]
        assert sorted(flat) == list(range(len(lengths)))
    spread = max(lengths) - min(lengths)
    for b in batches:
        assert max(lengths[i] for i in b) - min(lengths[i] for i in b) < spread / 3
    s.set_position(0, 0)
    assert list(s) != batches  # the batch order is re-shuffled per epoch


def test_bucket_sampler_max_batch_seconds():
    lengths = _lengths()
    s = BucketBatchSampler(lengths, batch_size=16, num_buckets=8, max_batch_seconds=40.0)
    batches = list(s)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    assert all(sum(lengths[i] for i in b) <= 40.0 for b in batches)
    assert max(len(b) for b in batches) > 2  # short buckets still get large batches


def test_bucket_sampler_resume():
    s = BucketBatchSampler(_lengths(), batch_size=4, seed=7, num_buckets=6)
    s.set_position(3, 0)
    full = list(s)
    s.set_position(3, 5)
    assert s.state_dict() == {"epoch": 3, "start_batch": 5}
    assert list(s) == full[5:]
    fresh = BucketBatchSampler(_lengths(), batch_size=4, seed=7, num_buckets=6)
    fresh.set_position(**{"epoch": 3, "batches_done": 5})
    assert list(fresh) == full[5:]


def test_bucket_sampler_ranks_match_single_process():
    lengths = _lengths(101)
    one = BucketBatchSampler(lengths, batch_size=8, seed=2, num_buckets=4)
    ranks = [BucketBatchSampler(lengths, batch_size=4, seed=2, rank=r, world_size=2, num_buckets=4) for r in range(2)]
    for epoch in range(2):
        for s in (one, *ranks):
            s.set_position(epoch, 0)
        single = list(one)
        per_rank = [list(s) for s in ranks]
        assert len(single) == len(one) == len(ranks[0]) == len(per_rank[0]) == len(per_rank[1])
        assert all(per_rank[0][k] and per_rank[1][k] for k in range(len(single)))  # no rank ever idles
        padded = 0
        for k, batch in enumerate(single):
            if len(batch) >= 2:
                assert per_rank[0][k] + per_rank[1][k] == batch
            else:  # a bucket's last single item: rank 1 is padded with another item of that bucket
                padded += 1
                assert per_rank[0][k] == batch and len(per_rank[1][k]) == 1
                assert abs(lengths[per_rank[1][k][0]] - lengths[batch[0]]) < 10
        assert padded >= 1  # 101 items in buckets of 26/25/25/25 leave single items
