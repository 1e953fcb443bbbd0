"""The tts task end to end: tiny corpus -> catcodec tokenize (tiny codec) -> shared trainer -> saved model."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
import torch

from catcodec import CATConfig, CATModel
from catcodec.tokenize import tokenize_manifest
from training.config import OptimizerConfig, ScheduleConfig, TrainConfig
from training.task import Models, get_task
from training.trainer import Trainer
from tts.modeling_tts import CATTTSModel

TINY_CODEC = dict(sampling_rate=16000, patch_size=40, stage_dims=[32, 32, 32, 48], stage_layers=[1, 1, 1, 1],
                  stage_heads=[2, 2, 2, 2], stage_output_dims=[16, 16, 24, 32], quantizer_dim=32, num_quantizers=4,
                  codebook_size=64)


def test_tts_task_trains_on_tokenized_manifest(tmp_path):
    torch.set_num_threads(1)
    torch.manual_seed(0)
    codec = CATModel(CATConfig(**TINY_CODEC)).eval()
    rng = np.random.default_rng(0)
    rows = []
    for i in range(8):
        path = tmp_path / f"u{i}.wav"
        sf.write(path, (0.1 * rng.standard_normal(int((0.3 + 0.05 * i) * 16000))).astype(np.float32), 16000)
        text = ["hello", "good day", "one two three", "", "café", "yes", "no thanks", "see you"][i]
        rows.append({"audio": path.name, "text": text or None, "speaker": "a", "sample_rate": 16000, "duration": 0.3})
    manifest = tmp_path / "m.jsonl"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    report = tokenize_manifest(codec, manifest, num_quantizers=4, progress=False)
    assert report.written == 8

    config = TrainConfig(
        task_name="tts", output_dir=str(tmp_path / "run"), max_steps=3, batch_size=3, log_every=1, val_every=3,
        val_batches=1, checkpoint_every=0, progress=False,
        optimizers={"model": OptimizerConfig(lr=1e-3)}, schedule=ScheduleConfig(warmup_steps=1),
        task={"model": {"num_quantizers": 4, "codebook_size": 64, "hidden_size": 32, "num_layers": 1, "num_heads": 2,
                        "intermediate_size": 64, "depth_hidden_size": 32, "depth_num_layers": 1, "depth_num_heads": 2,
                        "depth_intermediate_size": 64, "max_positions": 128, "guided_attention_weight": 1.0},
              "train_manifests": [str(report.manifest)], "val_manifests": [str(report.manifest)]},
    )
    trainer = Trainer(config, get_task("tts")(config))
    assert len(trainer.train_set) == 6  # the empty transcript and the unsupported 'café' are left out
    assert trainer.train_set.skipped == 2
    last = trainer.fit()
    assert np.isfinite(last["loss_model"]) and np.isfinite(last["val_loss"])
    assert 0.0 < last["attention_penalty"] < 1.0  # guided attention: logged in training ...
    assert 0.0 < last["val_attention_penalty"] < 1.0  # ... and measured at validation
    assert np.isfinite(last["val_text_gain"])  # with the batch's transcripts swapped round
    assert np.isfinite(last["val_word_order_gain"])  # with each transcript's words reversed
    saved = CATTTSModel.from_pretrained(tmp_path / "run" / "model")
    assert saved.config.num_quantizers == 4
    assert saved.config.codec_weights_id == codec.codes_fingerprint() != ""  # which codec made the training codes


def _codes_corpus(folder, clips, weights_id: str = "0" * 16, name: str = "m"):
    """clips: (text, speaker, frames) -> a codes manifest with random 2-codebook codes."""
    from catcodec.codes_file import CodesFile, write_codes

    rng = np.random.default_rng(0)
    rows = []
    for i, (text, speaker, frames) in enumerate(clips):
        codes = rng.integers(0, 64, (2, frames)).astype(np.int16)
        write_codes(folder / f"{name}{i}.npz", CodesFile(codes, frames * 1280, 16000, 2, "synthetic", "0" * 16,
                                                       weights_id=weights_id))
        rows.append({"audio": f"c{i}.wav", "text": text, "speaker": speaker, "codes": f"{name}{i}.npz", "num_frames": frames})
    manifest = folder / f"{name}.codes.jsonl"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return manifest


def test_same_speaker_pairs_join_text_and_frames(tmp_path):
    from tts.text import CharTokenizer
    from tts.training_task import CodesTextDataset

    clips = [("one", "a", 5), ("two", "a", 6), ("three", "a", 7), ("four", "b", 8), ("five", "b", 9), ("six", None, 4),
             ("long one", "c", 20), ("long two", "c", 20)]
    manifest = _codes_corpus(tmp_path, clips)
    data = CodesTextDataset([manifest], num_quantizers=2, max_frames=30)
    alone = [data[i] for i in range(len(data))]
    assert data.pair_same_speaker(1.0, max_frames=30, seed=0) == 5  # the speakerless clip and the too-long pairs stay alone
    tok = CharTokenizer()
    for i, j in enumerate(data.partners):
        if j is None:
            assert clips[i][1] in (None, "c") and torch.equal(data[i]["codes"], alone[i]["codes"])
            continue
        assert j != i and clips[j][1] == clips[i][1]
        item = data[i]
        assert tok.decode(item["text"].tolist()) == f"{clips[i][0]} {clips[j][0]}"
        assert item["text"][0] == tok.BOS and item["text"][-1] == tok.EOS and (item["text"] == tok.EOS).sum() == 1
        assert torch.equal(item["codes"], torch.cat([alone[i]["codes"], alone[j]["codes"]], dim=1))
        assert data.frames[i] == item["codes"].shape[1] == clips[i][2] + clips[j][2]
    again = CodesTextDataset([manifest], num_quantizers=2, max_frames=30)
    again.pair_same_speaker(1.0, max_frames=30, seed=0)
    assert again.partners == data.partners  # drawn from the seed: items depend on their index only


def test_pairs_without_the_first_clips_text_look_like_an_audio_only_prompt(tmp_path):
    from tts.text import CharTokenizer
    from tts.training_task import CodesTextDataset, collate_tts

    clips = [("one", "a", 5), ("two", "a", 6), ("three", "a", 7), ("four", "b", 8), ("five", "b", 9), ("six", None, 4)]
    manifest = _codes_corpus(tmp_path, clips)
    data = CodesTextDataset([manifest], num_quantizers=2, max_frames=30)
    alone = [data[i] for i in range(len(data))]
    assert data.pair_same_speaker(1.0, max_frames=30, seed=0, prompt_text_dropout=1.0) == 5
    tok = CharTokenizer()
    for i, j in enumerate(data.partners):
        item = data[i]
        if j is None:
            assert "text_offset" not in item and not data.audio_only_prompt[i]
            continue
        assert data.audio_only_prompt[i]
        assert tok.decode(item["text"].tolist()) == clips[j][0]  # the second clip's text alone
        assert item["text_offset"] == clips[i][2]  # placed after the first clip's frames
        assert torch.equal(item["codes"], torch.cat([alone[i]["codes"], alone[j]["codes"]], dim=1))
    batch = collate_tts([data[5], data[0]])
    assert batch["text_offsets"].tolist() == [0, clips[0][2]]
    assert "text_offsets" not in collate_tts([alone[0], alone[1]])  # what ASR batches look like: unchanged
    half = CodesTextDataset([manifest], num_quantizers=2, max_frames=30)
    half.pair_same_speaker(1.0, max_frames=30, seed=0, prompt_text_dropout=0.5)
    assert half.partners == data.partners  # the dropout draws do not move the pairing draws
    none = CodesTextDataset([manifest], num_quantizers=2, max_frames=30)
    none.pair_same_speaker(1.0, max_frames=30, seed=0)
    assert not any(none.audio_only_prompt)


def test_weighted_codes_manifests_repeat_or_thin_their_lines(tmp_path):
    from tts.text import CharTokenizer
    from tts.training_task import CodesTextDataset

    clips = [(w, "a", 5 + i) for i, w in enumerate(["one", "two", "three", "four"])]
    a = _codes_corpus(tmp_path / "a", clips)
    b = _codes_corpus(tmp_path / "b", [("five", "b", 9), ("six", "b", 10)])
    tok = CharTokenizer()

    def texts(data):
        return [tok.decode(data[i]["text"].tolist()) for i in range(len(data))]

    plain = CodesTextDataset([a, b], num_quantizers=2, max_frames=30)
    assert texts(plain) == ["one", "two", "three", "four", "five", "six"]
    twice_b = CodesTextDataset([a, [b, 2]], num_quantizers=2, max_frames=30)
    assert texts(twice_b) == ["one", "two", "three", "four", "five", "six", "five", "six"]
    assert twice_b.frames == [5, 6, 7, 8, 9, 10, 9, 10] and twice_b.speakers[-1] == "b"
    half_a = CodesTextDataset([(a, 0.5), b], num_quantizers=2, max_frames=30, seed=3)
    kept = texts(half_a)[:2]
    assert len(half_a) == 4 and set(kept) < {"one", "two", "three", "four"} and len(set(kept)) == 2
    assert texts(CodesTextDataset([(a, 0.5), b], num_quantizers=2, max_frames=30, seed=3))[:2] == kept  # fixed by the seed
    assert texts(CodesTextDataset([(a, 1.5)], num_quantizers=2, max_frames=30)).count("one") in (1, 2)
    assert len(CodesTextDataset([(a, 1.5)], num_quantizers=2, max_frames=30)) == 6
    with pytest.raises(ValueError, match="must be a finite number >= 0"):
        CodesTextDataset([(a, -1)], num_quantizers=2, max_frames=30)


def test_codes_of_different_codec_weights_are_refused(tmp_path):
    from tts.training_task import CodesTextDataset, record_codec_weights, same_codec_weights

    a = _codes_corpus(tmp_path, [("one", "a", 5), ("two", "a", 6)], weights_id="a" * 16, name="a")
    b = _codes_corpus(tmp_path, [("three", "b", 5)], weights_id="b" * 16, name="b")
    unknown = _codes_corpus(tmp_path, [("four", "c", 5)], weights_id="", name="u")  # version-1 files record none
    assert CodesTextDataset([a, unknown], num_quantizers=2, max_frames=30).codec_weights_id == "a" * 16
    with pytest.raises(ValueError, match=r"different codec weights .*aaaa.*bbbb.*tokenize them again"):
        CodesTextDataset([a, b], num_quantizers=2, max_frames=30)
    train = CodesTextDataset([a], num_quantizers=2, max_frames=30)
    val = CodesTextDataset([b], num_quantizers=2, max_frames=30)
    config = type("Config", (), {"codec_weights_id": ""})()
    with pytest.raises(ValueError, match=r"train_manifests: a+; val_manifests: b+"):
        record_codec_weights(config, train, val)
    record_codec_weights(config, train, None)
    assert config.codec_weights_id == "a" * 16
    assert same_codec_weights({"x": "", "y": ""}) == ""


def test_guided_attention_stops_after_its_steps(tmp_path):
    manifest = _codes_corpus(tmp_path, [("hello there", "a", 6), ("good day", "b", 5)])
    config = TrainConfig(
        task_name="tts", output_dir=str(tmp_path / "run"), max_steps=1, batch_size=2, progress=False,
        task={"model": {"num_quantizers": 2, "codebook_size": 64, "hidden_size": 32, "num_layers": 1, "num_heads": 2,
                        "intermediate_size": 64, "depth_hidden_size": 32, "depth_num_layers": 1, "depth_num_heads": 2,
                        "depth_intermediate_size": 64, "max_positions": 64, "guided_attention_weight": 1.0},
              "train_manifests": [str(manifest)], "guided_attention_steps": 10},
    )
    task = get_task("tts")(config)
    built = task.build_models()
    models = Models(built, built)
    train, _ = task.build_datasets()
    batch = task.collate([train[0], train[1]])
    models.raw("model").train()
    assert 0.0 < task.training_step(models, batch, step=9).logs["attention_penalty"] < 1.0
    assert "attention_penalty" not in task.training_step(models, batch, step=10).logs


def test_init_from_starts_from_a_saved_model_of_the_same_codes_and_text(tmp_path):
    """`task.init_from` copies a saved CAT-TTS into a fresh run (new optimizer and schedule) and refuses one that
    learnt the codes of other codec weights or reads another text front-end."""
    manifest = _codes_corpus(tmp_path, [("hello there", "a", 6), ("good day", "b", 5)])  # codec weights "0" * 16
    model_cfg = {"num_quantizers": 2, "codebook_size": 64, "hidden_size": 32, "num_layers": 1, "num_heads": 2,
                 "intermediate_size": 64, "depth_hidden_size": 32, "depth_num_layers": 1, "depth_num_heads": 2,
                 "depth_intermediate_size": 64, "max_positions": 64}

    def task_for(**task):
        return get_task("tts")(TrainConfig(task_name="tts", output_dir=str(tmp_path / "run"), max_steps=1, batch_size=2,
                                           progress=False, task={"model": model_cfg, "train_manifests": [str(manifest)], **task}))

    torch.manual_seed(1)
    saved = task_for().build_models()["model"]
    saved.config.codec_weights_id = "0" * 16
    saved.save_pretrained(tmp_path / "saved")
    torch.manual_seed(2)
    task = task_for(init_from=str(tmp_path / "saved"))
    model = task.build_models()["model"]
    source = saved.state_dict()
    assert all(torch.equal(tensor, source[name]) for name, tensor in model.state_dict().items())
    task.build_datasets()  # same codes: accepted

    saved.config.codec_weights_id = "1" * 16
    saved.save_pretrained(tmp_path / "other_codec")
    task = task_for(init_from=str(tmp_path / "other_codec"))
    task.build_models()
    with pytest.raises(ValueError, match="codec weights 1111111111111111"):
        task.build_datasets()
    with pytest.raises(ValueError, match="reads characters"):
        get_task("tts")(TrainConfig(task_name="tts", output_dir=str(tmp_path / "run"), max_steps=1, progress=False,
                                    task={"model": {**model_cfg, "text_frontend": "phonemes"},
                                          "train_manifests": [str(manifest)], "init_from": str(tmp_path / "saved")})).build_models()
