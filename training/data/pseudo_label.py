"""Transcripts for untranscribed speech from an offline recogniser: pseudo-labels (self-training, as in
"noisy student" ASR), so the recogniser can train on real voices that came without text. Here: the 238
LibriSpeech train-clean-100 speakers of `data/manifests/train.jsonl` (one clip each, 49 minutes, no
transcripts), read by PocketSphinx, which makes about 30-40 % word errors on the transcribed read speech of the
training set (LJSpeech 28.5 %, VCTK 39.5 %).

    python -m training.data.pseudo_label data/manifests/train.jsonl --sources librispeech_train_clean_100 \\
        --out data/librispeech_pseudo/train.jsonl

Only lines without a transcript are read; each output line is the input line with `text` set and
`text_source: "pocketsphinx"`, so a pseudo-label is never taken for a human one. Clips where the recogniser
finds fewer than `--min-words` words are left out (silence, music, a failed decode), as are unreadable clips
(warned about). OUT is rewritten every 20 clips and the clips it already holds are not read again, so an
interrupted run resumes.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable, Sequence

from tqdm import tqdm

from catcodec.audio import AudioError, load_audio

from .manifest import ManifestEntry, read_manifest, write_manifest

TEXT_SOURCE = "pocketsphinx"
RATE = 16000  # PocketSphinx's US English model
SAVE_EVERY = 20  # clips between writes of the output


def unlabelled(entries: Sequence[ManifestEntry], sources: Sequence[str] = ()) -> list[ManifestEntry]:
    """Entries without a transcript, only those whose `source` is in `sources` when any are named."""
    return [e for e in entries if not e.text and (not sources or e.extra.get("source") in sources)]


def pseudo_label(entries: Sequence[ManifestEntry], recognise: Callable[[str], str], min_words: int = 3,
                 done: dict[str, ManifestEntry] | None = None) -> list[ManifestEntry]:
    """`entries` with `text` from `recognise(audio_path)`; fewer than `min_words` words -> left out.
    `done` maps audio paths to entries labelled before (kept as they are, not read again)."""
    if min_words < 1:
        raise ValueError(f"min_words must be at least 1, got {min_words}")
    done = done or {}
    out = []
    for entry in entries:
        if entry.audio in done:
            out.append(done[entry.audio])
            continue
        text = " ".join(recognise(entry.audio).split())
        if len(text.split()) >= min_words:
            out.append(ManifestEntry(entry.audio, text, entry.speaker, entry.sample_rate, entry.duration,
                                     {**entry.extra, "text_source": TEXT_SOURCE}))
    return out


def pocketsphinx_reader() -> Callable[[str], str]:
    """A function audio path -> PocketSphinx's words (lower case), each clip read fresh at 16 kHz."""
    from catcodec.evaluation.asr import PocketsphinxASR

    asr = PocketsphinxASR()

    def read(path: str) -> str:
        try:
            wav = load_audio(path, RATE)
        except AudioError as e:  # one bad clip should not stop the rest
            tqdm.write(f"warning: {e}; left out", file=sys.stderr)
            return ""
        return asr.transcribe(wav)

    return read


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m training.data.pseudo_label", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("manifest", type=Path)
    parser.add_argument("--out", type=Path, required=True, help="the labelled manifest to write")
    parser.add_argument("--sources", nargs="+", default=(), metavar="SOURCE",
                        help="only lines whose `source` field is one of these (default: every unlabelled line)")
    parser.add_argument("--min-words", type=int, default=3, help="leave out clips read as fewer words (default 3)")
    args = parser.parse_args(argv)
    if args.min_words < 1:
        parser.error(f"--min-words must be at least 1, got {args.min_words}")

    todo = unlabelled(read_manifest(args.manifest), args.sources)
    if not todo:
        parser.error(f"{args.manifest} has no line without a transcript" +
                     (f" from {', '.join(args.sources)}" if args.sources else ""))
    done = {e.audio: e for e in read_manifest(args.out)} if args.out.exists() else {}
    recognise, labelled = pocketsphinx_reader(), []
    with tqdm(total=len(todo), desc="pseudo-label", unit="clip") as bar:
        for start in range(0, len(todo), SAVE_EVERY):  # written as it goes: an interrupted run resumes
            chunk = todo[start:start + SAVE_EVERY]
            labelled += pseudo_label(chunk, recognise, args.min_words, done)
            write_manifest(labelled, args.out)
            bar.update(len(chunk))
    minutes = sum(e.duration for e in labelled) / 60
    print(f"wrote {len(labelled)} of {len(todo)} clips ({minutes:.1f} min, {len({e.speaker for e in labelled})} "
          f"speakers) to {args.out}")


if __name__ == "__main__":
    main()
