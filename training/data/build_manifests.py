"""Combine the speech sets under a shared folder (each `*/manifest.jsonl` + `SOURCE.txt`) into one
manifest with absolute paths and a speaker-disjoint train/val split, plus a LICENSES.md.

    python -m training.data.build_manifests --shared ../shared/data/speech --out data/manifests
"""

from __future__ import annotations

import argparse
import random
from dataclasses import dataclass
from pathlib import Path

from .manifest import ManifestEntry, read_manifest, split_by_speaker, write_manifest

ALWAYS_HELD_OUT = ("p225",)  # VCTK p225 is the project's bundled example: never train on it
LIBRISPEECH_VAL_FRACTION = 0.05


@dataclass
class Source:
    """One shared speech set: its folder name, entries (tagged with `source`) and SOURCE.txt lines."""

    name: str
    entries: list[ManifestEntry]
    source_lines: list[str]

    def field(self, prefix: str) -> str | None:
        """The SOURCE.txt line starting with `prefix`, without it."""
        return next((ln[len(prefix):].strip() for ln in self.source_lines if ln.startswith(prefix)), None)


def load_sources(shared: Path) -> list[Source]:
    """Every `<shared>/*/manifest.jsonl` with at least one entry, sorted by folder name."""
    sources = []
    for manifest in sorted(shared.glob("*/manifest.jsonl")):
        name = manifest.parent.name
        try:
            entries = read_manifest(manifest)
        except (OSError, ValueError) as e:
            print(f"skipping {name}: {e}")
            continue
        if not entries:
            print(f"skipping {name}: no utterances")
            continue
        for e in entries:
            e.extra = {"source": name, **e.extra}
        info = manifest.parent / "SOURCE.txt"
        lines = info.read_text(encoding="utf-8").splitlines() if info.exists() else []
        sources.append(Source(name, entries, lines))
    return sources


def default_val_speakers(sources: list[Source], seed: int = 0) -> list[str]:
    """VCTK p225, a seeded ~5% of LibriSpeech speakers and one seeded FSDD speaker."""
    held = list(ALWAYS_HELD_OUT)
    rng = random.Random(seed)
    for src in sources:
        speakers = sorted({e.speaker for e in src.entries})
        if "librispeech" in src.name.lower() and len(speakers) > 1:
            held += rng.sample(speakers, max(1, round(len(speakers) * LIBRISPEECH_VAL_FRACTION)))
        elif "fsdd" in src.name.lower() and len(speakers) > 1:
            held.append(rng.choice(speakers))
    return held


def _stats(entries: list[ManifestEntry]) -> tuple[int, float, int]:
    """(utterances, minutes, speakers)."""
    return len(entries), sum(e.duration for e in entries) / 60.0, len({e.speaker for e in entries})


def summary_table(sources: list[Source], train: list[ManifestEntry], val: list[ManifestEntry]) -> str:
    """Utterances / minutes / speakers per source for all, train and val, plus transcribed utterances."""
    head = f"{'source':<28} {'all utt':>7} {'min':>7} {'spk':>4} | {'train':>5} {'min':>7} {'spk':>4} | " \
           f"{'val':>4} {'min':>6} {'spk':>4} | {'text':>5}"
    rows = [head, "-" * len(head)]

    def row(name: str, a: list[ManifestEntry], t: list[ManifestEntry], v: list[ManifestEntry]) -> str:
        (an, am, asp), (tn, tm, tsp), (vn, vm, vsp) = _stats(a), _stats(t), _stats(v)
        texted = sum(1 for e in a if e.text)
        return (f"{name:<28} {an:>7} {am:>7.2f} {asp:>4} | {tn:>5} {tm:>7.2f} {tsp:>4} | "
                f"{vn:>4} {vm:>6.2f} {vsp:>4} | {texted:>5}")

    for src in sources:
        pick = lambda es: [e for e in es if e.extra.get("source") == src.name]  # noqa: E731
        rows.append(row(src.name, src.entries, pick(train), pick(val)))
    rows.append("-" * len(head))
    rows.append(row("total", train + val, train, val))
    return "\n".join(rows)


def licenses_markdown(sources: list[Source]) -> str:
    """LICENSES.md: each source's repository and license line, copied from its SOURCE.txt."""
    out = ["# Licenses of the speech data in these manifests", "",
           "Copied from each source's SOURCE.txt. Check them before redistributing audio or models trained on it.", ""]
    for src in sources:
        out.append(f"## {src.name}")
        out.append(f"- Source: {src.field('Source repository:') or 'not stated'}")
        out.append(f"- License / provenance: {src.field('License / provenance:') or 'not stated (no SOURCE.txt line)'}")
        out.append("")
    return "\n".join(out)


WIDEBAND_HZ = 16000


def build(shared: Path, out: Path, val_speakers: list[str] | None = None, seed: int = 0) -> str:
    """Write all.jsonl, train.jsonl, val.jsonl and LICENSES.md into `out`; return the summary table."""
    sources = load_sources(shared)
    if not sources:
        raise SystemExit(f"no manifest.jsonl with utterances under {shared}")
    entries = [e for src in sources for e in src.entries]
    held = default_val_speakers(sources, seed) if val_speakers is None else list(val_speakers)
    known = {e.speaker for e in entries}
    missing = [s for s in held if s not in known]
    if missing:
        print(f"note: held-out speakers not found in any source: {', '.join(missing)}")
    train, val = split_by_speaker(entries, val_speakers=held)
    out.mkdir(parents=True, exist_ok=True)
    for name, part in (("all", entries), ("train", train), ("val", val)):
        write_manifest(part, out / f"{name}.jsonl", relative_paths=False)
    # Recipes weight sources by bandwidth: 8 kHz recordings (FSDD) are many short clips that would
    # otherwise dominate an item-weighted mix and teach a 16 kHz codec nothing above 4 kHz.
    wide = [e for e in train if e.sample_rate >= WIDEBAND_HZ]
    narrow = [e for e in train if e.sample_rate < WIDEBAND_HZ]
    write_manifest(wide, out / "train_wideband.jsonl", relative_paths=False)
    write_manifest(narrow, out / "train_narrowband.jsonl", relative_paths=False)
    write_manifest([e for e in val if e.sample_rate >= WIDEBAND_HZ], out / "val_wideband.jsonl", relative_paths=False)
    (out / "LICENSES.md").write_text(licenses_markdown(sources), encoding="utf-8")
    (out / "val_speakers.txt").write_text("".join(f"{s}\n" for s in sorted(set(held) & known)), encoding="utf-8")
    return summary_table(sources, train, val)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shared", type=Path, default=Path("../shared/data/speech"),
                        help="folder holding one sub-folder per speech set (manifest.jsonl + SOURCE.txt)")
    parser.add_argument("--out", type=Path, default=Path("data/manifests"))
    parser.add_argument("--val-speakers", nargs="+", default=None,
                        help="held-out speakers (replaces the default: p225, ~5%% of LibriSpeech, one FSDD)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the default held-out speaker draw")
    args = parser.parse_args(argv)
    table = build(Path(args.shared).absolute(), Path(args.out), args.val_speakers, args.seed)
    print(table)
    print(f"wrote {args.out}/all.jsonl, train.jsonl (= train_wideband.jsonl + train_narrowband.jsonl), "
          "val.jsonl (val_wideband.jsonl: without 8 kHz sources), val_speakers.txt, LICENSES.md")


if __name__ == "__main__":
    main()
