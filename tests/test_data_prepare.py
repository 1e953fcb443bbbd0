"""`python -m training.data.prepare`: which steps each model needs, in what order, and that finished steps are
skipped (so an interrupted preparation resumes)."""

from __future__ import annotations

from pathlib import Path

import pytest

from training.data.prepare import Step, main, plan, run


def names(steps: list[Step]) -> list[str]:
    return [s.name for s in steps]


def test_plan_per_model(tmp_path: Path) -> None:
    shared, data = tmp_path / "shared", tmp_path / "data"
    every = names(plan(shared, data, tokenize=True))
    assert every.index("manifests") < every.index("sentences") < every.index("synth_tts") < every.index("synth_tts_speed")
    assert every[-9:] == [n for n in every if n.startswith("tokenize")]  # codes come after all the audio

    codec = names(plan(shared, data, only="codec", tokenize=True))
    assert codec == ["manifests", "fillets", "synth"]  # the codec trains on audio: nothing tokenized

    tts = names(plan(shared, data, only="tts", tokenize=True))
    assert "synth_fortunes" not in tts and "synth" not in tts
    assert {"tokenize synth_tts/train.jsonl", "tokenize manifests/train.jsonl"} <= set(tts)
    assert "tokenize synth_extra/train.jsonl" not in tts

    asr = names(plan(shared, data, only="asr"))
    assert asr == ["manifests", "sentences", "synth_tts", "synth_fortunes", "synth_extra", "synth_tts_speed",
                   "synth_tts_revoiced", "synth_fortunes_revoiced"]


def test_tokenize_step_writes_the_recipes_codes_manifest(tmp_path: Path) -> None:
    steps = {s.name: s for s in plan(tmp_path, tmp_path / "data", only="asr", tokenize=True, model="m", threads=1,
                                     num_quantizers=4)}
    step = steps["tokenize synth_extra/train.jsonl"]
    assert step.output == str(tmp_path / "data" / "synth_extra" / "train.codes.jsonl")
    assert step.module == "catcodec"
    assert step.args[:2] == ("tokenize", str(tmp_path / "data" / "synth_extra" / "train.jsonl"))
    assert list(step.args[2:]) == ["--threads", "1", "--num-quantizers", "4", "--model", "m"]


def test_run_skips_finished_steps_and_resumes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    (tmp_path / "touch_file.py").write_text("import sys, pathlib; pathlib.Path(sys.argv[1]).write_text('x')\n")
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    steps = [Step("a", "touch_file", (str(a),), str(a)), Step("b", "touch_file", (str(b),), str(b))]
    a.write_text("already there")
    assert run(steps, dry_run=True) == ["b"]
    assert not b.exists()  # a dry run runs nothing
    assert run(steps) == ["b"]
    assert b.read_text() == "x" and a.read_text() == "already there"
    assert run(steps) == []
    assert "[skip] b" in capsys.readouterr().out


def test_missing_programs_are_named_before_anything_runs(tmp_path: Path) -> None:
    out = tmp_path / "never.txt"
    steps = [Step("x", "json.tool", (), str(out), needs=("no-such-synthesizer-xyz",))]
    with pytest.raises(SystemExit, match="no-such-synthesizer-xyz.*apt-get install"):
        run(steps)
    assert run(steps, dry_run=True) == ["x"]  # a dry run still shows the plan


def test_main_refuses_a_missing_shared_folder(tmp_path: Path, capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--shared", str(tmp_path / "nowhere"), "--data", str(tmp_path / "data"), "--dry-run"])
    assert exc.value.code == 2
    assert "is not a folder" in capsys.readouterr().err
