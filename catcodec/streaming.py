"""Frame-by-frame encoding and decoding of live audio with a CAT model.

    with StreamingEncoder(model, num_quantizers=8) as enc, StreamingDecoder(model) as dec:
        for chunk in microphone():            # any number of samples per chunk
            codes = enc.push(chunk)           # codes of every frame completed so far, [B, K, n]
            audio = dec.push(codes)           # n * hop_length new samples
        audio = dec.push(enc.flush())         # the last partial frame, zero-padded

The concatenated outputs equal one offline `encode` / `decode` of the whole signal; latency is one frame
(hop_length samples, 80 ms) and memory stays bounded by the attention window.
"""

from __future__ import annotations

import torch

from .modeling_cat import CATModel
from .modules.streaming import streaming


class _StreamingSide:
    """Arms one half of the model for streaming for the lifetime of this object (or a `with` block)."""

    def __init__(self, model: CATModel, module: torch.nn.Module, batch_size: int) -> None:
        self.model = model
        self.batch_size = batch_size
        self._context = streaming(module, batch_size)
        self._context.__enter__()
        self._closed = False

    def close(self) -> None:
        if not self._closed:
            self._context.__exit__(None, None, None)
            self._closed = True

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError(f"{type(self).__name__} is closed")


def _as_batch(samples: torch.Tensor, batch_size: int) -> torch.Tensor:
    """Accept [T], [1, T] (batch 1) or [B, 1, T]."""
    if samples.dim() == 1:
        samples = samples[None, None]
    elif samples.dim() == 2 and batch_size == 1:
        samples = samples[None]
    if samples.dim() != 3 or samples.shape[0] != batch_size or samples.shape[1] != 1:
        raise ValueError(f"expected audio [{batch_size}, 1, samples], got shape {tuple(samples.shape)}")
    return samples


class StreamingEncoder(_StreamingSide):
    """Takes audio chunks of any length; returns codes [B, K, n] of the n frames each chunk completes."""

    def __init__(self, model: CATModel, num_quantizers: int | None = None, batch_size: int = 1) -> None:
        self.num_quantizers = model.quantizer.check_num_quantizers(num_quantizers)
        super().__init__(model, model.encoder, batch_size)
        self.hop_length = model.config.hop_length
        self._pending: torch.Tensor | None = None  # samples of the frame not yet complete
        self.frames_emitted = 0

    def _empty_codes(self, device: torch.device) -> torch.Tensor:
        return torch.zeros(self.batch_size, self.num_quantizers, 0, dtype=torch.long, device=device)

    @torch.inference_mode()
    def push(self, samples: torch.Tensor) -> torch.Tensor:
        self._check_open()
        samples = _as_batch(samples, self.batch_size)
        if not torch.isfinite(samples).all():
            raise ValueError("audio chunk contains NaN or infinite samples")
        if self._pending is not None:
            samples = torch.cat([self._pending, samples.to(self._pending.dtype)], dim=-1)
        whole = samples.shape[-1] // self.hop_length * self.hop_length
        self._pending = samples[..., whole:]
        if whole == 0:
            return self._empty_codes(samples.device)
        codes = self.model.encode(samples[..., :whole], num_quantizers=self.num_quantizers).audio_codes
        self.frames_emitted += codes.shape[-1]
        return codes

    @torch.inference_mode()
    def flush(self) -> torch.Tensor:
        """Encode the last partial frame, zero-padded as offline encoding pads it; the stream then ends."""
        self._check_open()
        pending, self._pending = self._pending, None
        if pending is None or pending.shape[-1] == 0:
            codes = self._empty_codes(pending.device if pending is not None else torch.device("cpu"))
        else:
            padded = torch.nn.functional.pad(pending, (0, self.hop_length - pending.shape[-1]))
            codes = self.model.encode(padded, num_quantizers=self.num_quantizers).audio_codes
            self.frames_emitted += 1
        self.close()
        return codes


class StreamingDecoder(_StreamingSide):
    """Takes codes [B, K, n] as they arrive; returns the n * hop_length samples they decode to."""

    def __init__(self, model: CATModel, batch_size: int = 1) -> None:
        super().__init__(model, model.decoder, batch_size)
        self.frames_decoded = 0

    @torch.inference_mode()
    def push(self, codes: torch.Tensor) -> torch.Tensor:
        self._check_open()
        if codes.dim() == 2 and self.batch_size == 1:
            codes = codes[None]
        if codes.shape[-1] == 0:
            return torch.zeros(self.batch_size, 1, 0, device=codes.device, dtype=self.model.dtype)
        audio = self.model.decode(codes).audio_values
        self.frames_decoded += codes.shape[-1]
        return audio


__all__ = ["StreamingEncoder", "StreamingDecoder"]
