"""The codec task through the shared trainer, on tiny audio made here; and the 2-process DDP run."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
import yaml

from catcodec import CATModel
from training.config import load_config
from training.task import get_task
from training.trainer import Trainer

TINY_RECIPE = Path(__file__).resolve().parents[1] / "configs" / "codec_tiny_ci.yaml"


def make_corpus(folder: Path, n: int = 12, seconds: float = 0.6) -> Path:
    """n short clips (chirps + noise, two speakers), same-length transcripts, and a manifest."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    lines = []
    for i in range(n):
        sr = 16000 if i % 3 else 22050  # some need resampling
        t = np.arange(int(seconds * sr)) / sr
        f0 = 150 + 20 * i
        wav = 0.3 * np.sin(2 * np.pi * (f0 + 200 * t) * t) + 0.02 * rng.standard_normal(t.size)
        path = folder / f"clip{i}.wav"
        sf.write(path, wav.astype(np.float32), sr)
        lines.append({"audio": path.name, "text": f"clip number {i:02d}", "speaker": f"s{i % 2}",
                      "sample_rate": sr, "duration": seconds})
    manifest = folder / "manifest.jsonl"
    manifest.write_text("".join(json.dumps(l) + "\n" for l in lines))
    return manifest


def tiny_recipe(tmp_path: Path, manifest: Path, model_overrides: dict | None = None, **overrides) -> Path:
    """configs/codec_tiny_ci.yaml pointed at `manifest`, writing into tmp_path; `model_overrides` are added to
    the recipe's own, `overrides` replace top-level fields."""
    recipe = yaml.safe_load(TINY_RECIPE.read_text())
    recipe["task"]["model_overrides"].update(model_overrides or {})
    recipe["output_dir"] = str(tmp_path / "run")
    recipe["task"]["train_manifests"] = [[str(manifest), 1.0]]
    recipe["task"]["val_manifests"] = [str(manifest)]
    recipe.update(overrides)
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    return make_corpus(tmp_path_factory.mktemp("corpus"))


def test_codec_task_trains_both_phases_and_exports(tmp_path, corpus):
    torch.set_num_threads(1)
    # the semantic head reads whole clips of its own stream (the 0.4 s reconstruction crops have no transcript)
    config = load_config(tiny_recipe(tmp_path, corpus), [f"task.semantic_manifests={json.dumps([str(corpus)])}",
                                                         f"task.semantic_val_manifests={json.dumps([str(corpus)])}"])
    trainer = Trainer(config, get_task("codec")(config))
    last = trainer.fit()
    lines = [json.loads(l) for l in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    train = [l for l in lines if l["split"] == "train"]
    assert [l["step"] for l in train] == [1, 2, 3, 4]
    # phase 1 (steps 0-1): no discriminator; phase 2 (from step 2): adversarial and feature losses
    assert "loss_discriminator" not in train[0] and "loss_discriminator" not in train[1]
    assert {"loss_discriminator", "adversarial", "feature"} <= set(train[2])
    assert all(np.isfinite(l["loss_generator"]) for l in train)
    assert train[0]["semantic"] > 0  # every clip has a transcript
    assert {"val_mel_q1", "val_mel_q4"} <= set(last)
    assert 0 < last["val_semantic"] < 20  # bytes of a 259-symbol vocabulary: ln 259 = 5.6 at chance
    samples = sorted(p.name for p in (tmp_path / "run" / "samples" / "step_00000002").iterdir())
    assert samples == ["0_original.wav", "0_q1.wav", "0_q4.wav"]
    # the exported codec loads with the codec API and matches the trained weights
    exported = CATModel.from_pretrained(tmp_path / "run" / "model")
    trained = trainer.raw_models["generator"].codec
    for (k, a), (_, b) in zip(exported.state_dict().items(), trained.state_dict().items()):
        assert torch.equal(a, b), k
    assert (tmp_path / "run" / "semantic_head.pt").is_file()


def test_semantic_loss_skips_cropped_items_without_its_own_stream(tmp_path, corpus):
    torch.set_num_threads(1)
    recipe = tiny_recipe(tmp_path, corpus, max_steps=1, val_every=0, checkpoint_every=0)
    for crop, expect_text in ((0.4, False), (1.0, True)):  # the clips are 0.6 s long
        config = load_config(recipe, [f"task.crop_seconds={crop}", f"output_dir={tmp_path / str(crop)}"])
        Trainer(config, get_task("codec")(config)).fit()
        line = json.loads((tmp_path / str(crop) / "metrics.jsonl").read_text().splitlines()[0])
        assert (line["semantic"] > 0) == expect_text, (crop, line["semantic"])


def test_semantic_warmup_keeps_the_heads_gradient_out_of_the_codec(make_model):
    from catcodec.semantic import SemanticHead, SemanticHeadConfig
    from catcodec.training_task import CodecGenerator
    from training.data import collate_audio

    codec = make_model(seed=3).train()
    head = SemanticHead(codec.config.stage_output_dims[-1], SemanticHeadConfig(hidden_size=16, num_layers=1, num_heads=2, intermediate_size=32))
    generator = CodecGenerator(codec, head)
    crops = torch.randn(2, 1, 3200) * 0.1
    whole = collate_audio([{"audio": torch.randn(n) * 0.1, "text": t, "speaker": "s", "path": "p"}
                           for n, t in ((4800, "one two"), (2400, "three"))])
    grads = {}
    for detach in (True, False):
        generator.zero_grad()
        loss = generator(crops, None, [None, None], semantic_batch=whole, detach_semantic=detach).semantic_loss
        assert loss > 0  # the stream's transcripts, though the crops have none
        loss.backward()
        grads[detach] = codec.encoder.stages[0].input_proj.weight.grad
        assert head.audio_proj.weight.grad.abs().sum() > 0  # the head learns either way
    assert grads[True] is None or grads[True].abs().sum() == 0
    assert grads[False].abs().sum() > 0


def test_semantic_stream_draws_whole_clips_and_re_mixes_each_epoch(tmp_path, corpus):
    config = load_config(tiny_recipe(tmp_path, corpus), [f"task.semantic_manifests={json.dumps([[str(corpus), 0.5]])}",
                                                         "task.semantic_batch_size=2"])
    task = get_task("codec")(config)
    task.build_models()
    task.build_datasets()
    stream = task.semantic_train
    assert len(stream) == 6  # half of the 12 clips each epoch
    first = task._semantic_batch(0)
    assert first.audio.shape[0] == 2 and all(t.startswith("clip number") for t in first.texts)
    assert int(first.lengths.max()) == round(0.6 * 16000)  # whole clips, not the 0.4 s crops
    plan = [e.audio for e in stream.plan]
    task._semantic_batch(2)  # 2 draws x 2 clips: still the first epoch
    assert stream.epoch == 0
    task._semantic_batch(3)
    assert stream.epoch == 1 and [e.audio for e in stream.plan] != plan  # another half of the clips


def test_codec_task_rejects_unknown_keys(tmp_path, corpus):
    config = load_config(tiny_recipe(tmp_path, corpus), ["task.crop_secs=1.0"])
    with pytest.raises(ValueError, match="crop_secs"):
        get_task("codec")(config)


def test_codec_task_survives_a_corrupt_file(tmp_path, corpus):
    folder = tmp_path / "bad"
    shutil.copytree(corpus.parent, folder)
    (folder / "clip3.wav").write_bytes(b"not audio at all")
    config = load_config(tiny_recipe(tmp_path, folder / "manifest.jsonl"), ["max_steps=3", "val_every=0"])
    trainer = Trainer(config, get_task("codec")(config))
    trainer.fit()
    assert trainer.step == 3
    assert trainer.train_set.num_failed == 1


@pytest.mark.skipif(shutil.which("torchrun", path=os.path.dirname(sys.executable)) is None, reason="torchrun not installed")
def test_two_process_ddp_equals_single_process(tmp_path, corpus):
    """torchrun --nproc_per_node 2 (gloo): ranks end identical, and after the reconstruction phase they equal
    a single process trained on the same global batch (2 x 2 items vs 1 x 4)."""
    phase1 = 2
    # Without the harmonic branch: its fresh envelope rows get near-zero gradients, whose summation-order noise
    # Adam turns into steps of ~1e-4, as large as the tolerance below (the branch trains in the tests above).
    plain = {"num_harmonics": 0, "pitch_input": False}
    recipe = tiny_recipe(tmp_path / "ddp", corpus, plain, batch_size=2, max_steps=4, val_every=0, checkpoint_every=0)
    out = tmp_path / "ddp" / "dump"
    out.mkdir(parents=True)
    worker = Path(__file__).parent / "helpers" / "ddp_worker.py"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    cmd = [os.path.join(os.path.dirname(sys.executable), "torchrun"), "--nproc_per_node", "2",
           "--master_port", "29517", str(worker), str(recipe), str(out), str(phase1)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]

    final = [torch.load(out / f"final_rank{r}.pt") for r in (0, 1)]
    assert final[0].keys() == final[1].keys()
    for k in final[0]:
        assert torch.equal(final[0][k], final[1][k]), f"ranks differ at {k}"
    assert any(k.startswith("discriminator.") for k in final[0])  # the adversarial phase ran under DDP

    torch.set_num_threads(1)
    single_recipe = tiny_recipe(tmp_path / "single", corpus, plain, batch_size=4, max_steps=4, val_every=0,
                                checkpoint_every=0)
    config = load_config(single_recipe)
    single = Trainer(config, get_task("codec")(config))
    single.fit(until_step=phase1)
    ddp_phase1 = torch.load(out / "phase1_rank0.pt")
    for k, v in single.raw_models["generator"].state_dict().items():
        # summation order differs (2 x 2 items + all-reduce vs 4 items); Adam turns ~1e-8 gradient noise into
        # up to ~2e-5 here. A wrong data split or missing all-reduce moves weights by ~lr = 1e-3.
        assert torch.allclose(v, ddp_phase1[k], atol=1e-4, rtol=0), f"DDP and single process differ at {k}"


def _warm_start_probe() -> torch.Tensor:
    """[1, 1, 6400] tone plus a little seeded noise: what the warm-start tests encode and decode."""
    noise = torch.randn(1, 1, 6400, generator=torch.Generator().manual_seed(0))
    return torch.sin(torch.arange(6400) / 7.0)[None, None] * 0.3 + 0.05 * noise


def test_warm_start_copies_matching_tensors_and_keeps_a_new_head_fresh(tmp_path, make_model):
    from catcodec.training_task import warm_start

    trained = make_model(seed=1)
    trained.save_pretrained(tmp_path / "trained")
    fresh = make_model(seed=2, output_head="istft")
    head_before = fresh.decoder.stages[0].output_proj.weight.clone()
    left = warm_start(fresh, str(tmp_path / "trained"))
    assert left == ["decoder.stages.0.output_proj.weight"]
    assert torch.equal(fresh.encoder.stages[0].input_proj.weight, trained.encoder.stages[0].input_proj.weight)
    want, got = trained.state_dict(), fresh.state_dict()
    for name in ("quantizer.layers.0.codebook.weight", "quantizer.layers.0.usage", "decoder.stages.1.output_proj.weight"):
        assert torch.equal(got[name], want[name]), name
    assert torch.equal(fresh.decoder.stages[0].output_proj.weight, head_before)


def test_warm_start_releases_unit_codes_with_the_same_codes_and_outputs(tmp_path, make_model, capsys):
    """A DAC-style model (unit_codes false) warm-started from unit-code weights encodes and decodes as they did."""
    from catcodec.training_task import warm_start

    trained = make_model(seed=1, unit_codes=True)
    trained.save_pretrained(tmp_path / "trained")
    fresh = make_model(seed=2)
    assert not fresh.config.unit_codes
    warm_start(fresh, str(tmp_path / "trained"))
    assert "unit codes released" in capsys.readouterr().out
    assert not fresh.config.unit_codes and not any(layer.unit_codes for layer in fresh.quantizer.layers)
    probe = _warm_start_probe()
    with torch.no_grad():
        want, got = trained.encode(probe).audio_codes, fresh.encode(probe).audio_codes
        assert torch.equal(got, want)
        torch.testing.assert_close(fresh.decode(got).audio_values, trained.decode(want).audio_values, atol=1e-4, rtol=1e-3)
    lengths = fresh.quantizer.layers[0].codebook.weight.detach().norm(dim=-1)
    assert torch.allclose(lengths, lengths[0].expand_as(lengths)) and float(lengths[0]) != pytest.approx(1.0)


def test_warm_start_refuses_dac_entries_into_unit_codes(tmp_path, make_model):
    """The other way round would read DAC entries (lengths included) as unit directions: refused with the fix."""
    from catcodec.training_task import warm_start

    make_model(seed=1).save_pretrained(tmp_path / "dac")
    with pytest.raises(ValueError, match="model_overrides.unit_codes: false"):
        warm_start(make_model(seed=2, unit_codes=True), str(tmp_path / "dac"))


def test_warm_start_into_a_deeper_decoder_keeps_the_codes_and_starts_near_the_source(tmp_path, make_model):
    """Growing a decoder stage by layers (configs/codec_small_cpu_v11_deeper_decoder.yaml): every saved tensor is
    copied, only the new layers are fresh, the codes are the source's, and the output starts close to the source's
    (the layer scale keeps each new block near the identity), so training continues from the source rather than
    from a broken decoder."""
    from catcodec.training_task import warm_start

    trained = make_model(seed=1)
    trained.save_pretrained(tmp_path / "trained")
    layers = list(trained.config.decoder_stage_layers)
    grown = make_model(seed=2, decoder_stage_layers=[layers[0] + 2, *layers[1:]])
    left = warm_start(grown, str(tmp_path / "trained"))
    assert left and all(name.startswith("decoder.stages.0.layers.") for name in left)
    assert {name.split(".")[4] for name in left} == {str(layers[0]), str(layers[0] + 1)}
    probe = _warm_start_probe()
    with torch.no_grad():
        codes = trained.encode(probe).audio_codes
        assert torch.equal(grown.encode(probe).audio_codes, codes)
        want, got = trained.decode(codes).audio_values, grown.decode(codes).audio_values
    change = float((got - want).norm() / want.norm())
    assert 0 < change < 1e-3, change  # about 8e-5 here; 7e-3 with the new blocks at full scale (layer_scale_init 1)


def test_fresh_dac_quantizer_is_calibrated_so_the_residual_shrinks_and_unit_codes_are_left_alone():
    """A fresh DAC-style model (the preset's default) starts with each quantizer layer taking part of its residual
    away; unit-code layers (v0-v3 recipes) keep their plain initialisation."""
    from catcodec.training_task import build_codec, calibration_latents

    overrides = yaml.safe_load(TINY_RECIPE.read_text())["task"]["model_overrides"]
    torch.manual_seed(0)
    dac = build_codec("cat-small-16k", dict(overrides)).eval()
    torch.manual_seed(0)
    unit = build_codec("cat-small-16k", {**overrides, "unit_codes": True}).eval()
    latents = calibration_latents(dac)
    with torch.no_grad():
        residual = latents
        for layer in dac.quantizer.layers:
            residual = residual - layer.decode(layer.encode(residual))
    assert float(residual.pow(2).sum() / latents.pow(2).sum()) < 1.0
    first = dac.quantizer.layers[0]
    assert torch.equal(first.out_proj.weight, first.in_proj.weight.t())
    z = first.in_proj(latents).norm(dim=-1).median()
    torch.testing.assert_close(first.codebook.weight.norm(dim=-1), z.expand(first.codebook_size).detach(), rtol=1e-5, atol=1e-6)
    assert not torch.equal(unit.quantizer.layers[0].out_proj.weight, unit.quantizer.layers[0].in_proj.weight.t())


def test_freeze_encoder_keeps_the_codes_and_trains_the_decoder(tmp_path, corpus):
    recipe = tiny_recipe(tmp_path, corpus, max_steps=3)
    with pytest.raises(ValueError, match="semantic.enabled=false"):
        get_task("codec")(load_config(recipe, ["task.freeze_encoder=true"]))
    config = load_config(recipe, ["task.freeze_encoder=true", "task.semantic.enabled=false", "task.model_overrides.quantizer_dropout=0.5"])
    trainer = Trainer(config, get_task("codec")(config))
    codec = trainer.models.raw("generator").codec
    before = {k: v.clone() for k, v in codec.state_dict().items()}
    probe = torch.sin(torch.arange(6400) / 7.0)[None, None] * 0.3
    with torch.no_grad():
        codes_before = codec.encode(probe).audio_codes
    trainer.fit()
    after = codec.state_dict()
    frozen = [k for k in before if k.startswith(("encoder.", "quantizer."))]
    assert frozen and all(torch.equal(before[k], after[k]) for k in frozen)  # usage buffers included
    assert any(not torch.equal(before[k], after[k]) for k in before if k.startswith("decoder."))
    with torch.no_grad():
        assert torch.equal(codec.encode(probe).audio_codes, codes_before)


def test_harmonic_branch_trains_with_its_pitch_losses(tmp_path, corpus):
    """With the harmonic branch and pitch features, each step logs the pitch and voicing losses, validation the
    held-out pitch accuracy, and the pitch-related weights receive gradient (they change)."""
    torch.set_num_threads(1)
    recipe = yaml.safe_load(TINY_RECIPE.read_text())
    overrides = dict(recipe["task"].get("model_overrides") or {})
    overrides.update(output_head="istft", num_harmonics=6, pitch_input=True)
    config = load_config(
        tiny_recipe(tmp_path, corpus, max_steps=2),
        [f"task.model_overrides={json.dumps(overrides)}", "task.adversarial_start=100", "task.semantic.enabled=false"],
    )
    trainer = Trainer(config, get_task("codec")(config))
    codec = trainer.raw_models["generator"].codec
    before = {k: v.clone() for k, v in codec.state_dict().items() if "pitch" in k}
    last = trainer.fit()
    train = [json.loads(l) for l in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines() if '"train"' in l]
    assert all({"pitch", "voicing", "pitch_accuracy"} <= set(l) for l in train)
    assert all(np.isfinite(l["pitch"]) and l["pitch"] > 0 for l in train)
    assert 0.0 <= last["val_pitch_accuracy"] <= 1.0
    after = codec.state_dict()
    changed = [k for k, v in before.items() if not torch.equal(v, after[k])]
    assert "encoder.pitch_skip.proj.weight" in changed and "decoder.pitch_predictor.net.2.weight" in changed


def test_the_intelligibility_loss_is_logged_and_validation_reports_envelope_correlation(tmp_path, corpus):
    torch.set_num_threads(1)
    recipe = tiny_recipe(tmp_path, corpus, max_steps=2, val_every=2, checkpoint_every=0)
    on = load_config(recipe, ['task.loss_weights={"intelligibility": 5.0}', "task.adversarial_start=100"])
    last = Trainer(on, get_task("codec")(on)).fit()
    train = [json.loads(l) for l in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    train = [l for l in train if l["split"] == "train"]
    assert all(0.0 < l["intelligibility"] < 2.0 for l in train)  # 1 - a correlation in -1..1
    assert {"val_envelope_q1", "val_envelope_q4"} <= set(last) and all(-1 <= last[k] <= 1 for k in ("val_envelope_q1", "val_envelope_q4"))
    off = load_config(recipe, [f"output_dir={tmp_path / 'off'}", "task.adversarial_start=100"])
    Trainer(off, get_task("codec")(off)).fit()
    first = json.loads((tmp_path / "off" / "metrics.jsonl").read_text().splitlines()[0])
    assert "intelligibility" not in first  # weight 0 (the default): not computed


def test_the_harmonic_amplitude_loss_is_logged_and_teaches_the_envelope_only_when_weighted(tmp_path, corpus):
    torch.set_num_threads(1)
    recipe = yaml.safe_load(TINY_RECIPE.read_text())
    overrides = dict(recipe["task"].get("model_overrides") or {})
    overrides.update(output_head="istft", num_harmonics=6, pitch_input=True)
    common = [f"task.model_overrides={json.dumps(overrides)}", "task.adversarial_start=100", "task.semantic.enabled=false"]
    on = load_config(tiny_recipe(tmp_path, corpus, max_steps=2, val_every=0, checkpoint_every=0),
                     common + ['task.loss_weights={"harmonic_amplitude": 1.0}'])
    Trainer(on, get_task("codec")(on)).fit()
    train = [json.loads(l) for l in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines() if '"train"' in l]
    # a fresh envelope starts far below the corpus's harmonics: mean |log error| of several nats
    assert train and all(np.isfinite(l["harmonic_amplitude"]) and l["harmonic_amplitude"] > 0.5 for l in train)
    off = load_config(tiny_recipe(tmp_path, corpus, max_steps=1, val_every=0, checkpoint_every=0),
                      common + [f"output_dir={tmp_path / 'off'}"])
    Trainer(off, get_task("codec")(off)).fit()
    first = json.loads((tmp_path / "off" / "metrics.jsonl").read_text().splitlines()[0])
    assert "harmonic_amplitude" not in first and "pitch" in first  # weight 0 (the default): not computed


def _gta_manifest(folder: Path, corpus: Path, hop: int, codebook_size: int, k: int = 2) -> Path:
    """The corpus's clips, each with random codes [k, frames] standing in for a TTS model's predictions."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(3)
    lines = []
    for i, line in enumerate(corpus.read_text().splitlines()):
        row = json.loads(line)
        frames = int(np.ceil(row["duration"] * 16000 / hop))
        codes = folder / f"gta{i}.npz"
        np.savez(codes, codes=rng.integers(0, codebook_size, (k, frames)).astype(np.int16))
        lines.append({**row, "audio": str(corpus.parent / row["audio"]), "codes": str(codes), "num_frames": frames})
    manifest = folder / "gta.jsonl"
    manifest.write_text("".join(json.dumps(l) + "\n" for l in lines))
    return manifest


def test_gta_codes_are_decoded_beside_the_crops_and_train_the_decoder_only(tmp_path, corpus):
    torch.set_num_threads(1)
    recipe = tiny_recipe(tmp_path, corpus, max_steps=2, val_every=0, checkpoint_every=0)
    frozen = ["task.freeze_encoder=true", "task.semantic.enabled=false", "task.adversarial_start=100"]
    probe = get_task("codec")(load_config(recipe, frozen))
    codec = probe.build_models()["generator"].codec
    gta = _gta_manifest(tmp_path, corpus, codec.config.hop_length, codec.config.codebook_size)
    config = load_config(recipe, frozen + [f"task.gta_manifests={json.dumps([str(gta)])}", "task.gta_batch_size=3",
                                           "task.gta_crop_frames=4"])
    task = get_task("codec")(config)
    trainer = Trainer(config, task)
    audio, codes = task._gta_batch(0)
    assert codes.shape == (3, 2, 4) and audio.audio.shape == (3, 1, 4 * codec.config.hop_length)
    trainer.fit()
    train = [json.loads(l) for l in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines() if '"train"' in l]
    assert train and all(np.isfinite(l["gta_mel"]) and l["gta_mel"] > 0 for l in train)
    # the first step's loss, same batch and weights, with the GTA batch weighted 0: lower by the GTA batch's losses
    # at their default weights (15 mel, 1 pitch, 1 voicing)
    off = load_config(recipe, frozen + [f"task.gta_manifests={json.dumps([str(gta)])}", "task.gta_batch_size=3",
                                        "task.gta_crop_frames=4", "task.gta_weight=0", f"output_dir={tmp_path / 'off'}"])
    Trainer(off, get_task("codec")(off)).fit()
    first_off = json.loads((tmp_path / "off" / "metrics.jsonl").read_text().splitlines()[0])
    assert first_off["gta_mel"] == pytest.approx(train[0]["gta_mel"])
    assert train[0]["loss_generator"] - first_off["loss_generator"] == pytest.approx(
        15.0 * train[0]["gta_mel"] + train[0]["gta_pitch"] + train[0]["gta_voicing"], rel=1e-3)

    generator = trainer.raw_models["generator"]
    generator.zero_grad()
    out = generator(audio.audio, audio.padding_mask, [None] * 3, gta_codes=codes)
    out.gta.audio_values.square().mean().backward()
    assert generator.codec.decoder.stages[0].output_proj.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in generator.codec.encoder.parameters())
    generator.eval()
    with torch.no_grad():  # the training decode is the inference decode
        assert torch.allclose(generator.decode_codes(codes).audio_values, generator.codec.decode(codes).audio_values, atol=1e-6)


def test_gta_codes_of_another_codec_are_refused(tmp_path, corpus):
    recipe = tiny_recipe(tmp_path, corpus)
    frozen = ["task.freeze_encoder=true", "task.semantic.enabled=false"]
    probe = get_task("codec")(load_config(recipe, frozen))
    codec = probe.build_models()["generator"].codec
    gta = _gta_manifest(tmp_path, corpus, codec.config.hop_length, codec.config.codebook_size)
    first = json.loads(gta.read_text().splitlines()[0])["codes"]
    with np.load(first) as f:
        codes = f["codes"]
    np.savez(first, codes=codes, weights_id=np.array("0123456789abcdef"))
    task = get_task("codec")(load_config(recipe, frozen + [f"task.gta_manifests={json.dumps([str(gta)])}",
                                                           "task.gta_crop_frames=4"]))
    task.build_models()
    with pytest.raises(ValueError, match="weights id 0123456789abcdef, this codec's is"):
        task.build_datasets()
    np.savez(first, codes=codes, weights_id=np.array(task.codes_id))  # its own codec's codes pass
    task.build_datasets()
    assert task.gta_train is not None


def test_a_gta_batch_of_mixed_bitrates_is_refused_by_name(tmp_path, corpus):
    recipe = tiny_recipe(tmp_path, corpus)
    frozen = ["task.freeze_encoder=true", "task.semantic.enabled=false"]
    codec = get_task("codec")(load_config(recipe, frozen)).build_models()["generator"].codec
    two = _gta_manifest(tmp_path / "two", corpus, codec.config.hop_length, codec.config.codebook_size, k=2)
    three = _gta_manifest(tmp_path / "three", corpus, codec.config.hop_length, codec.config.codebook_size, k=3)
    task = get_task("codec")(load_config(recipe, frozen + [f"task.gta_manifests={json.dumps([str(two), str(three)])}",
                                                           "task.gta_crop_frames=4", "task.gta_batch_size=24"]))
    task.build_models()
    task.build_datasets()
    with pytest.raises(ValueError, match="different numbers of codebooks"):
        task._gta_batch(0)


def test_without_gta_manifests_no_gta_batch_is_drawn(tmp_path, corpus):
    task = get_task("codec")(load_config(tiny_recipe(tmp_path, corpus)))
    task.build_models()
    task.build_datasets()
    assert task._gta_batch(0) is None
