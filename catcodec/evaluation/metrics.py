"""Objective speech-quality metrics for `catcodec eval`, and the time alignment they rely on.

Every metric takes 1-D float waveforms (reference first, then the degraded / decoded signal) at
`sampling_rate` and returns a float. The third-party scorers are imported lazily, so `import
catcodec.evaluation` works without them; a missing one raises :class:`MissingDependency`, an
ImportError whose message names the pip package to install.

- :func:`pesq_wb` / :func:`pesq_nb`: ITU-T P.862.2 wide-band PESQ at 16 kHz and P.862 narrow-band PESQ
  at 8 kHz (package ``pesq``); MOS-LQO, about 1.0 (bad) to 4.64 (WB) / 4.55 (NB).
- :func:`stoi`: short-time objective intelligibility, 0..1 (package ``pystoi``).
- :func:`speaker_similarity`: cosine of Resemblyzer d-vectors (package ``resemblyzer``, whose pretrained
  weights ship inside its wheel; install it with ``pip install --no-deps resemblyzer``).
- :func:`si_sdr`, :func:`mel_distance`: re-exported from :mod:`catcodec.metrics`.

They raise on inputs they cannot score (PESQ on silence or on less than about 0.25 s, for example);
:func:`catcodec.evaluation.run.evaluate` records those as NaN and counts them.
"""

from __future__ import annotations

import importlib
import warnings
from functools import lru_cache

import numpy as np

from ..metrics import mel_distance, si_sdr

#: The rate every comparison runs at.
EVAL_RATE = 16000
#: Narrow-band PESQ runs at this rate.
NB_RATE = 8000
#: The largest codec delay :func:`estimate_delay` searches for, in seconds either way.
MAX_DELAY_S = 0.05


class MissingDependency(ImportError):
    """An optional evaluation package is not installed; the message says what to pip install."""


def require(module: str, pip_name: str | None = None, what: str | None = None, hint: str | None = None):
    """Import `module` or raise :class:`MissingDependency` naming the pip package that provides it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        pip_name = pip_name or module
        purpose = f" ({what})" if what else ""
        install = hint or f"pip install {pip_name}  (or: pip install 'catcodec[eval]')"
        raise MissingDependency(f"the Python package '{pip_name}' is needed{purpose} but is not installed: {install}") from exc


def _mono(x, name: str) -> np.ndarray:
    arr = np.asarray(x.detach().cpu().numpy() if hasattr(x, "detach") else x, dtype=np.float64).reshape(-1)
    if arr.size == 0:
        raise ValueError(f"{name} is empty")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} holds NaN or infinite samples")
    return arr


def resample(wav, orig_rate: int, target_rate: int) -> np.ndarray:
    """Band-limited resampling (soxr, high quality) of a 1-D waveform; returns float64."""
    wav = _mono(wav, "signal")
    if orig_rate == target_rate:
        return wav
    import librosa

    return np.asarray(librosa.resample(wav, orig_sr=orig_rate, target_sr=target_rate, res_type="soxr_hq"), dtype=np.float64)


def fit_length(wav, length: int) -> np.ndarray:
    """Trim or zero-pad at the end to exactly `length` samples."""
    wav = np.asarray(wav).reshape(-1)
    if wav.shape[0] >= length:
        return wav[:length]
    return np.concatenate([wav, np.zeros(length - wav.shape[0], dtype=wav.dtype)])


# ---------------------------------------------------------------------------------------------------------
# time alignment


def _xcorr_peak(a: np.ndarray, b: np.ndarray, lo: int, hi: int) -> tuple[int, float]:
    """The lag in lo..hi (samples; positive: `b` is late) maximising sum b[n + lag] a[n], and the
    normalised correlation there (-1..1)."""
    from scipy.signal import correlate

    n = min(a.shape[0], b.shape[0])
    a, b = a[:n] - a[:n].mean(), b[:n] - b[:n].mean()
    norm = float(np.sqrt((a @ a) * (b @ b)))
    if norm == 0:
        return 0, 0.0
    xcorr = correlate(b, a, mode="full", method="fft")  # index k holds lag k - (n - 1)
    centre = n - 1
    first, last = max(0, centre + lo), min(xcorr.shape[0] - 1, centre + hi)
    k = int(np.argmax(xcorr[first : last + 1])) + first
    return k - centre, float(xcorr[k] / norm)


def _envelope(x: np.ndarray, sampling_rate: int) -> np.ndarray:
    """Amplitude envelope: |x| low-passed at 30 Hz (zero phase), at the full sample rate."""
    from scipy.signal import butter, sosfiltfilt

    sos = butter(4, 30.0, fs=sampling_rate, output="sos")
    return sosfiltfilt(sos, np.abs(x))


def estimate_delay(reference, degraded, sampling_rate: int = EVAL_RATE, max_delay_s: float = MAX_DELAY_S) -> int:
    """The delay of `degraded` behind `reference` in samples (negative: early), searched within
    +-`max_delay_s`; used to undo the fixed algorithmic delay of external codecs before comparing sample
    by sample.

    Two steps. (1) Coarse: cross-correlate the amplitude envelopes (|x| low-passed at 30 Hz). This finds
    the delay even for a parametric codec such as Codec 2, whose output does not follow the input
    waveform (it re-synthesises phases), so plain waveform cross-correlation peaks at random lags there.
    (2) Fine: cross-correlate the waveforms within +-1 ms of the coarse lag and take that peak when the
    waveforms really match there (normalised correlation >= 0.3, as for a waveform codec like Opus);
    otherwise keep the coarse lag.
    """
    ref, deg = _mono(reference, "reference"), _mono(degraded, "degraded")
    max_lag = int(round(max_delay_s * sampling_rate))
    fine = max(1, int(round(0.001 * sampling_rate)))
    if not np.any(ref - ref.mean()) or not np.any(deg - deg.mean()):
        return 0
    coarse, _ = _xcorr_peak(_envelope(ref, sampling_rate), _envelope(deg, sampling_rate), -max_lag, max_lag)
    lo, hi = max(-max_lag, coarse - fine), min(max_lag, coarse + fine)
    lag, corr = _xcorr_peak(ref, deg, lo, hi)
    return lag if corr >= 0.3 else coarse


def shift(degraded, delay: int, length: int) -> np.ndarray:
    """Undo a delay of `delay` samples (as :func:`estimate_delay` reports it) and fit to `length` samples."""
    deg = np.asarray(degraded).reshape(-1)
    if delay > 0:
        deg = deg[delay:]
    elif delay < 0:
        deg = np.concatenate([np.zeros(-delay, dtype=deg.dtype), deg])
    return fit_length(deg, length)


def time_align(reference, degraded, sampling_rate: int = EVAL_RATE, max_delay_s: float = MAX_DELAY_S) -> tuple[np.ndarray, int]:
    """`degraded` shifted by its estimated delay and fitted to the reference length; returns (aligned, delay)."""
    ref = _mono(reference, "reference")
    delay = estimate_delay(ref, degraded, sampling_rate, max_delay_s)
    return shift(_mono(degraded, "degraded"), delay, ref.shape[0]), delay


# ---------------------------------------------------------------------------------------------------------
# PESQ, STOI


def _pair(reference, degraded, *, audible: bool = False) -> tuple[np.ndarray, np.ndarray]:
    ref, deg = _mono(reference, "reference"), _mono(degraded, "degraded")
    n = min(ref.shape[0], deg.shape[0])
    ref, deg = ref[:n], deg[:n]
    if audible:  # PESQ divides by the peak: all-zero input would give NaN and warnings, not an error
        for name, x in (("reference", ref), ("degraded", deg)):
            if not np.any(x):
                raise ValueError(f"{name} signal is silent")
    return ref, deg


def pesq_wb(reference, degraded, sampling_rate: int = EVAL_RATE) -> float:
    """Wide-band PESQ (P.862.2, MOS-LQO) at 16 kHz; other rates are resampled first."""
    pesq = require("pesq", what="PESQ")
    ref, deg = _pair(resample(reference, sampling_rate, EVAL_RATE), resample(degraded, sampling_rate, EVAL_RATE), audible=True)
    return float(pesq.pesq(EVAL_RATE, ref, deg, "wb"))


def pesq_nb(reference, degraded, sampling_rate: int = EVAL_RATE) -> float:
    """Narrow-band PESQ (P.862, MOS-LQO) at 8 kHz; both signals are resampled to 8 kHz first."""
    pesq = require("pesq", what="PESQ")
    ref, deg = _pair(resample(reference, sampling_rate, NB_RATE), resample(degraded, sampling_rate, NB_RATE), audible=True)
    return float(pesq.pesq(NB_RATE, ref, deg, "nb"))


def stoi(reference, degraded, sampling_rate: int = EVAL_RATE, extended: bool = False) -> float:
    """STOI (0..1, higher is better; `extended=True` gives ESTOI)."""
    pystoi = require("pystoi", what="STOI")
    ref, deg = _pair(reference, degraded)
    return float(pystoi.stoi(ref, deg, sampling_rate, extended=extended))


# ---------------------------------------------------------------------------------------------------------
# speaker similarity

RESEMBLYZER_HINT = "pip install --no-deps resemblyzer  (after 'pip install webrtcvad-wheels'; --no-deps keeps out its 'typing' and 'webrtcvad' requirements)"


def speaker_available() -> bool:
    """Whether Resemblyzer can be imported (the speaker similarity metric is optional)."""
    try:
        _resemblyzer()
    except MissingDependency:
        return False
    return True


@lru_cache(maxsize=1)
def _resemblyzer():
    with warnings.catch_warnings():  # resemblyzer imports scipy.ndimage.morphology (deprecated)
        warnings.simplefilter("ignore", DeprecationWarning)
        require("webrtcvad", "webrtcvad-wheels", what="speaker similarity", hint=RESEMBLYZER_HINT)
        return require("resemblyzer", what="speaker similarity", hint=RESEMBLYZER_HINT)


@lru_cache(maxsize=1)
def voice_encoder():
    """The Resemblyzer speaker encoder on CPU, loaded once (its weights ship inside the package)."""
    return _resemblyzer().VoiceEncoder("cpu", verbose=False)


def speaker_embedding(wav, sampling_rate: int = EVAL_RATE) -> np.ndarray:
    """L2-normalised 256-dim Resemblyzer embedding of one utterance.

    Resemblyzer's own preprocessing (resample to 16 kHz, volume normalisation, long silences trimmed by a
    VAD) is applied; when the VAD finds under 0.5 s of speech (heavily distorted audio), the untrimmed,
    volume-normalised signal is embedded instead. Raises ValueError on silence.
    """
    rz = _resemblyzer()
    x = _mono(wav, "signal").astype(np.float32)
    if float(np.sqrt(np.mean(x.astype(np.float64) ** 2))) < 1e-6:
        raise ValueError("cannot embed silence")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        processed = rz.preprocess_wav(x, source_sr=sampling_rate)
        if processed.shape[0] < rz.sampling_rate // 2:
            target_dbfs = importlib.import_module("resemblyzer.hparams").audio_norm_target_dBFS
            processed = rz.normalize_volume(resample(x, sampling_rate, rz.sampling_rate), target_dbfs, increase_only=True)
        emb = np.asarray(voice_encoder().embed_utterance(np.asarray(processed, dtype=np.float32)), dtype=np.float64)
    norm = np.linalg.norm(emb)
    if not np.isfinite(emb).all() or norm == 0:
        raise ValueError("speaker embedding is not finite")
    return emb / norm


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


def speaker_similarity(reference, degraded, sampling_rate: int = EVAL_RATE) -> float:
    """Cosine similarity of the Resemblyzer embeddings of the two signals (1 = same voice)."""
    return cosine(speaker_embedding(reference, sampling_rate), speaker_embedding(degraded, sampling_rate))


__all__ = [
    "EVAL_RATE",
    "MAX_DELAY_S",
    "NB_RATE",
    "MissingDependency",
    "cosine",
    "estimate_delay",
    "fit_length",
    "mel_distance",
    "pesq_nb",
    "pesq_wb",
    "require",
    "resample",
    "shift",
    "si_sdr",
    "speaker_available",
    "speaker_embedding",
    "speaker_similarity",
    "stoi",
    "time_align",
]
