"""The harmonic branch: an oscillator bank at whole multiples of a predicted pitch, its config, its streaming,
its losses, and the YIN pitch track that teaches it."""

from __future__ import annotations

import math

import pytest
import torch

from catcodec.losses import AMPLITUDE_FLOOR, harmonic_amplitude_loss, pitch_losses
from catcodec.modules.harmonic_head import AMPLITUDE_OFFSET, HarmonicHead
from catcodec.pitch import PitchTrack, estimate_pitch, harmonic_amplitudes
from catcodec.training_task import warm_start

pytestmark = pytest.mark.usefixtures("single_thread")

SR, HOP = 16000, 160


def _head(num_harmonics: int = 12) -> HarmonicHead:
    return HarmonicHead(SR, HOP, num_harmonics, pitch_bins=64, envelope_bins=32, fmin=50.0, fmax=600.0)


def _controls(head: HarmonicHead, frames: int, pitch_bin: int, level: float, voicing: float = 30.0) -> torch.Tensor:
    """Constant controls: a pitch distribution peaked on one bin, a flat envelope at `level`."""
    pitch = torch.full((frames, head.pitch_bins), -50.0)
    pitch[:, pitch_bin] = 50.0
    voice = torch.full((frames, 1), voicing)
    env = torch.full((frames, head.envelope_bins), level)
    return torch.cat([pitch, voice, env], dim=-1)[None]


def _harmonic_sum(f0: float, amplitude: float, harmonics: int, samples: int) -> torch.Tensor:
    n = torch.arange(1, samples + 1, dtype=torch.float64)
    phase = 2 * math.pi * f0 * n / SR
    return sum(amplitude * torch.sin(h * phase) for h in range(1, harmonics + 1)).float()


def test_constant_controls_give_the_harmonic_series():
    head = _head(12)
    x = _controls(head, 20, pitch_bin=30, level=AMPLITUDE_OFFSET + math.log(0.05))
    f0 = float(torch.exp(head.bin_log_hz(torch.device("cpu"))[30]))
    out = head(x)
    assert out.shape == (1, 1, 20 * HOP)
    expected = _harmonic_sum(f0, 0.05, 12, 20 * HOP)
    assert torch.allclose(out[0, 0], expected, atol=1e-3)
    assert abs(float(head.pitch_hz(x[0, :, :64])[0]) - f0) < 1e-3


def test_harmonics_near_nyquist_are_muted():
    head = _head(15)
    x = _controls(head, 10, pitch_bin=63, level=AMPLITUDE_OFFSET + math.log(0.02))  # 600 Hz: harmonic 13 = 7.8 kHz
    out = head(x)
    keep = int(0.95 * SR / 2 // 600)
    assert keep == 12
    assert torch.allclose(out[0, 0], _harmonic_sum(600.0, 0.02, keep, 10 * HOP), atol=1e-3)


def test_unvoiced_frames_are_silent():
    head = _head()
    out = head(_controls(head, 8, pitch_bin=20, level=AMPLITUDE_OFFSET, voicing=-40.0))
    assert out.abs().max() < 1e-9


def test_non_finite_pitch_gives_nan_audio_not_an_index_error():
    """A diverged model's NaN pitch logits propagate to the audio (the trainer then names the NaN loss)."""
    head = _head()
    x = _controls(head, 6, pitch_bin=20, level=AMPLITUDE_OFFSET + math.log(0.05))
    x[0, 2:4, : head.pitch_bins] = float("nan")
    out = head(x)
    assert out.shape == (1, 1, 6 * HOP)
    assert torch.isnan(out).any()
    x[0, 2:4, : head.pitch_bins] = float("inf")
    assert head(x).shape == (1, 1, 6 * HOP)


def test_fresh_head_starts_quiet():
    """Controls near zero (a fresh projection) give a quiet buzz, not a loud one, on top of a trained body."""
    head = _head(80)
    out = head(torch.zeros(1, 50, head.input_dim))
    rms = float(out.square().mean().sqrt())
    assert 0 < rms < 0.02


def test_pitch_bins_round_trip():
    head = _head()
    centres = torch.exp(head.bin_log_hz(torch.device("cpu")))
    assert torch.allclose(head.pitch_bin_position(centres), torch.arange(64.0), atol=1e-4)
    assert float(head.pitch_bin_position(torch.tensor(10.0))) == 0.0  # clamped below fmin


def test_streaming_equals_offline_with_changing_controls():
    head = _head(20)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 37, head.input_dim, generator=g) * 3
    x[..., head.pitch_bins + 1 :] += AMPLITUDE_OFFSET - 2  # loud enough that a phase slip would show
    offline = head(x)
    assert offline.abs().max() > 0.1
    with torch.no_grad():
        from catcodec.modules.streaming import streaming

        with streaming(head, batch_size=2):
            parts, s = [], 0
            for n in (1, 5, 2, 13, 16):
                parts.append(head(x[:, s : s + n]))
                s += n
    assert torch.allclose(torch.cat(parts, dim=-1), offline, atol=1e-4)


def test_long_signals_render_in_chunks_like_one_pass(monkeypatch):
    """Rendering a few frames at a time (what bounds memory on hour-long files) changes nothing."""
    import catcodec.modules.harmonic_head as harmonic_head

    head = _head(20)
    x = torch.randn(2, 37, head.input_dim, generator=torch.Generator().manual_seed(1)) * 3
    x[..., head.pitch_bins + 1 :] += AMPLITUDE_OFFSET - 2
    one_pass = head(x)
    monkeypatch.setattr(harmonic_head, "SYNTHESIS_CHUNK", 4)
    chunked = head(x)
    assert one_pass.abs().max() > 0.1
    assert torch.allclose(chunked, one_pass, atol=1e-4)


def test_model_with_harmonic_branch(make_model, make_config, signal):
    cfg = make_config(output_head="istft", num_harmonics=8)
    assert cfg.decoder_output_dim == cfg.main_head_dim + cfg.harmonic_envelope_bins  # pitch and voicing come from the latent
    assert cfg.architecture_hash() != make_config(output_head="istft").architecture_hash()
    model = make_model(output_head="istft", num_harmonics=8)
    x = signal(10 * model.config.hop_length)
    out = model(x)
    frames = 10 * model.config.hop_length // model.config.patch_size
    assert out.pitch_logits.shape == (1, frames, cfg.harmonic_pitch_bins)
    assert out.voicing_logits.shape == (1, frames)
    assert make_model(output_head="istft")(x).pitch_logits is None


def test_config_refuses_bad_harmonic_settings(make_config):
    with pytest.raises(ValueError, match="num_harmonics must be >= 0"):
        make_config(num_harmonics=-1)
    with pytest.raises(ValueError, match="harmonic_fmin / harmonic_fmax"):
        make_config(num_harmonics=4, harmonic_fmin=700.0, harmonic_fmax=600.0)


def test_warm_start_keeps_the_trained_rows_of_a_grown_projection(make_model, tmp_path, capsys):
    trained = make_model(seed=1, output_head="istft")
    trained.save_pretrained(tmp_path / "trained")
    grown = make_model(seed=2, output_head="istft", num_harmonics=8)
    fresh = warm_start(grown, str(tmp_path / "trained"))
    assert fresh == ["decoder.pitch_predictor.net.0.bias", "decoder.pitch_predictor.net.0.weight",
                     "decoder.pitch_predictor.net.2.bias", "decoder.pitch_predictor.net.2.weight",
                     "decoder.stages.0.output_proj.weight"]
    old = trained.decoder.stages[0].output_proj.weight
    new = grown.decoder.stages[0].output_proj.weight
    assert new.shape[0] == old.shape[0] + grown.config.harmonic_envelope_bins
    assert torch.equal(new[: old.shape[0]], old)
    assert torch.equal(grown.encoder.stages[0].input_proj.weight, trained.encoder.stages[0].input_proj.weight)
    assert "1 grown" in capsys.readouterr().out


# ---- the pitch track ----
def _voice(f0: float, seconds: float = 1.0) -> torch.Tensor:
    t = torch.arange(int(SR * seconds)) / SR
    return 0.3 * sum(torch.sin(2 * math.pi * f0 * k * t) / k for k in range(1, 6))


@pytest.mark.parametrize("f0", [80.0, 123.4, 220.0, 410.0])
def test_pitch_of_a_harmonic_tone(f0):
    track = estimate_pitch(_voice(f0)[None], SR, HOP)
    assert track.f0.shape == track.voiced.shape == (1, SR // HOP)
    assert track.voiced.float().mean() > 0.95
    assert (track.f0[track.voiced] - f0).abs().max() < 0.01 * f0
    assert float(track.periodicity[track.voiced].min()) > 0.8


def test_noise_and_silence_are_unvoiced():
    noise = 0.1 * torch.randn(2, SR, generator=torch.Generator().manual_seed(0))
    assert not estimate_pitch(noise, SR, HOP).voiced.any()
    silent = estimate_pitch(torch.zeros(1, 1, SR), SR, HOP)
    assert not silent.voiced.any() and float(silent.f0.abs().max()) == 0.0


def test_pitch_track_refuses_bad_input():
    with pytest.raises(ValueError, match="fmin < fmax"):
        estimate_pitch(torch.zeros(1, SR), SR, HOP, fmin=500.0, fmax=100.0)
    with pytest.raises(ValueError, match="batch, samples"):
        estimate_pitch(torch.zeros(SR), SR, HOP)


def test_pitch_losses_reward_the_right_pitch():
    head = _head()
    track = estimate_pitch(torch.stack([_voice(150.0), torch.zeros(SR)]), SR, HOP)
    frames = track.f0.shape[1]
    mask = torch.ones(2, frames, dtype=torch.bool)
    bins = torch.arange(64.0)
    right = -0.5 * (bins - head.pitch_bin_position(torch.tensor(150.0))) ** 2
    wrong = -0.5 * (bins - head.pitch_bin_position(torch.tensor(300.0))) ** 2
    voicing = torch.where(track.voiced, 20.0, -20.0)
    good = pitch_losses(right.expand(2, frames, 64), voicing, track, head, mask)
    bad = pitch_losses(wrong.expand(2, frames, 64), -voicing, track, head, mask)
    assert good.accuracy == 1.0 and bad.accuracy == 0.0
    assert float(good.pitch) < float(bad.pitch)
    assert float(good.voicing) < 1e-6 < float(bad.voicing)


# ---- harmonic amplitudes: the envelope's target ----
def _tone(f0: float, amplitudes: list[float], seconds: float = 1.0) -> torch.Tensor:
    t = torch.arange(int(SR * seconds), dtype=torch.float64) / SR
    return sum(a * torch.sin(2 * math.pi * f0 * (h + 1) * t + h) for h, a in enumerate(amplitudes)).float()


@pytest.mark.parametrize("f0", [110.0, 230.0])
def test_harmonic_amplitudes_measure_each_sinusoid(f0):
    amplitudes = [0.3 / (h + 1) for h in range(30)]
    frames = SR // HOP
    measured = harmonic_amplitudes(_tone(f0, amplitudes)[None], torch.full((1, frames), f0), SR, HOP, 80)
    assert measured.shape == (1, frames, 80)
    inner = measured[0, 10:-10]  # away from the zero padding at the ends
    ratio = inner[:, :30] / torch.tensor(amplitudes)
    # within the Hann window's scalloping loss (at most 1.42 dB = 15 %) of the true amplitude
    assert 0.84 < float(ratio.min()) and float(ratio.max()) < 1.02
    nyquist = int(SR / 2 // f0)  # harmonics at or above Nyquist measure 0; between 30 and Nyquist, only leakage
    assert float(inner[:, nyquist:].abs().max()) == 0.0
    assert float(inner[:, 30:nyquist].max()) < 0.05 * amplitudes[-1]  # leakage from the last real harmonic


def test_harmonic_amplitudes_refuse_a_wav_of_another_batch():
    with pytest.raises(ValueError, match="wav must be"):
        harmonic_amplitudes(torch.zeros(2, SR), torch.full((1, 100), 100.0), SR, HOP, 10)


def _envelope_for(head: HarmonicHead, f0: float, amplitudes: list[float], frames: int) -> torch.Tensor:
    """A log envelope [1, frames, bins] that reads `amplitudes` at the harmonics of f0 (interpolated in between)."""
    bin_hz = SR / 2 / (head.envelope_bins - 1)
    harm_hz = torch.tensor([f0 * (h + 1) for h in range(len(amplitudes))])
    log_amp = torch.log(torch.tensor(amplitudes)) + AMPLITUDE_OFFSET
    centres = torch.arange(head.envelope_bins) * bin_hz
    values = torch.from_numpy(__import__("numpy").interp(centres.numpy(), harm_hz.numpy(), log_amp.numpy())).float()
    return values.expand(1, frames, -1).clone()


def test_harmonic_amplitude_loss_is_small_for_the_true_envelope_and_large_for_a_muted_one():
    head = HarmonicHead(SR, HOP, 30, pitch_bins=64, envelope_bins=257, fmin=50.0, fmax=600.0)
    f0 = 200.0
    amplitudes = [0.2 * math.exp(-0.1 * h) for h in range(30)]
    audio = _tone(f0, amplitudes)[None, None]
    frames = SR // HOP
    track = PitchTrack(torch.full((1, frames), f0), torch.ones(1, frames, dtype=torch.bool), torch.ones(1, frames))
    mask = torch.ones(1, frames, dtype=torch.bool)
    mask[:, :10] = mask[:, -10:] = False  # the ends read zero padding
    true_env = _envelope_for(head, f0, amplitudes, frames).requires_grad_()
    good = harmonic_amplitude_loss(true_env, audio, track, head, mask)
    good.backward()
    muted = harmonic_amplitude_loss(true_env.detach() - 6.0, audio, track, head, mask)  # 52 dB down
    assert float(good.detach()) < 0.1  # scalloping only: |log 0.85| = 0.16 at worst
    assert abs(float(muted) - 6.0) < 0.15
    assert true_env.grad is not None and torch.isfinite(true_env.grad).all()
    # unvoiced frames and masked frames do not count: an all-unvoiced track gives exactly 0
    silent = PitchTrack(track.f0, torch.zeros_like(track.voiced), track.periodicity)
    assert float(harmonic_amplitude_loss(true_env.detach() - 6.0, audio, silent, head, mask)) == 0.0
    # a silent input asks for the floor, not for -inf
    floor = harmonic_amplitude_loss(true_env.detach(), torch.zeros_like(audio), track, head, mask)
    assert math.isfinite(float(floor)) and float(floor) > -math.log(AMPLITUDE_FLOOR) - 5


# ---- pitch features at the encoder's input ----
def test_pitch_input_is_causal_and_measures_the_pitch():
    from catcodec.modules.pitch_input import PitchInput

    from catcodec.modules.pitch_input import FEATURE_GAIN

    features = PitchInput(SR, HOP, 50.0, 600.0)
    tone = _voice(200.0)[None, None]
    out = features(tone) / FEATURE_GAIN
    assert out.shape == (1, SR // HOP, 3)
    expected = (math.log(200.0) - math.log(50.0)) / (math.log(600.0) - math.log(50.0))
    steady = out[0, 10:]
    assert torch.allclose(steady[:, 0], torch.full_like(steady[:, 0], expected), atol=0.01)
    assert torch.equal(steady[:, 1], torch.ones_like(steady[:, 1]))
    changed = tone.clone()
    changed[..., 50 * HOP :] = 0.5 * torch.randn(SR - 50 * HOP, generator=torch.Generator().manual_seed(0))
    assert torch.equal(features(changed)[:, :50] / FEATURE_GAIN, out[:, :50])  # nothing after a patch changes its features
    assert not torch.equal(features(changed)[:, 50:] / FEATURE_GAIN, out[:, 50:])


def test_pitch_input_streams_like_offline():
    from catcodec.modules.pitch_input import PitchInput
    from catcodec.modules.streaming import streaming

    features = PitchInput(SR, HOP, 50.0, 600.0)
    x = torch.stack([_voice(150.0), _voice(310.0)])[:, None] + 0.01 * torch.randn(2, 1, SR, generator=torch.Generator().manual_seed(1))
    offline = features(x)
    with streaming(features, batch_size=2):
        parts, s = [], 0
        for n in (1, 3, 17, 2, 77):
            parts.append(features(x[..., s * HOP : (s + n) * HOP]))
            s += n
    assert torch.allclose(torch.cat(parts, dim=1), offline[:, :s], atol=1e-5)


def test_adding_pitch_input_keeps_the_saved_codes(make_model, signal, tmp_path):
    """The grown first projection starts with zero weights on the new features: same codes as the saved model."""
    trained = make_model(seed=1, output_head="istft")
    trained.save_pretrained(tmp_path / "trained")
    grown = make_model(seed=2, output_head="istft", num_harmonics=8, pitch_input=True)
    fresh = warm_start(grown, str(tmp_path / "trained"))
    assert [n for n in fresh if n.startswith("encoder.")] == ["encoder.pitch_skip.proj.weight", "encoder.stages.0.input_proj.weight"]
    assert float(grown.encoder.pitch_skip.proj.weight.detach().abs().max()) == 0.0
    proj = grown.encoder.stages[0].input_proj.weight
    assert proj.shape[1] == grown.config.patch_size + 3 and float(proj.detach()[:, -3:].abs().max()) == 0.0
    x = signal(6 * grown.config.hop_length)
    with torch.no_grad():
        assert torch.equal(grown.encode(x).audio_codes, trained.encode(x).audio_codes)
    assert grown.config.architecture_hash() != make_model(output_head="istft", num_harmonics=8).config.architecture_hash()
    # once the skip has weights, the pitch features reach the latent directly
    with torch.no_grad():
        grown.encoder.pitch_skip.proj.weight.fill_(0.01)
        tone = _voice(200.0, seconds=6 * grown.config.hop_length / SR)[None, None]
        plain = trained.encoder(tone)
        assert (grown.encoder(tone) - plain).abs().max() > 0.01
