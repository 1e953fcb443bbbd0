"""Speed perturbation (training.data.perturb) on tiny generated tones: duration, pitch, speakers, resume."""

import json
import os

import numpy as np
import pytest
import soundfile as sf

from training.data.manifest import ManifestEntry, read_manifest, write_manifest
from training.data.perturb import change_speed, main, perturb_manifest, speaker_name

RATE = 16000


def _peak_hz(wav: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(wav * np.hanning(wav.size)))
    return float(np.argmax(spectrum) * RATE / wav.size)


def test_faster_is_shorter_and_higher_by_the_factor():
    t = np.arange(RATE) / RATE
    tone = 0.5 * np.sin(2 * np.pi * 400 * t).astype(np.float32)
    fast, slow = change_speed(tone, 1.1, RATE), change_speed(tone, 0.9, RATE)
    assert abs(fast.size - RATE / 1.1) <= 2 and abs(slow.size - RATE / 0.9) <= 2
    assert _peak_hz(fast) == pytest.approx(440, abs=3) and _peak_hz(slow) == pytest.approx(360, abs=3)
    assert np.max(np.abs(fast)) <= 0.95


@pytest.mark.parametrize("factor", [1.0, 0.3, 2.5])
def test_unusable_factors_are_refused(factor):
    with pytest.raises(ValueError, match="speed factor"):
        change_speed(np.ones(100, np.float32), factor, RATE)


def test_empty_or_multichannel_audio_is_refused():
    with pytest.raises(ValueError, match="non-empty mono"):
        change_speed(np.zeros(0, np.float32), 1.1, RATE)
    with pytest.raises(ValueError, match="non-empty mono"):
        change_speed(np.zeros((2, 100), np.float32), 1.1, RATE)


def _manifest(tmp_path):
    entries = []
    for i, spk in enumerate(["a", "b"]):
        path = tmp_path / "src" / f"{spk}.flac"
        path.parent.mkdir(exist_ok=True)
        sf.write(str(path), 0.3 * np.sin(np.arange(8000) * 0.1 * (i + 1)), RATE, subtype="PCM_16")
        entries.append(ManifestEntry(str(path), f"text {spk}", spk, RATE, 0.5, {"tool": "t"}))
    write_manifest(entries, tmp_path / "src" / "train.jsonl")
    return tmp_path / "src" / "train.jsonl"


def test_every_clip_at_every_factor_becomes_a_new_speaker(tmp_path):
    out = tmp_path / "out"
    entries = perturb_manifest(_manifest(tmp_path), [0.9, 1.1], out)
    assert [e.speaker for e in entries] == ["a~speed0.9", "b~speed0.9", "a~speed1.1", "b~speed1.1"]
    assert [e.text for e in entries] == ["text a", "text b"] * 2
    assert [e.duration for e in entries] == pytest.approx([0.5 / 0.9] * 2 + [0.5 / 1.1] * 2, abs=2e-4)
    assert all(e.extra["tool"] == "t" and e.extra["speed"] in (0.9, 1.1) for e in entries)
    assert speaker_name("flite:slt:d1", 1.1) == "flite:slt:d1~speed1.1"
    # a second run keeps the files (resume) and gives the same entries
    mtimes = [os.stat(e.audio).st_mtime_ns for e in entries]
    again = perturb_manifest(_manifest(tmp_path), [0.9, 1.1], out)
    assert [e.audio for e in again] == [e.audio for e in entries]
    assert [os.stat(e.audio).st_mtime_ns for e in again] == mtimes


def test_cli_writes_a_manifest_named_as_the_source_and_reports_errors(tmp_path, capsys):
    src = _manifest(tmp_path)
    main([str(src), "--factors", "1.2", "--out", str(tmp_path / "out")])
    written = read_manifest(tmp_path / "out" / "train.jsonl")
    assert len(written) == 2 and all(sf.info(e.audio).samplerate == RATE for e in written)
    lines = (tmp_path / "out" / "train.jsonl").read_text().splitlines()
    assert not json.loads(lines[0])["audio"].startswith("/")  # stored relative to the manifest
    assert "2 clips" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="speed factor 1 must lie"):
        main([str(src), "--factors", "1.0", "--out", str(tmp_path / "bad")])


def test_alternate_takes_each_clip_once_at_the_factors_in_turn(tmp_path):
    entries = perturb_manifest(_manifest(tmp_path), [0.9, 1.1], tmp_path / "out", alternate=True)
    assert [e.speaker for e in entries] == ["a~speed0.9", "b~speed1.1"]
    assert [e.duration for e in entries] == pytest.approx([0.5 / 0.9, 0.5 / 1.1], abs=2e-4)
