"""Paired WER comparison (catcodec.evaluation.paired) on transcripts with known error counts, and the
benchmark script that reads bench_asr JSON files (benchmarks/compare_asr_runs.py)."""

import importlib.util
import json
from pathlib import Path

import pytest

from catcodec.evaluation.paired import paired_wer

REFS = ["the cat sat", "a dog ran off", "blue sky", "one two three four"]  # 13 words


def test_identical_transcripts_differ_by_nothing():
    p = paired_wer(REFS, REFS, REFS)
    assert (p.wer_a, p.wer_b, p.difference, p.low, p.high) == (0.0, 0.0, 0.0, 0.0, 0.0)
    assert (p.utterances, p.b_better, p.b_worse) == (4, 0, 0)


def test_known_errors_give_the_corpus_wers_and_an_interval_around_their_difference():
    a = ["the bat sat", "a dog ran", "blue", "one two three four"]  # 1 sub, 1 del, 1 del, 0: 3 errors
    b = ["the cat sat", "a dog ran off", "blue sky", "one two tree for"]  # 2 subs in the last only
    p = paired_wer(REFS, a, b, resamples=500, seed=1)
    assert p.wer_a == pytest.approx(3 / 13) and p.wer_b == pytest.approx(2 / 13)
    assert p.difference == pytest.approx(-1 / 13)
    assert p.low <= p.difference <= p.high and p.low < 0 < p.high  # three wins, one loss: not settled
    assert (p.b_better, p.b_worse) == (3, 1)
    assert paired_wer(REFS, a, b, resamples=500, seed=1) == p  # seeded


def test_a_uniform_gain_has_an_interval_that_excludes_zero():
    refs = [f"word{i} other{i}" for i in range(40)]
    a = [f"wrong{i} other{i}" for i in range(40)]  # one error in every utterance
    p = paired_wer(refs, a, refs)
    assert p.difference == pytest.approx(-0.5) and p.high == pytest.approx(-0.5) and p.b_better == 40


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="need one each"):
        paired_wer(REFS, REFS[:3], REFS)
    with pytest.raises(ValueError, match="no reference has any word"):
        paired_wer(["", "..."], ["a", "b"], ["a", "b"])
    with pytest.raises(ValueError, match="resamples must be at least 1"):
        paired_wer(REFS, REFS, REFS, resamples=0)


def _script():
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "compare_asr_runs.py"
    spec = importlib.util.spec_from_file_location("compare_asr_runs", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _bench_json(path: Path, hyps: list[str], refs: list[str] = REFS) -> Path:
    rows = [{"speaker": f"s{i % 2}", "reference": r, "cat_asr_q8_beam4_ctc0.3": h, "pocketsphinx": ""}
            for i, (r, h) in enumerate(zip(refs, hyps))]
    path.write_text(json.dumps({"model": "m", "synthetic": {"transcripts": rows}}))
    return path


def test_the_script_pools_samples_and_refuses_files_of_different_utterances(tmp_path, capsys):
    compare = _script()
    wrong = ["x y z", "x y z w", "x y", "x y z w"]  # every word wrong
    base = [_bench_json(tmp_path / f"base{i}.json", wrong) for i in (1, 2)]
    new = [_bench_json(tmp_path / f"new{i}.json", REFS) for i in (1, 2)]
    compare.main(["--base", *map(str, base), "--new", *map(str, new)])
    out = capsys.readouterr().out
    assert "synthetic: 8 utterances   WER base 100.0 %   new 0.0 %   new - base -100.0 points" in out
    assert "new better on 8, worse on 0" in out and "real" not in out

    other = _bench_json(tmp_path / "other.json", REFS, refs=["an other sample"] * 4)
    with pytest.raises(SystemExit, match="hold different synthetic utterances"):
        compare.main(["--base", str(base[0]), "--new", str(other)])
    with pytest.raises(SystemExit):
        compare.main(["--base", str(base[0]), str(base[1]), "--new", str(new[0])])
    assert "give one of each per sample" in capsys.readouterr().err
