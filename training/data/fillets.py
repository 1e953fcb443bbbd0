"""Manifest of the real Czech and Dutch voice acting shipped in Debian's fillets-ng-data-cs / -nl packages.

    apt-get install fillets-ng-data-cs fillets-ng-data-nl
    python -m training.data.fillets --out data/manifests/fillets.jsonl

About 3 hours of expressive speech by several actors (Fish Fillets NG game data, GPL-2: /usr/share/doc/fillets-ng-data/copyright). File names look like
`<level>-<character>-<line>.ogg`; the speaker is language + character. Transcripts are left out (they sit in
Lua scripts); the codec does not need them.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import soundfile as sf
from tqdm.auto import tqdm

from .manifest import ManifestEntry, write_manifest

DEFAULT_ROOT = Path("/usr/share/games/fillets-ng/sound")


def scan(root: Path, languages: tuple[str, ...] = ("cs", "nl")) -> list[ManifestEntry]:
    files = sorted(p for lang in languages for p in root.glob(f"*/{lang}/*.ogg"))
    entries = []
    for path in tqdm(files, desc="fillets", unit="file"):
        parts = path.stem.split("-")
        character = parts[1] if len(parts) > 2 else "narrator"
        lang = path.parent.name
        try:
            info = sf.info(str(path))
        except Exception:  # an unreadable file is simply left out of the manifest
            continue
        if info.frames == 0:
            continue
        entries.append(
            ManifestEntry(
                audio=str(path),
                text=None,
                speaker=f"fillets-{lang}-{character}",
                sample_rate=info.samplerate,
                duration=info.frames / info.samplerate,
                extra={"source": f"fillets-ng-data-{lang}", "language": lang, "level": path.parent.parent.name},
            )
        )
    return entries


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", type=Path, default=DEFAULT_ROOT)
    ap.add_argument("--out", type=Path, default=Path("data/manifests/fillets.jsonl"))
    args = ap.parse_args(argv)
    if not args.root.is_dir():
        print(f"{args.root} not found: apt-get install fillets-ng-data-cs fillets-ng-data-nl")
        return 1
    entries = scan(args.root)
    write_manifest(entries, args.out, relative_paths=False)
    minutes = sum(e.duration for e in entries) / 60
    print(f"wrote {args.out}: {len(entries)} clips, {minutes:.1f} minutes, {len({e.speaker for e in entries})} speakers")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
