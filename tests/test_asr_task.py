"""The asr task end to end: codes manifests (as `catcodec tokenize` writes them) -> shared trainer -> a tiny
CAT-ASR that has learnt four utterances and transcribes them back, greedy and with beam search."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from asr.decoding import transcribe
from asr.metrics import (EditCounts, character_error_rate, edit_counts, edit_distance, error_breakdown, error_rate,
                         word_error_rate)
from asr.modeling_asr import CATASRModel
from catcodec.codes_file import CodesFile, read_codes, write_codes
from training.config import load_config
from training.task import get_task
from training.trainer import Trainer

pytestmark = pytest.mark.usefixtures("single_thread")

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
TINY = CONFIGS / "asr_tiny_ci.yaml"
TEXTS = ["Hello there.", "good day", "one two three", "See you soon!"]


def codes_manifest(folder, texts, seed=0):
    """Random codes [4, 10..19] per transcript, written as codes files with a `*.codes.jsonl` manifest."""
    rng = np.random.default_rng(seed)
    rows = []
    for i, text in enumerate(texts):
        frames = 10 + 3 * i
        codes = rng.integers(0, 64, (4, frames)).astype(np.int16)
        write_codes(folder / f"u{i}.npz", CodesFile(codes, frames * 1280, 16000, 4, "synthetic", "0" * 16))
        rows.append({"audio": f"u{i}.wav", "text": text, "speaker": "a", "codes": f"u{i}.npz", "num_frames": frames})
    manifest = folder / "train.codes.jsonl"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return manifest


def test_asr_task_overfits_and_transcribes(tmp_path):
    manifest = codes_manifest(tmp_path, TEXTS + ["", "caf\u00e9"])  # the last two are left out
    config = load_config(TINY, [f"output_dir={tmp_path / 'run'}",
                                                       f"task.train_manifests=[{manifest}]",
                                                       f"task.val_manifests=[{manifest}]"])
    trainer = Trainer(config, get_task("asr")(config))
    assert len(trainer.train_set) == 4 and trainer.train_set.skipped == 2
    last = trainer.fit()
    assert last["loss_model"] < 0.1
    assert last["val_cer"] <= 0.02 and last["val_wer"] <= 0.05
    report = (tmp_path / "run" / "samples" / f"step_{config.max_steps:08d}" / "transcripts.tsv").read_text()
    assert report.splitlines()[0] == "reference\thypothesis" and len(report.splitlines()) == 5

    model = CATASRModel.from_pretrained(tmp_path / "run" / "model").eval()
    codes = [torch.from_numpy(read_codes(tmp_path / f"u{i}.npz").codes.astype(np.int64)) for i in range(4)]
    references = ["hello there.", "good day", "one two three", "see you soon!"]  # normalised, as trained
    greedy = transcribe(model, codes)
    beam = transcribe(model, codes, beam=3)
    assert character_error_rate(references, greedy) <= 0.02
    assert character_error_rate(references, beam) <= 0.02
    assert sum(g == r for g, r in zip(greedy, references)) >= 3


def test_task_config_errors(tmp_path):
    config = load_config(TINY, ["task.bogus=1"])
    with pytest.raises(ValueError, match="unknown asr task key"):
        get_task("asr")(config)
    config = load_config(TINY, [f"output_dir={tmp_path}"])
    with pytest.raises(ValueError, match="catcodec tokenize"):
        get_task("asr")(config).build_datasets()


def test_recipes_build():
    config = load_config(CONFIGS / "asr_small_cpu.yaml")
    task = get_task("asr")(config)
    assert task.model_config.num_quantizers == 8 and task.model_config.text_vocab_size == 38
    assert set(config.optimizers) == {"model"}


def test_error_rates():
    assert edit_distance("kitten", "sitting") == 3
    assert edit_distance([], ["a"]) == 1 and edit_distance(["a"], []) == 1
    assert word_error_rate(["the cat sat"], ["the cat sat"]) == 0.0
    assert word_error_rate(["the cat sat", "on the mat"], ["the bat sat", "on mat"]) == pytest.approx(2 / 6)
    assert character_error_rate(["abcd"], ["abed"]) == pytest.approx(0.25)
    assert character_error_rate(["ab  cd"], ["ab cd"]) == 0.0  # spacing is normalised
    assert error_rate([""], [""], "word") == 0.0 and error_rate([""], ["x"], "word") == 1.0
    with pytest.raises(ValueError, match="unit"):
        error_rate(["a"], ["a"], "phone")
    with pytest.raises(ValueError, match="references for"):
        error_rate(["a"], [], "char")


def test_error_breakdown_kinds_sum_to_the_distance():
    assert edit_counts("kitten", "sitting") == EditCounts(2, 0, 1, 6)  # k->s, e->i, +g
    assert edit_counts(["a", "b"], []) == EditCounts(0, 2, 0, 2)
    assert edit_counts([], ["a"]) == EditCounts(0, 0, 1, 0)
    rng = random.Random(0)
    for _ in range(200):  # any alignment it reports costs exactly the edit distance
        r = [rng.choice("abc") for _ in range(rng.randint(0, 7))]
        h = [rng.choice("abc") for _ in range(rng.randint(0, 7))]
        assert edit_counts(r, h).errors == edit_distance(r, h)
    refs, hyps = ["the cat sat", "on the mat"], ["the bat sat down here", "on mat"]
    counts = error_breakdown(refs, hyps)
    assert counts == EditCounts(1, 1, 2, 6)
    assert sum(counts.rates().values()) == pytest.approx(word_error_rate(refs, hyps))
    assert counts.rates()["insertions"] == pytest.approx(2 / 6)
    assert error_breakdown(["ab"], ["abc"], "char") == EditCounts(0, 0, 1, 2)
    with pytest.raises(ValueError, match="references for"):
        error_breakdown(["a"], [])


def test_init_from_continues_a_saved_model(tmp_path):
    """`task.init_from` starts the run from a saved CAT-ASR (matching tensors copied, new ones fresh) and refuses
    one that learnt the codes of other codec weights."""
    manifest = codes_manifest(tmp_path, TEXTS)  # its codes files record codec weights "0" * 16
    overrides = [f"output_dir={tmp_path / 'run'}", f"task.train_manifests=[{manifest}]", "max_steps=0"]
    config = load_config(TINY, overrides)
    saved = get_task("asr")(config).build_models()["model"]
    saved.config.codec_weights_id = "0" * 16
    saved.save_pretrained(tmp_path / "saved")

    grown = load_config(TINY, overrides + [f"task.init_from={tmp_path / 'saved'}", "task.model.audio_encoder_layers=1"])
    model = get_task("asr")(grown).build_models()["model"]
    source = saved.state_dict()
    for name, tensor in model.state_dict().items():
        if name.startswith("audio_encoder."):
            assert name not in source  # the new encoder starts fresh
        else:
            assert torch.equal(tensor, source[name]), name

    saved.config.codec_weights_id = "1" * 16
    saved.save_pretrained(tmp_path / "other_codec")
    task = get_task("asr")(load_config(TINY, overrides + [f"task.init_from={tmp_path / 'other_codec'}"]))
    task.build_models()
    with pytest.raises(ValueError, match="codec weights 1111111111111111"):
        task.build_datasets()


def test_copy_matching_tensors_needs_a_match():
    from training.warm_start import copy_matching_tensors

    model = torch.nn.Linear(3, 2)
    assert copy_matching_tensors(model, {"weight": torch.ones(2, 3), "bias": torch.ones(7)}) == ["bias"]
    assert torch.equal(model.weight, torch.ones(2, 3))
    with pytest.raises(ValueError, match="no tensor matches"):
        copy_matching_tensors(model, {"other": torch.ones(2, 3)})
