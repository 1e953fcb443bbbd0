"""Streaming: chunked encode/decode inside `model.streaming()` and the `catcodec.streaming` helpers give
exactly the offline result, with flat memory however long the stream runs."""

from __future__ import annotations

import pytest
import torch

from catcodec.modules.transformer import TransformerStage
from catcodec.streaming import StreamingDecoder, StreamingEncoder

pytestmark = pytest.mark.usefixtures("single_thread")

FRAMES = 40  # longer than every attention window (25 frames at every stage)


@pytest.fixture(params=["patch", "istft", "istft+harmonic"])
def model(request, make_model):
    """The tiny model with each output head (the istft head carries overlap-add tails between calls, the
    harmonic branch its oscillator phase)."""
    if request.param == "istft+harmonic":
        return make_model(output_head="istft", num_harmonics=8, pitch_input=True)
    return make_model(output_head=request.param)


def _partition(total: int, seed: int, largest: int) -> list[int]:
    g = torch.Generator().manual_seed(seed)
    sizes, done = [], 0
    while done < total:
        n = min(int(torch.randint(1, largest + 1, (1,), generator=g)), total - done)
        sizes.append(n)
        done += n
    return sizes


def _stream_codec(model, x, frame_chunks, num_quantizers=None, batch_size=1):
    """Encode x chunk by chunk, then decode the codes chunk by chunk, in one streaming context each."""
    hop = model.config.hop_length
    with torch.no_grad():
        with model.streaming(batch_size):
            codes, s = [], 0
            for n in frame_chunks:
                codes.append(model.encode(x[..., s * hop : (s + n) * hop], num_quantizers=num_quantizers).audio_codes)
                s += n
        codes = torch.cat(codes, dim=-1)
        with model.streaming(batch_size):
            audio, s = [], 0
            for n in frame_chunks:
                audio.append(model.decode(codes[..., s : s + n]).audio_values)
                s += n
    return codes, torch.cat(audio, dim=-1)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_streaming_equals_offline(model, signal, seed):
    hop = model.config.hop_length
    x = signal(FRAMES * hop, seed=seed)
    # seed 0: one frame at a time; others: random partitions, some chunks longer than a window
    chunks = [1] * FRAMES if seed == 0 else _partition(FRAMES, seed, largest=[0, 6, 30, 40][seed])
    with torch.no_grad():
        offline_codes = model.encode(x).audio_codes
        offline_audio = model.decode(offline_codes).audio_values
    codes, audio = _stream_codec(model, x, chunks)
    assert codes.shape == (1, 8, FRAMES)
    assert torch.equal(codes, offline_codes), chunks
    assert audio.shape == offline_audio.shape == (1, 1, FRAMES * hop)
    assert (audio - offline_audio).abs().max() <= 1e-4
    assert offline_audio.abs().max() > 1e-3  # the comparison is not between two silences


def test_streaming_with_three_quantizers(model, signal):
    hop = model.config.hop_length
    x = signal(FRAMES * hop, seed=5)
    with torch.no_grad():
        offline_codes = model.encode(x, num_quantizers=3).audio_codes
        offline_audio = model.decode(offline_codes).audio_values
    codes, audio = _stream_codec(model, x, _partition(FRAMES, 5, 9), num_quantizers=3)
    assert codes.shape == (1, 3, FRAMES)
    assert torch.equal(codes, offline_codes)
    assert (audio - offline_audio).abs().max() <= 1e-4


def test_streaming_batch_of_two(model, signal):
    hop = model.config.hop_length
    x = signal(FRAMES * hop, seed=6, batch=2)
    with torch.no_grad():
        offline_codes = model.encode(x).audio_codes
        offline_audio = model.decode(offline_codes).audio_values
    assert not torch.equal(offline_codes[0], offline_codes[1])
    codes, audio = _stream_codec(model, x, _partition(FRAMES, 6, 7), batch_size=2)
    assert torch.equal(codes, offline_codes)
    assert (audio - offline_audio).abs().max() <= 1e-4
    with model.streaming(batch_size=2), pytest.raises(ValueError, match="batch"):
        model.encode(x[:1, :, :hop])


def test_streaming_chunk_must_be_whole_frames(model, signal):
    with model.streaming():
        with pytest.raises(ValueError, match="multiple of 320"):
            model.encode(signal(500))
        assert model.encode(signal(640)).audio_codes.shape == (1, 8, 2)
    # offline, any length is fine (zero-padded to whole frames)
    assert model.encode(signal(500)).audio_codes.shape == (1, 8, 2)


@pytest.mark.parametrize("seed", [0, 1])
def test_streaming_helpers_with_arbitrary_chunks(model, signal, seed):
    hop = model.config.hop_length
    total = FRAMES * hop + 123  # ends with a partial frame
    x = signal(total, seed=20 + seed)
    with torch.no_grad():
        offline_codes = model.encode(x).audio_codes
        offline_audio = model.decode(offline_codes).audio_values
    assert offline_codes.shape[-1] == FRAMES + 1

    g = torch.Generator().manual_seed(seed)
    codes, audio = [], []
    with StreamingEncoder(model) as enc, StreamingDecoder(model) as dec:
        s = 0
        while s < total:
            n = int(torch.randint(1, 901, (1,), generator=g))
            chunk = x[..., s : s + n]
            if seed == 1:
                chunk = chunk.reshape(-1)  # 1-D chunks are accepted for a batch of one
            c = enc.push(chunk)
            assert c.shape[:2] == (1, 8)
            assert c.shape[-1] == (min(s + n, total)) // hop - s // hop  # frames completed by this chunk
            codes.append(c)
            audio.append(dec.push(c))
            assert audio[-1].shape[-1] == c.shape[-1] * hop
            s += n
        last = enc.flush()
        assert last.shape == (1, 8, 1)
        codes.append(last)
        audio.append(dec.push(last))
        assert enc.frames_emitted == FRAMES + 1 and dec.frames_decoded == FRAMES + 1
    codes, audio = torch.cat(codes, -1), torch.cat(audio, -1)
    assert torch.equal(codes, offline_codes)
    assert audio.shape == offline_audio.shape
    assert (audio - offline_audio).abs().max() <= 1e-4 * max(1.0, float(offline_audio.abs().max()))  # float32 sums
    assert not model.is_streaming


def test_streaming_encoder_helpers_lifecycle(model, signal):
    enc = StreamingEncoder(model, num_quantizers=2)
    assert all(s.is_streaming for s in model.encoder.stages)
    assert not any(s.is_streaming for s in model.decoder.stages)
    with pytest.raises(RuntimeError, match="already streaming"):
        with model.streaming():
            pass
    assert enc.push(signal(100)).shape == (1, 2, 0)  # no frame complete yet
    assert enc.push(signal(300)).shape == (1, 2, 1)
    assert enc.flush().shape == (1, 2, 1)  # 80 pending samples, zero-padded
    assert not any(s.is_streaming for s in model.encoder.stages)
    with pytest.raises(RuntimeError, match="closed"):
        enc.push(signal(320))
    with pytest.raises(ValueError, match=r"1\.\.8"):
        StreamingEncoder(model, num_quantizers=9)
    with StreamingEncoder(model, batch_size=2) as enc2:
        with pytest.raises(ValueError, match=r"\[2, 1, samples\]"):
            enc2.push(signal(320))
        with pytest.raises(ValueError, match="NaN"):
            enc2.push(torch.full((2, 1, 10), float("nan")))
        assert enc2.flush().shape == (2, 8, 0)  # nothing pending


def _stages(model) -> list[TransformerStage]:
    return [m for m in model.modules() if isinstance(m, TransformerStage)]


def _expected_state_bytes(stage: TransformerStage, batch: int) -> int:
    cap = stage.ring_capacity
    per_layer = 2 * batch * stage.num_heads * cap * stage.head_dim * 4  # keys + values, fp32
    return cap * 8 + len(stage.layers) * per_layer  # + int64 slot positions


def test_memory_stays_flat_over_a_long_stream(model, signal):
    hop = model.config.hop_length
    steps = 300
    x = signal(steps * hop, seed=7)
    stages = _stages(model)
    assert len(stages) == 8
    totals, pointers, codes, audio = [], [], [], []
    with torch.no_grad(), model.streaming():
        for i in range(steps):
            c = model.encode(x[..., i * hop : (i + 1) * hop]).audio_codes
            codes.append(c)
            audio.append(model.decode(c).audio_values)
            states = [s._streaming_state for s in stages]
            ptrs = [t.data_ptr() for st in states for t in (st.slot_positions, *st.keys, *st.values)]
            if i == 0:
                first_ptrs = ptrs
            assert ptrs == first_ptrs, f"a ring buffer was reallocated at step {i}"
            if i >= 25:  # every window is full from frame 25 on
                totals.append(sum(st.nbytes() for st in states))
        frame_window = model.config.window_tokens(model.config.num_stages - 1)
        for st, stage in zip(states, stages):
            assert st.offset == steps * (stage.window // frame_window)  # frames * tokens per frame
            cap = stage.ring_capacity
            assert sorted(st.slot_positions.tolist()) == list(range(st.offset - cap, st.offset))
    assert len(set(totals)) == 1
    assert totals[0] == sum(_expected_state_bytes(s, 1) for s in stages)
    # a long stream (12 windows) still matches the offline result
    with torch.no_grad():
        offline_codes = model.encode(x).audio_codes
        offline_audio = model.decode(offline_codes).audio_values
    assert torch.equal(torch.cat(codes, -1), offline_codes)
    error, scale = (torch.cat(audio, -1) - offline_audio).abs().max(), offline_audio.abs().max()
    assert error <= 1e-4 * max(1.0, float(scale)), (float(error), float(scale))


def test_leaving_the_context_clears_state(model, signal):
    with torch.no_grad():
        with model.streaming() as m:
            assert m is model and model.is_streaming
            model.encode(signal(640))
            assert all(s._streaming_state is not None for s in model.encoder.stages)
        assert not model.is_streaming
        for s in _stages(model):
            assert s._streaming_state is None and not s.is_streaming
        # offline again: any length
        assert model.encode(signal(500)).audio_codes.shape == (1, 8, 2)

        # an exception inside the context also disarms everything
        with pytest.raises(ZeroDivisionError):
            with model.streaming():
                model.encode(signal(320))
                1 / 0
        assert all(s._streaming_state is None for s in _stages(model))


def test_reset_streaming_restarts(model, signal):
    hop = model.config.hop_length
    x = signal(30 * hop, seed=8)
    other = signal(30 * hop, seed=9)
    with torch.no_grad():
        offline = model.encode(x).audio_codes
        with model.streaming():
            for i in range(3):
                model.encode(other[..., i * 10 * hop : (i + 1) * 10 * hop])
            model.reset_streaming()
            assert model.is_streaming
            assert all(s._streaming_state is None for s in _stages(model))
            again = torch.cat([model.encode(x[..., i * 10 * hop : (i + 1) * 10 * hop]).audio_codes for i in range(3)], -1)
        with model.streaming():
            fresh = torch.cat([model.encode(x[..., i * 10 * hop : (i + 1) * 10 * hop]).audio_codes for i in range(3)], -1)
    assert torch.equal(again, fresh)
    assert torch.equal(again, offline)


def test_entering_streaming_twice_raises(model):
    with model.streaming():
        with pytest.raises(RuntimeError, match="already streaming"):
            with model.streaming():
                pass
        assert model.is_streaming  # the failed attempt left the outer stream armed
    assert not model.is_streaming
    with pytest.raises(ValueError, match="batch_size"):
        with model.streaming(batch_size=0):
            pass
