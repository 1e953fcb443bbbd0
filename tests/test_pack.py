"""training.data.pack: a weighted, size-bounded, relocatable sample of manifests (FLAC or Ogg Opus)."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from catcodec.evaluation.baselines import opus_encoder_missing
from training.data.manifest import ManifestEntry, read_manifest, write_manifest
from training.data.pack import main, pack


def tone_manifest(folder: Path, name: str, rate: int, count: int, freq: float) -> Path:
    t = np.arange(rate) / rate  # one second each
    entries = []
    for i in range(count):
        path = folder / f"{name}_{i}.wav"
        sf.write(path, 0.3 * np.sin(2 * np.pi * freq * t), rate, subtype="PCM_16")
        entries.append(ManifestEntry(audio=str(path), text=f"{name} {i}", speaker=name, sample_rate=rate, duration=1.0))
    manifest = folder / f"{name}.jsonl"
    write_manifest(entries, manifest)
    return manifest


def test_pack_resamples_keeps_text_and_moves_with_its_folder(tmp_path):
    a = tone_manifest(tmp_path, "a", 22050, 3, 440.0)
    b = tone_manifest(tmp_path, "b", 16000, 3, 880.0)
    stats = pack([(a, 1.0), (b, 1.0)], tmp_path / "packed", rate=16000, max_mb=10, max_seconds=None, seed=0)
    assert stats["clips"] == 6 and stats["minutes"] == pytest.approx(0.1, abs=1e-3)
    moved = tmp_path / "elsewhere"
    shutil.move(tmp_path / "packed", moved)
    entries = read_manifest(moved / "manifest.jsonl")
    assert sorted(e.text for e in entries) == ["a 0", "a 1", "a 2", "b 0", "b 1", "b 2"]
    for e in entries:
        wav, rate = sf.read(e.audio)
        assert rate == 16000 and e.audio.endswith(".flac") and Path(e.audio).parent == moved
        assert len(wav) == 16000 and e.extra["packed_from"].endswith(".wav")


def test_pack_drops_the_transcript_of_a_cut_clip(tmp_path):
    a = tone_manifest(tmp_path, "a", 16000, 2, 440.0)  # one second each
    pack([(a, 1.0)], tmp_path / "cut", rate=16000, max_mb=10, max_seconds=0.5, seed=0)
    pack([(a, 1.0)], tmp_path / "whole", rate=16000, max_mb=10, max_seconds=1.0, seed=0)
    cut, whole = read_manifest(tmp_path / "cut" / "manifest.jsonl"), read_manifest(tmp_path / "whole" / "manifest.jsonl")
    assert [e.text for e in cut] == [None, None] and all(e.duration == 0.5 for e in cut)
    assert sorted(e.text for e in whole) == ["a 0", "a 1"]


def test_pack_stops_at_the_size_budget_and_favours_weight(tmp_path):
    a = tone_manifest(tmp_path, "a", 16000, 20, 440.0)
    b = tone_manifest(tmp_path, "b", 16000, 20, 880.0)
    one_clip = 1.0 * 16000 * 2 / 2**20  # a second of 16-bit PCM: FLAC of a tone is well under it
    stats = pack([(a, 50.0), (b, 1.0)], tmp_path / "packed", rate=16000, max_mb=6 * one_clip, max_seconds=None, seed=0)
    entries = read_manifest(tmp_path / "packed" / "manifest.jsonl")
    assert stats["mb"] <= 6 * one_clip and 6 <= len(entries) < 40
    speakers = [e.speaker for e in entries]
    assert speakers.count("a") > speakers.count("b")


@pytest.mark.skipif(bool(opus_encoder_missing()), reason="needs ffmpeg with libopus")
def test_pack_as_opus_is_smaller_and_reads_back_at_the_rate(tmp_path):
    rng = np.random.default_rng(0)
    rate = 16000
    path = tmp_path / "noise.wav"
    sf.write(path, 0.1 * rng.standard_normal(3 * rate), rate, subtype="PCM_16")
    write_manifest([ManifestEntry(audio=str(path), text=None, speaker="n", sample_rate=rate, duration=3.0)], tmp_path / "m.jsonl")
    assert main(["--manifest", str(tmp_path / "m.jsonl"), "--out", str(tmp_path / "flac")]) == 0
    assert main(["--manifest", str(tmp_path / "m.jsonl"), "--out", str(tmp_path / "opus"), "--opus-kbps", "16"]) == 0
    line = json.loads((tmp_path / "opus" / "manifest.jsonl").read_text())
    assert line["audio"] == "000000.ogg"
    wav, got_rate = sf.read(tmp_path / "opus" / "000000.ogg")
    assert got_rate == rate and abs(len(wav) - 3 * rate) < rate // 50
    flac_size = (tmp_path / "flac" / "000000.flac").stat().st_size
    assert (tmp_path / "opus" / "000000.ogg").stat().st_size < flac_size / 4
