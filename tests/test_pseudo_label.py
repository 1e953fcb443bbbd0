"""Pseudo-labels (training.data.pseudo_label): which lines are read, what a labelled line carries, the
word floor, resuming, and the CLI end to end with a stand-in recogniser."""

import json

import numpy as np
import pytest
import soundfile as sf

from training.data import pseudo_label as pl
from training.data.manifest import ManifestEntry, read_manifest, write_manifest

RATE = 16000


def _entry(name: str, text: str | None, source: str = "libri") -> ManifestEntry:
    return ManifestEntry(f"/audio/{name}.flac", text, f"spk_{name}", RATE, 2.0, {"source": source})


def test_only_untranscribed_lines_of_the_named_sources_are_read():
    entries = [_entry("a", None), _entry("b", "has text"), _entry("c", None, "other"), _entry("d", "")]
    assert [e.audio for e in pl.unlabelled(entries)] == ["/audio/a.flac", "/audio/c.flac", "/audio/d.flac"]
    assert [e.audio for e in pl.unlabelled(entries, ["libri"])] == ["/audio/a.flac", "/audio/d.flac"]


def test_labels_are_marked_and_short_readings_left_out():
    words = {"/audio/a.flac": "  the cat   sat down ", "/audio/b.flac": "uh huh", "/audio/c.flac": ""}
    out = pl.pseudo_label([_entry(n, None) for n in "abc"], words.__getitem__, min_words=3)
    assert len(out) == 1
    assert out[0].text == "the cat sat down"  # whitespace collapsed
    assert out[0].extra == {"source": "libri", "text_source": "pocketsphinx"}  # never mistaken for a human label
    assert (out[0].speaker, out[0].duration) == ("spk_a", 2.0)
    with pytest.raises(ValueError, match="min_words must be at least 1"):
        pl.pseudo_label([], words.__getitem__, min_words=0)


def test_clips_labelled_before_are_not_read_again():
    before = ManifestEntry("/audio/a.flac", "kept as it was", "spk_a", RATE, 2.0, {"text_source": "pocketsphinx"})
    read = []

    def recognise(path: str) -> str:
        read.append(path)
        return "one two three"

    out = pl.pseudo_label([_entry("a", None), _entry("b", None)], recognise, done={before.audio: before})
    assert read == ["/audio/b.flac"]
    assert [e.text for e in out] == ["kept as it was", "one two three"]


def test_cli_writes_a_labelled_manifest_and_refuses_one_with_nothing_to_read(tmp_path, monkeypatch, capsys):
    for name in ("a", "b"):
        sf.write(tmp_path / f"{name}.flac", np.zeros(RATE, dtype=np.float32), RATE)
    write_manifest([ManifestEntry(str(tmp_path / "a.flac"), None, "s1", RATE, 1.0, {"source": "libri"}),
                    ManifestEntry(str(tmp_path / "b.flac"), "a human transcript", "s2", RATE, 1.0, {"source": "libri"})],
                   tmp_path / "train.jsonl")
    monkeypatch.setattr(pl, "pocketsphinx_reader", lambda: lambda path: f"words of {path.rsplit('/', 1)[-1]}")
    out = tmp_path / "pseudo" / "train.jsonl"
    pl.main([str(tmp_path / "train.jsonl"), "--sources", "libri", "--out", str(out)])
    assert "wrote 1 of 1 clips" in capsys.readouterr().out
    (line,) = [json.loads(s) for s in out.read_text().splitlines()]
    assert (line["text"], line["text_source"], line["speaker"]) == ("words of a.flac", "pocketsphinx", "s1")
    assert read_manifest(out)[0].audio == str(tmp_path / "a.flac")

    with pytest.raises(SystemExit):
        pl.main([str(tmp_path / "train.jsonl"), "--sources", "nowhere", "--out", str(out)])
    assert "has no line without a transcript from nowhere" in capsys.readouterr().err


def test_an_interrupted_cli_run_keeps_what_it_read_and_resumes(tmp_path, monkeypatch):
    entries = []
    for i in range(pl.SAVE_EVERY + 5):
        sf.write(tmp_path / f"c{i}.flac", np.zeros(RATE // 10, dtype=np.float32), RATE)
        entries.append(ManifestEntry(str(tmp_path / f"c{i}.flac"), None, f"s{i}", RATE, 0.1, {}))
    write_manifest(entries, tmp_path / "train.jsonl")
    out, read = tmp_path / "pseudo.jsonl", []

    def flaky(path: str) -> str:
        if len(read) == pl.SAVE_EVERY + 2:
            raise KeyboardInterrupt  # the user stops it in the second chunk
        read.append(path)
        return "one two three"

    monkeypatch.setattr(pl, "pocketsphinx_reader", lambda: flaky)
    with pytest.raises(KeyboardInterrupt):
        pl.main([str(tmp_path / "train.jsonl"), "--out", str(out)])
    assert len(read_manifest(out)) == pl.SAVE_EVERY  # the first chunk was saved

    read.clear()
    monkeypatch.setattr(pl, "pocketsphinx_reader", lambda: lambda path: read.append(path) or "four five six")
    pl.main([str(tmp_path / "train.jsonl"), "--out", str(out)])
    assert len(read) == 5  # only the clips the first run did not save
    texts = [e.text for e in read_manifest(out)]
    assert texts == ["one two three"] * pl.SAVE_EVERY + ["four five six"] * 5


def test_the_pocketsphinx_reader_leaves_an_unreadable_clip_out_with_a_warning(tmp_path, capsys):
    pytest.importorskip("pocketsphinx")
    (tmp_path / "broken.flac").write_bytes(b"not audio at all")
    sf.write(tmp_path / "silence.flac", np.zeros(RATE, dtype=np.float32), RATE)
    read = pl.pocketsphinx_reader()
    assert read(str(tmp_path / "broken.flac")) == ""
    err = capsys.readouterr().err
    assert "broken.flac" in err and "left out" in err
    assert len(read(str(tmp_path / "silence.flac")).split()) < 3  # silence: nothing worth a label


def test_cli_refuses_a_word_floor_below_one(tmp_path, capsys):
    with pytest.raises(SystemExit):
        pl.main([str(tmp_path / "any.jsonl"), "--out", str(tmp_path / "o.jsonl"), "--min-words", "0"])
    assert "--min-words must be at least 1, got 0" in capsys.readouterr().err
