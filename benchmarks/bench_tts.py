"""CAT-TTS on held-out sentences with held-out voices as prompts: intelligibility, voice, latency, speed.

    python benchmarks/bench_tts.py --model runs/tts_small_cpu/model [--sentences 12] [--threads 2]
        [--asr-model runs/asr_small_cpu/model] [--num-quantizers 8] [--audio-only-prompts] [--json out.json]

For each held-out voice of data/synth_tts/val.jsonl (voices and sentences never seen in training), one of its
clips (with its transcript) is the voice prompt and the model speaks `--sentences` held-out sentences that
the same voice also recorded. Prints:
- word (and character) error rate of PocketSphinx on the synthesised speech, on the voice's own recordings of
  the same sentences (for scale; PocketSphinx is weak on synthetic voices) and on those recordings passed through the
  codec at the same number of codebooks (the best the TTS could do with this codec), and, with --asr-model,
  CAT-ASR's too;
- Resemblyzer similarity of the output to the prompt voice (another clip of it) vs to the other held-out voices;
- time to first audio (text in -> first 80 ms chunk out, streaming) and real-time factor, medians;
- the share of the output's 80 ms frames that are speech (louder than -45 dBFS) and that share on the recordings.
`--audio-only-prompts` gives the prompts without their transcripts (the issue's optional transcript).
Not a test: figures depend on the machine.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

from asr.metrics import character_error_rate
from asr.segment import frame_energy_db
from catcodec.audio import load_audio
from catcodec.evaluation.asr import PocketsphinxASR, word_error_rate, normalize_text as normalize_for_scoring
from catcodec.evaluation.metrics import speaker_embedding
from tts.pipeline import TTSPipeline
from tts.text import normalize_text


def held_out_voices(manifest: Path) -> dict[str, list[dict]]:
    """speaker -> its manifest rows (audio paths made absolute)."""
    voices: dict[str, list[dict]] = defaultdict(list)
    for line in manifest.read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            row["audio"] = str((manifest.parent / row["audio"]).resolve())
            voices[row["speaker"]].append(row)
    return dict(voices)


def synthesise(tts: TTSPipeline, text: str, prompt: dict, args) -> tuple[np.ndarray, float, float]:
    """(audio, seconds to the first chunk, seconds in all), streaming."""
    start = time.perf_counter()
    first, chunks = None, []
    prompt_text = None if args.audio_only_prompts else prompt["text"]
    for chunk in tts.stream(text, prompt=prompt["audio"], prompt_text=prompt_text, num_quantizers=args.num_quantizers,
                            temperature=args.temperature, top_p=args.top_p, seed=args.seed, max_seconds=args.max_seconds):
        if first is None:
            first = time.perf_counter() - start
        chunks.append(chunk)
    total = time.perf_counter() - start
    audio = np.concatenate(chunks) if chunks else np.zeros(0, np.float32)
    return audio, first if first is not None else total, total


LOUD_DBFS = -45.0  # an 80 ms frame louder than this is speech, not a pause


def loud_share(audio: np.ndarray, hop: int) -> float:
    """Share of `hop`-sample frames louder than LOUD_DBFS (0 for empty audio)."""
    return float(np.mean(frame_energy_db(audio, hop) > LOUD_DBFS)) if audio.size else 0.0


def codec_roundtrip(tts: TTSPipeline, audio: np.ndarray, num_quantizers: int | None) -> np.ndarray:
    """`audio` encoded and decoded by the TTS's codec at `num_quantizers` (default: the TTS model's)."""
    k = num_quantizers or tts.model.config.num_quantizers
    with torch.inference_mode():
        codes = tts.codec.encode(torch.from_numpy(audio)[None, None], num_quantizers=k).audio_codes
        return tts.codec.decode(codes).audio_values.reshape(-1)[: audio.size].float().numpy()


def char_error_rate(refs: list[str], hyps: list[str]) -> float:
    """CER after the same normalisation as the WER: graded where a weak recogniser's WER is near 100 %."""
    return character_error_rate([normalize_for_scoring(r) for r in refs], [normalize_for_scoring(h) for h in hyps])


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


def similarities(audio: np.ndarray, rate: int, speaker: str, embeddings: dict[str, np.ndarray]) -> tuple[float, list[float]]:
    """Resemblyzer cosine similarity of `audio` to `speaker`'s voice, and to each other held-out voice."""
    emb = speaker_embedding(audio, rate)
    return cosine(emb, embeddings[speaker]), [cosine(emb, e) for s, e in embeddings.items() if s != speaker]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="a trained CAT-TTS folder")
    ap.add_argument("--codec", default=None, help="codec (default: the one the TTS model names)")
    ap.add_argument("--voices", type=Path, default=Path("data/synth_tts/val.jsonl"))
    ap.add_argument("--sentences", type=int, default=12, help="held-out sentences per voice")
    ap.add_argument("--asr-model", default=None, help="a trained CAT-ASR folder: its WER too")
    ap.add_argument("--asr-beam", type=int, default=4, help="CAT-ASR beam (its model card's setting)")
    ap.add_argument("--asr-ctc-weight", type=float, default=0.3, help="CAT-ASR joint CTC decoding weight")
    ap.add_argument("--num-quantizers", type=int, default=None)
    ap.add_argument("--temperature", type=float, default=0.8)
    ap.add_argument("--top-p", type=float, default=0.95)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-seconds", type=float, default=20.0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--audio-only-prompts", action="store_true", help="give the prompts without their transcripts")
    ap.add_argument("--out", type=Path, default=None, help="write the synthesised wavs here")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    tts = TTSPipeline.from_pretrained(args.model, codec=args.codec)
    rate = tts.sampling_rate
    sphinx = PocketsphinxASR()
    asr = None
    if args.asr_model:
        from asr.pipeline import ASRPipeline

        asr = ASRPipeline.from_pretrained(args.asr_model)  # the ASR hears the audio through its own codec
    voices = held_out_voices(args.voices)
    list(tts.stream("Warm up.", max_seconds=0.5))  # first-call costs (allocations, kernels) out of the timings

    refs, speakers, outs_sphinx, refs_sphinx, coded_sphinx, outs_asr, refs_asr = [], [], [], [], [], [], []
    first_audio, rtf, own_sim, other_sim, coded_own_sim, coded_other_sim = [], [], [], [], [], []
    loud, loud_reference, hop = [], [], tts.codec.config.hop_length
    embeddings = {s: speaker_embedding(load_audio(rows[1]["audio"], rate), rate) for s, rows in voices.items()}
    for speaker, rows in voices.items():
        prompt, spoken = rows[0], rows[2 : 2 + args.sentences]
        for row in spoken:
            audio, first, total = synthesise(tts, row["text"], prompt, args)
            if audio.size == 0:
                continue
            first_audio.append(first)
            rtf.append(total / (audio.size / rate))
            original = load_audio(row["audio"], rate)
            loud.append(loud_share(audio, hop))
            loud_reference.append(loud_share(original, hop))
            refs.append(normalize_text(row["text"]))  # numbers spelt out, as the model says them
            speakers.append(speaker)
            outs_sphinx.append(sphinx.transcribe(audio))
            refs_sphinx.append(sphinx.transcribe(original))
            coded = codec_roundtrip(tts, original, args.num_quantizers)
            coded_sphinx.append(sphinx.transcribe(coded))
            own, others = similarities(coded, rate, speaker, embeddings)
            coded_own_sim.append(own)
            coded_other_sim.extend(others)
            if asr is not None:
                outs_asr.append(asr(audio, sampling_rate=rate, beam=args.asr_beam, ctc_weight=args.asr_ctc_weight))
                refs_asr.append(asr(original, sampling_rate=rate, beam=args.asr_beam, ctc_weight=args.asr_ctc_weight))
            own, others = similarities(audio, rate, speaker, embeddings)
            own_sim.append(own)
            other_sim.extend(others)
            if args.out is not None:
                import soundfile as sf

                args.out.mkdir(parents=True, exist_ok=True)
                sf.write(args.out / f"{Path(row['audio']).stem}_tts.wav", audio, rate)

    result = {
        "utterances": len(refs),
        "voices": len(voices),
        "wer_pocketsphinx_tts": word_error_rate(refs, outs_sphinx),
        "wer_pocketsphinx_reference": word_error_rate(refs, refs_sphinx),
        "wer_pocketsphinx_reference_through_codec": word_error_rate(refs, coded_sphinx),
        "cer_pocketsphinx_tts": char_error_rate(refs, outs_sphinx),
        "cer_pocketsphinx_reference": char_error_rate(refs, refs_sphinx),
        "cer_pocketsphinx_reference_through_codec": char_error_rate(refs, coded_sphinx),
        "similarity_to_prompt_voice": float(np.mean(own_sim)),
        "similarity_to_other_voices": float(np.mean(other_sim)),
        "reference_through_codec_similarity_to_own_voice": float(np.mean(coded_own_sim)),
        "reference_through_codec_similarity_to_other_voices": float(np.mean(coded_other_sim)),
        "time_to_first_audio_s_median": float(np.median(first_audio)),
        "rtf_median": float(np.median(rtf)),
        "threads": args.threads,
        "audio_only_prompts": args.audio_only_prompts,
        "speech_frame_share_tts": float(np.mean(loud)),
        "speech_frame_share_reference": float(np.mean(loud_reference)),
        # what PocketSphinx heard, per utterance: for paired comparisons of two runs (same seed, same sentences)
        "per_utterance": [{"speaker": sp, "text": ref, "pocketsphinx_tts": out, "pocketsphinx_reference": rec,
                           "pocketsphinx_reference_through_codec": coded}
                          for sp, ref, out, rec, coded in zip(speakers, refs, outs_sphinx, refs_sphinx, coded_sphinx)],
    }
    if asr is not None:
        result["wer_cat_asr_tts"] = word_error_rate(refs, outs_asr)
        result["wer_cat_asr_reference"] = word_error_rate(refs, refs_asr)
        result["cer_cat_asr_tts"] = char_error_rate(refs, outs_asr)
        result["cer_cat_asr_reference"] = char_error_rate(refs, refs_asr)
    given = "without" if args.audio_only_prompts else "with"
    print(f"\n{len(refs)} utterances: {args.sentences} held-out sentences x {len(voices)} held-out voices as prompts ({given} transcripts)")
    print(f"WER PocketSphinx   TTS {100 * result['wer_pocketsphinx_tts']:.1f} %   reference voices {100 * result['wer_pocketsphinx_reference']:.1f} %"
          f"   reference voices through the codec {100 * result['wer_pocketsphinx_reference_through_codec']:.1f} %")
    if asr is not None:
        print(f"WER CAT-ASR        TTS {100 * result['wer_cat_asr_tts']:.1f} %   reference voices {100 * result['wer_cat_asr_reference']:.1f} %")
    print(f"CER PocketSphinx   TTS {100 * result['cer_pocketsphinx_tts']:.1f} %   reference voices {100 * result['cer_pocketsphinx_reference']:.1f} %"
          f"   reference voices through the codec {100 * result['cer_pocketsphinx_reference_through_codec']:.1f} %")
    if asr is not None:
        print(f"CER CAT-ASR        TTS {100 * result['cer_cat_asr_tts']:.1f} %   reference voices {100 * result['cer_cat_asr_reference']:.1f} %")
    print(f"speaker similarity to the prompt voice {result['similarity_to_prompt_voice']:.3f}, to other voices {result['similarity_to_other_voices']:.3f}"
          f"   (reference through the codec: {result['reference_through_codec_similarity_to_own_voice']:.3f} / "
          f"{result['reference_through_codec_similarity_to_other_voices']:.3f})")
    print(f"time to first audio {1000 * result['time_to_first_audio_s_median']:.0f} ms (median), RTF {result['rtf_median']:.3f} ({args.threads} threads)")
    print(f"speech frames (80 ms louder than {LOUD_DBFS:.0f} dBFS): TTS {100 * result['speech_frame_share_tts']:.0f} %, "
          f"recordings {100 * result['speech_frame_share_reference']:.0f} %")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
