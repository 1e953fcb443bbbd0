"""The sentence corpus (training.data.sentences) on tiny fake inputs, plus the festival voice definitions of
training.data.synthesize; needs neither ../shared nor fillets-ng nor festival."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from training.data import sentences as S
from training.data.synthesize import (EXTRA_VOICES, SENTENCES, VOICES, _festival, _flite, missing_festival_voices,
                                      select_voices)

LUA = '''
dialogId("vit-hs-klid1", "font_statue", "Citizens, please remain calm.")

dialogId("m-uvedomit", "font_small",
"You need to realize that the steel cylinder surrounding us")
dialogId("v-quote", "font_big", "He said \\"hello\\" to the ship\\u2019s cat.")
dialogId("v-empty", "font_big", "")
for i = 0, 29 do dialogId("key"..i, "", "") end
'''

HELD_TEXT = "THE HELD OUT SPEAKER READ THIS VERY SECRET SENTENCE"
LONG = ("AND THEN THE OLD MAN WALKED SLOWLY DOWN THE LONG ROAD TOWARDS THE VILLAGE WHERE HIS DAUGHTER LIVED "
        "BUT HE DID NOT KNOW THAT SHE HAD ALREADY LEFT FOR THE CITY EARLY THAT MORNING WITH HER HUSBAND")


def _fake_inputs(tmp_path: Path, dialog_lines: int = 80) -> tuple[Path, Path, Path]:
    """(shared folder, fillets script folder, val_speakers.txt) with one fake speech set and one level."""
    shared = tmp_path / "shared"
    (shared / "fake_libri").mkdir(parents=True)
    rows = [("100", LONG), ("100", "I THINK I'LL GO HOME NOW"), ("100", None), ("200", HELD_TEXT),
            ("300", HELD_TEXT.lower()), ("300", "zero")]
    with open(shared / "fake_libri" / "manifest.jsonl", "w", encoding="utf-8") as f:
        for n, (speaker, text) in enumerate(rows):
            f.write(json.dumps({"audio": f"{n}.flac", "text": text, "speaker": speaker,
                                "sample_rate": 16000, "duration": 1.0}) + "\n")
    (shared / "fake_libri" / "SOURCE.txt").write_text("License / provenance: CC BY 4.0 (fake)\n", encoding="utf-8")
    scripts = tmp_path / "script"
    (scripts / "level1").mkdir(parents=True)
    extra = "".join(f'dialogId("d{i}", "font_small", "This is dialog line {i} of the fake level.")\n'
                    for i in range(dialog_lines))
    (scripts / "level1" / "dialogs_en.lua").write_text(LUA + extra, encoding="utf-8")
    (scripts / "level1" / "dialogs_cs.lua").write_text('dialogId("x", "f", "Tohle je cesky radek textu.")\n',
                                                       encoding="utf-8")
    val = tmp_path / "val_speakers.txt"
    val.write_text("200\n", encoding="utf-8")
    return shared, scripts, val


def test_parse_dialogs_reads_spoken_strings_across_lines_and_escapes():
    lines = S.parse_dialogs(LUA)
    assert lines[:2] == ["Citizens, please remain calm.",
                         "You need to realize that the steel cylinder surrounding us"]
    assert lines[2].startswith('He said "hello" to the ship')
    assert len(lines) == 3  # the empty line and the generated key ids are not dialog


def test_fillets_lines_reads_only_english(tmp_path):
    _, scripts, _ = _fake_inputs(tmp_path, dialog_lines=2)
    lines = S.fillets_lines(scripts)
    assert "Citizens, please remain calm." in lines
    assert not any("cesky" in line for line in lines)


def test_sentence_case_and_punctuation_of_upper_case_transcripts():
    assert S.prepare("I THINK I'LL GO HOME NOW", recase=True) == ["I think I'll go home now."]
    assert S.prepare("Printing, in the only sense", recase=True) == ["Printing, in the only sense."]
    assert S.sentence_case("Mixed Case stays") == "Mixed Case stays"
    assert S.prepare("... so what if we cut one off?!") == ["So what if we cut one off?!"]  # no leading "..."
    assert S.prepare("- but not this, ") == ["But not this."]


def test_long_transcripts_split_at_natural_boundaries():
    pieces = S.prepare(LONG, recase=True)
    assert len(pieces) == 2 and all(len(S.words(p)) <= S.SPLIT_WORDS for p in pieces)
    assert pieces[1].startswith("But he did not know")  # cut before the conjunction, not mid-phrase
    assert " ".join(S.key(p) for p in pieces) == S.key(LONG)  # no word lost or repeated
    two = "One two three four five six seven eight nine ten eleven twelve. " * 2 + "Thirteen fourteen."
    assert all(p.endswith(".") for p in S.split_long(two, max_words=20))


def test_normalise_and_filter():
    assert S.normalise("\u201cIt\u2019s a caf\u00e9\u201d \u2014 she  said\u2026") == '"It\'s a cafe" - she said...'
    assert S.acceptable("Citizens, please remain calm.")
    assert not S.acceptable("Hello there.")  # two words
    assert not S.acceptable(" ".join(["word"] * 31) + ".")
    assert not S.acceptable("Copy it to C:\\WINDOWS now.")
    assert not S.acceptable("The ship docked at pier #5.")


def test_build_excludes_held_out_text_dedups_and_is_deterministic(tmp_path):
    shared, scripts, val = _fake_inputs(tmp_path)
    # the same line again in another case and with curly punctuation: a duplicate
    with open(scripts / "level1" / "dialogs_en.lua", "a", encoding="utf-8") as f:
        f.write('dialogId("dup", "font_small", "CITIZENS, PLEASE REMAIN CALM\u2026")\n')
    no_fortunes = tmp_path / "no_fortunes"
    S.build(shared, tmp_path / "a", val, scripts, fraction=0.05, min_test=5, fortunes=no_fortunes)
    S.build(shared, tmp_path / "b", val, scripts, fraction=0.05, min_test=5, fortunes=no_fortunes)
    for name in ("train.txt", "test.txt", "SOURCE.txt"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()

    train = (tmp_path / "a" / "train.txt").read_text(encoding="utf-8").splitlines()
    test = (tmp_path / "a" / "test.txt").read_text(encoding="utf-8").splitlines()
    everything = train + test
    keys = [S.key(s) for s in everything]
    assert len(keys) == len(set(keys))
    assert S.key(HELD_TEXT) not in keys  # said by a held-out speaker, so dropped for the train speaker too
    assert "I think I'll go home now." in train
    assert sum(1 for s in everything if "remain calm" in s) == 1
    assert len(test) >= 5 and set(test) <= set(S.fillets_lines(scripts)) | {"Citizens, please remain calm."}
    assert set(SENTENCES) - {"The small caf\u00e9 serves the best hot chocolate in town.",
                             "The lorry driver stopped for a rest at the roadside caf\u00e9."} <= set(train)
    info = (tmp_path / "a" / "SOURCE.txt").read_text(encoding="utf-8")
    assert "GPL-2" in info and "transcripts:fake_libri" in info and "CC BY 4.0 (fake)" in info


FORTUNE_FILE = """A fool and his money are soon partied.
%
The error of youth is to believe that intelligence is a substitute for experience.
\t\t-- Lyman Bryson
%
  Roses are red,
    Violets are blue.
%
Citizens, please remain calm.
%
"""


def test_parse_fortunes_joins_lines_and_drops_attributions():
    assert S.parse_fortunes(FORTUNE_FILE) == [
        "A fool and his money are soon partied.",
        "The error of youth is to believe that intelligence is a substitute for experience.",
        "Roses are red, Violets are blue.", "Citizens, please remain calm."]


def test_fortunes_go_to_their_own_file_and_leave_train_and_test_as_they_were(tmp_path):
    shared, scripts, val = _fake_inputs(tmp_path)
    fortunes = tmp_path / "fortunes"
    fortunes.mkdir()
    (fortunes / "wisdom").write_text(FORTUNE_FILE, encoding="utf-8")
    (fortunes / "art").write_text("Ascii art lines are never read aloud.\n%\n", encoding="utf-8")  # skipped
    (fortunes / "wisdom.dat").write_bytes(b"\x00\x02binary index")  # strfile index, not text
    S.build(shared, tmp_path / "without", val, scripts, fraction=0.05, min_test=5, fortunes=tmp_path / "none")
    S.build(shared, tmp_path / "with", val, scripts, fraction=0.05, min_test=5, fortunes=fortunes)
    for name in ("train.txt", "test.txt"):
        assert (tmp_path / "with" / name).read_bytes() == (tmp_path / "without" / name).read_bytes()
    extra = (tmp_path / "with" / "fortunes.txt").read_text(encoding="utf-8").splitlines()
    assert sorted(extra) == sorted(["A fool and his money are soon partied.",
                                    "The error of youth is to believe that intelligence is a substitute for "
                                    "experience.", "Roses are red, Violets are blue."])  # the dialog line is not
    assert "BSD" in (tmp_path / "with" / "SOURCE.txt").read_text(encoding="utf-8")


def test_split_is_stable_pinned_stay_in_train_and_test_is_topped_up():
    cands = [S.Candidate(f"Sentence number {i} is here.", "a") for i in range(200)]
    cands += [S.Candidate(f"Pinned sentence {i} is here.", "b", pinned=True) for i in range(50)]
    train, test = S.split(cands, fraction=0.05, min_test=20)
    train2, test2 = S.split(list(reversed(cands)), fraction=0.05, min_test=20)
    assert [c.text for c in test] == [c.text for c in test2] and [c.text for c in train] == [c.text for c in train2]
    assert len(test) == 20 and not any(c.pinned for c in test)
    assert len(train) + len(test) == len(cands)
    with pytest.raises(SystemExit):
        S.split(cands[:10], min_test=20)


def test_missing_val_speakers_file_is_a_clear_error(tmp_path):
    with pytest.raises(SystemExit, match="build_manifests"):
        S.read_val_speakers(tmp_path / "nope.txt")


def test_festival_voices_and_missing_voice_detection(tmp_path):
    hts = _festival("cmu_us_slt_arctic_hts", 1.25, val=True)
    assert hts.speaker == "festival:cmu_us_slt_arctic_hts:d1.25" and '"-r" 0.8' in hts.args[0]
    kal = _festival("kal_diphone", 0.95, 125)
    assert kal.variant == "d0.95f125" and "Duration_Stretch 0.95" in kal.args[0]
    (tmp_path / "english" / "kal_diphone").mkdir(parents=True)
    assert missing_festival_voices([hts, kal], root=tmp_path) == ["cmu_us_slt_arctic_hts"]


def test_voice_groups_select_training_or_held_out_voices():
    train, val = select_voices(["train"]), select_voices(["val"])
    assert train and val and not any(v.val for v in train) and all(v.val for v in val)
    assert len(train) + len(val) == len(select_voices(None))
    assert select_voices(["flite:slt:d1"])[0].speaker == "flite:slt:d1"
    with pytest.raises(SystemExit, match="unknown voices"):
        select_voices(["klingon"])


def test_extra_voices_are_training_only_and_never_a_held_out_voice():
    extra = select_voices(["extra"])
    assert extra == list(EXTRA_VOICES) and all(v.extra and not v.val and v.group == "extra" for v in extra)
    assert not set(extra) & set(select_voices(None))  # the default set (and so data/synth_tts) is unchanged
    speakers = [v.speaker for v in VOICES + EXTRA_VOICES]
    assert len(speakers) == len(set(speakers))  # every speaker id names one voice
    held_out = {v.voice for v in VOICES if v.val}
    for v in extra:  # no held-out voice name, accent or espeak variant comes back as a training voice
        assert v.voice not in held_out
        assert "scotland" not in v.voice and not v.voice.endswith("+f5") and v.voice != "awb", v.speaker
    assert select_voices(["train", "extra"]) == [v for v in VOICES if not v.val] + list(EXTRA_VOICES)


def test_flite_pitch_target_is_an_argument_and_part_of_the_speaker_id():
    slt = _flite("slt", 0.9, f0=200)
    assert slt.speaker == "flite:slt:d0.9f200"
    assert slt.args == ("--setf", "duration_stretch=0.9", "--setf", "int_f0_target_mean=200")
    assert _flite("rms", 1.1).args == ("--setf", "duration_stretch=1.1")
