"""Build every dataset the recipes read, in order, with one command (README, Training, step 1):

    python -m training.data.prepare --shared ../shared/data/speech              # codec, TTS and ASR audio
    python -m training.data.prepare --shared ../shared/data/speech --tokenize   # + the codes TTS and ASR train on

Each step is one of the data modules (`build_manifests`, `fillets`, `sentences`, `synthesize`, `perturb`,
`revoice`) or `catcodec tokenize`, run in a subprocess. A step whose output is already complete is skipped, and the
synthesis and perturbation steps keep the files they already wrote, so an interrupted run resumes where it
stopped. A codes manifest already there is kept whichever codec made it: delete `NAME.codes.jsonl` to
tokenize again with another codec (`bench_asr.py` and the pipelines refuse codes of other codec weights).
`--only` picks what one model needs (`codec`, `tts`, `asr`); `--dry-run` prints the plan.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

# Debian packages the steps call (README, Training): synthetic English voices, game dialog, quotations.
APT_PACKAGES = ("espeak-ng flite festival festvox-us-slt-hts festvox-kallpc16k festvox-kdlpc16k festlex-cmu "
                "fillets-ng-data fillets-ng-data-cs fillets-ng-data-nl fortunes")


@dataclass(frozen=True)
class Step:
    """One command of the plan: `module` run as `python -m module args`, done once `output` exists."""

    name: str
    module: str
    args: tuple[str, ...]
    output: str  # the file the step writes last (relative paths: to the working directory)
    needs: tuple[str, ...] = ()  # programs it calls (checked before anything runs)
    used_by: tuple[str, ...] = ("codec", "tts", "asr")


def audio_steps(shared: Path, data: Path) -> list[Step]:
    """The audio and manifests, in dependency order (sentences reads the held-out speakers of build_manifests)."""
    m, s = data / "manifests", data / "sentences"
    synth = "training.data.synthesize"
    return [
        Step("manifests", "training.data.build_manifests", ("--shared", str(shared), "--out", str(m)),
             str(m / "val_speakers.txt")),
        Step("fillets", "training.data.fillets", ("--out", str(m / "fillets.jsonl")), str(m / "fillets.jsonl"),
             used_by=("codec",)),
        Step("synth", synth, ("--out", str(data / "synth"), "--sentences", "60"), str(data / "synth/SOURCE.txt"),
             ("espeak-ng", "flite", "text2wave"), ("codec",)),
        Step("sentences", "training.data.sentences", ("--shared", str(shared), "--out", str(s)),
             str(s / "SOURCE.txt"), used_by=("tts", "asr")),
        Step("synth_tts", synth, ("--out", str(data / "synth_tts"), "--sentences-file", str(s / "train.txt"),
                                  "--sentences", "400", "--val-sentences-file", str(s / "test.txt"),
                                  "--val-sentences", "60"),
             str(data / "synth_tts/SOURCE.txt"), ("espeak-ng", "flite", "text2wave"), ("tts", "asr")),
        Step("synth_fortunes", synth, ("--out", str(data / "synth_fortunes"), "--sentences-file",
                                       str(s / "fortunes.txt"), "--sentences", "600", "--voices", "train"),
             str(data / "synth_fortunes/SOURCE.txt"), ("espeak-ng", "flite", "text2wave"), ("asr",)),
        Step("synth_extra", synth, ("--out", str(data / "synth_extra"), "--sentences-file", str(s / "fortunes.txt"),
                                    "--first-sentence", "8400", "--sentences", "250", "--voices", "extra"),
             str(data / "synth_extra/SOURCE.txt"), ("espeak-ng", "flite", "text2wave"), ("asr",)),
        Step("synth_tts_speed", "training.data.perturb", (str(data / "synth_tts/train.jsonl"), "--factors", "0.9",
                                                          "1.1", "--alternate", "--out", str(data / "synth_tts_speed")),
             str(data / "synth_tts_speed/train.jsonl"), used_by=("asr",)),
        Step("synth_tts_revoiced", "training.data.revoice",
             (str(data / "synth_tts/train.jsonl"), "--variants", "0.8:1.1", "1.25:0.9", "1:1", "1.4:1.15",
              "--alternate", "--out", str(data / "synth_tts_revoiced")),
             str(data / "synth_tts_revoiced/train.jsonl"), used_by=("asr",)),
        Step("synth_fortunes_revoiced", "training.data.revoice",
             (str(data / "synth_fortunes/train.jsonl"), "--variants", "0.7:0.9", "1.15:1.05", "0.9:0.95", "1.3:1.2",
              "--alternate", "--out", str(data / "synth_fortunes_revoiced")),
             str(data / "synth_fortunes_revoiced/train.jsonl"), used_by=("asr",)),
    ]


# Manifests whose codes the TTS and ASR recipes read (configs/tts_small_cpu.yaml, configs/asr_small_cpu.yaml).
TOKENIZED = {
    "synth_tts/val.jsonl": ("tts", "asr"), "manifests/val.jsonl": ("tts", "asr"),
    "synth_tts/train.jsonl": ("tts", "asr"), "manifests/train.jsonl": ("tts", "asr"),
    "synth_tts_speed/train.jsonl": ("asr",), "synth_fortunes/train.jsonl": ("asr",), "synth_extra/train.jsonl": ("asr",),
    "synth_tts_revoiced/train.jsonl": ("asr",), "synth_fortunes_revoiced/train.jsonl": ("asr",),
}


def tokenize_steps(data: Path, model: str | None, threads: int, num_quantizers: int) -> list[Step]:
    """`catcodec tokenize` of each manifest the TTS / ASR recipes read (NAME.codes.jsonl beside it)."""
    steps = []
    for rel, used_by in TOKENIZED.items():
        manifest = data / rel
        args = ["tokenize", str(manifest), "--threads", str(threads), "--num-quantizers", str(num_quantizers)]
        if model:
            args += ["--model", model]
        steps.append(Step(f"tokenize {rel}", "catcodec", tuple(args),
                          str(manifest.with_name(manifest.stem + ".codes.jsonl")), used_by=used_by))
    return steps


def plan(shared: Path, data: Path, only: str | None = None, tokenize: bool = False, model: str | None = None,
         threads: int = 2, num_quantizers: int = 8) -> list[Step]:
    """The steps for `only` (None: every model), tokenization last when asked for (the codec step is never tokenized)."""
    steps = audio_steps(shared, data)
    if tokenize and only != "codec":
        steps += tokenize_steps(data, model, threads, num_quantizers)
    return [s for s in steps if only is None or only in s.used_by]


def missing_programs(steps: list[Step]) -> list[str]:
    """Programs the pending steps call that are not on PATH."""
    return sorted({p for s in steps for p in s.needs if shutil.which(p) is None})


def run(steps: list[Step], dry_run: bool = False) -> list[str]:
    """Run each step whose output is missing; returns the names of the steps it ran (or would run)."""
    pending = [s for s in steps if not Path(s.output).exists()]
    for s in steps:
        if s not in pending:
            print(f"[skip] {s.name}: {s.output} exists")
    missing = missing_programs(pending)
    if missing and not dry_run:
        raise SystemExit(f"missing programs: {', '.join(missing)}; install them with: apt-get install {APT_PACKAGES}")
    for s in pending:
        command = [sys.executable, "-m", s.module, *s.args]
        print(f"[{'plan' if dry_run else 'run'}] {s.name}: {' '.join(command)}", flush=True)
        if dry_run:
            continue
        start = time.monotonic()
        subprocess.run(command, check=True)
        print(f"[done] {s.name} in {time.monotonic() - start:.0f} s", flush=True)
    return [s.name for s in pending]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m training.data.prepare", description=__doc__.split("\n\n")[0])
    parser.add_argument("--shared", type=Path, default=Path("../shared/data/speech"), help="recorded speech folder")
    parser.add_argument("--data", type=Path, default=Path("data"), help="where the datasets go (default: data)")
    parser.add_argument("--only", choices=("codec", "tts", "asr"), default=None, help="the data of one model only")
    parser.add_argument("--tokenize", action="store_true", help="also cache the codec's codes for TTS / ASR")
    parser.add_argument("--model", default=None, help="codec for --tokenize (default: the bundled cat-small-16k)")
    parser.add_argument("--threads", type=int, default=2, help="threads of --tokenize (default: 2)")
    parser.add_argument("--num-quantizers", type=int, default=8, help="codebooks --tokenize keeps (default: 8)")
    parser.add_argument("--dry-run", action="store_true", help="print the steps that would run")
    args = parser.parse_args(argv)
    if not args.shared.is_dir():
        parser.error(f"--shared {args.shared} is not a folder (the recorded speech, e.g. ../shared/data/speech)")
    steps = plan(args.shared, args.data, args.only, args.tokenize, args.model, args.threads, args.num_quantizers)
    ran = run(steps, args.dry_run)
    print(f"{'would run' if args.dry_run else 'ran'} {len(ran)} of {len(steps)} steps")


if __name__ == "__main__":
    main()
