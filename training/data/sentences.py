"""English sentences for TTS/ASR synthesis: the English dialog lines of Debian's fillets-ng game data, the
quotations of Debian's BSD fortune files (fortunes, fortunes-min), the transcripts of the shared speech sets (without any text a held-out speaker says) and synthesize.py's built-in
sentences, cleaned, deduplicated and split by a hash of the text into train (~95%) and held-out test (~5%).

    apt-get install fillets-ng-data fortunes
    python -m training.data.build_manifests --shared ../shared/data/speech --out data/manifests
    python -m training.data.sentences --shared ../shared/data/speech --out data/sentences

Writes train.txt and test.txt (one sentence per line, in hash order), fortunes.txt (the fortune sentences, all
training text, kept apart so that train.txt and the data synthesised from it stay as they were before fortunes
were added) and SOURCE.txt (counts and licenses). Transcripts, built-in sentences and fortunes always go to
train; the test sentences come from the game dialogs only.
"""

from __future__ import annotations

import argparse
import hashlib
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from .build_manifests import load_sources
from .synthesize import SENTENCES

FILLETS_SCRIPTS = Path("/usr/share/games/fillets-ng/script")
FORTUNES = Path("/usr/share/games/fortunes")
# Drawings, IRC logs, program code and lists of made-up words read badly; every other file is prose or verse.
FORTUNES_SKIPPED = frozenset({"art", "ascii-art", "debian", "linux", "linuxcookie", "perl", "translate-me",
                              "zippy", "knghtbrd"})
FORTUNES_LICENSE = "BSD (Debian packages fortunes / fortunes-min, fortune-mod 1.99.1; /usr/share/doc/fortunes/copyright)"
FILLETS_LICENSE = ("GPL-2 (Fish Fillets NG game data, Debian package fillets-ng-data; "
                   "/usr/share/doc/fillets-ng-data/copyright)")
BUILTIN_LICENSE = "the project's own sentences (training.data.synthesize.SENTENCES; Apache-2.0 like the project)"
MIN_WORDS, MAX_WORDS, SPLIT_WORDS = 3, 30, 25
TEST_FRACTION, MIN_TEST = 0.05, 100

# dialogId("id", "font", "text"), the text possibly on the next line, with Lua string escapes
_LUA_STRING = r'"((?:[^"\\\n]|\\.)*)"'
_DIALOG = re.compile(rf"dialogId\(\s*{_LUA_STRING}\s*,\s*{_LUA_STRING}\s*,\s*{_LUA_STRING}\s*\)")
_LUA_ESCAPES = {"n": " ", "t": " ", '"': '"', "'": "'", "\\": "\\"}
_TO_ASCII = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u2032": "'", "`": "'",
                           "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u201f": '"', "\u2033": '"',
                           "\u00ab": '"', "\u00bb": '"', "\u2010": "-", "\u2011": "-", "\u2012": "-",
                           "\u2013": "-", "\u2014": " - ", "\u2015": " - ", "\u2212": "-", "\u2026": "...",
                           "\u00a0": " "})
_ALLOWED = re.compile(r"[A-Za-z0-9 .,?!'\-:;\"]+")
_WORD = re.compile(r"[A-Za-z0-9]")
_SENTENCE_END = re.compile(r"[.?!]['\"]?$")
_CLAUSE_END = re.compile(r"[,;:]['\"]?$")
_CONJUNCTIONS = frozenset("and but or so because which who whom whose when while where although though until "
                          "unless since whereas then yet".split())


@dataclass
class Candidate:
    """One cleaned sentence, the source it came from, and whether it must stay in train (already training
    text elsewhere)."""

    text: str
    source: str
    pinned: bool = False


def parse_dialogs(text: str) -> list[str]:
    """The spoken strings of the `dialogId("id", "font", "text")` calls in a dialogs_*.lua file."""
    lines = []
    for match in _DIALOG.finditer(text):
        spoken = re.sub(r"\\(.)", lambda m: _LUA_ESCAPES.get(m.group(1), "\\" + m.group(1)), match.group(3))
        if spoken.strip():
            lines.append(spoken)
    return lines


def fillets_lines(scripts: Path) -> list[str]:
    """English dialog lines of every `<scripts>/*/dialogs_en.lua`, levels in name order."""
    return [line for path in sorted(scripts.glob("*/dialogs_en.lua"))
            for line in parse_dialogs(path.read_text(encoding="utf-8", errors="replace"))]


def parse_fortunes(text: str) -> list[str]:
    """The entries of a strfile fortune file (separated by lines holding only "%"), each joined into one line
    without its attribution ("-- Author" and anything after it) or indented verse layout."""
    entries = []
    for entry in re.split(r"^%\s*$", text, flags=re.MULTILINE):
        entry = re.split(r"(?m)^\s*--", entry)[0]
        joined = " ".join(entry.split())
        if joined:
            entries.append(joined)
    return entries


def fortune_lines(folder: Path) -> list[str]:
    """Entries of every fortune file in `folder` except FORTUNES_SKIPPED, files in name order."""
    return [line for path in sorted(folder.iterdir())
            if path.is_file() and not path.suffix and path.name not in FORTUNES_SKIPPED
            for line in parse_fortunes(path.read_text(encoding="utf-8", errors="replace"))]


def normalise(text: str) -> str:
    """ASCII quotes, apostrophes, dashes and ellipses, accents folded (café -> cafe), whitespace collapsed."""
    text = unicodedata.normalize("NFKD", text.translate(_TO_ASCII))
    text = "".join(c for c in text if not unicodedata.combining(c))
    return " ".join(text.split())


def words(text: str) -> list[str]:
    """Whitespace-separated tokens holding a letter or digit (a lone "-" or "..." is not a word)."""
    return [w for w in text.split() if _WORD.search(w)]


def key(text: str) -> str:
    """Comparison key: lower-case words without punctuation (dedup, held-out matching and the split hash)."""
    return " ".join(re.findall(r"[a-z0-9']+", text.lower()))


def sentence_case(text: str) -> str:
    """Lower-case an all-capitals (or all-lower-case) transcript, keeping the pronoun I upper case; text
    with mixed case is returned as is."""
    if any(c.islower() for c in text) and any(c.isupper() for c in text):
        return text
    return re.sub(r"\bi\b", "I", text.lower())


def finish(piece: str) -> str:
    """Drop leading punctuation ("... so", "- but": not spoken, and festival's kal_diphone crashes on a leading
    "..."), capitalise the first letter and end with a full stop instead of a dangling , ; : or dash."""
    piece = re.sub(r"^[^A-Za-z0-9'\"]+", "", piece.strip())
    piece = re.sub(r"[\s,;:\-]+(['\"]?)$", r"\1", piece).strip()
    first = next((i for i, c in enumerate(piece) if c.isalpha()), None)
    if first is not None:
        piece = piece[:first] + piece[first].upper() + piece[first + 1:]
    return re.sub(r"([A-Za-z0-9])(['\"]?)$", r"\1.\2", piece)


def _cut_priority(tokens: list[str], i: int) -> int:
    """How natural a cut before tokens[i] is: 0 sentence end, 1 clause punctuation, 2 conjunction, 3 none."""
    if _SENTENCE_END.search(tokens[i - 1]):
        return 0
    if _CLAUSE_END.search(tokens[i - 1]) or tokens[i] in ("-", "--"):
        return 1
    return 2 if tokens[i].lower().strip("\"'") in _CONJUNCTIONS else 3


def split_long(text: str, max_words: int = SPLIT_WORDS, min_words: int = MIN_WORDS) -> list[str]:
    """Pieces of at most `max_words` tokens, cut at the most natural boundary nearest the middle (sentence end,
    then clause punctuation, then before a conjunction, then anywhere), recursively."""
    tokens = text.split()
    if len(tokens) <= max_words:
        return [text]
    lo, hi = min_words, len(tokens) - min_words
    if lo > hi:  # only when max_words < 2 * min_words
        lo = hi = len(tokens) // 2
    cut = min(range(lo, hi + 1), key=lambda i: (_cut_priority(tokens, i), abs(i - len(tokens) / 2)))
    return (split_long(" ".join(tokens[:cut]), max_words, min_words)
            + split_long(" ".join(tokens[cut:]), max_words, min_words))


def prepare(text: str, recase: bool = False, max_words: int = SPLIT_WORDS) -> list[str]:
    """Normalised, optionally sentence-cased text split into finished pieces of at most `max_words` words."""
    text = normalise(text)
    if recase:
        text = sentence_case(text)
    return [finish(p) for p in split_long(text, max_words)]


def acceptable(text: str, min_words: int = MIN_WORDS, max_words: int = MAX_WORDS) -> bool:
    """Only letters, digits, space and .,?!'-:;" characters, and `min_words`..`max_words` words."""
    return bool(_ALLOWED.fullmatch(text)) and min_words <= len(words(text)) <= max_words


def read_val_speakers(path: Path) -> set[str]:
    """Held-out speaker ids, one per line (data/manifests/val_speakers.txt from build_manifests)."""
    if not path.exists():
        raise SystemExit(f"{path} not found: run python -m training.data.build_manifests first "
                         "(it writes the held-out speakers)")
    return {ln.strip() for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()}


def transcripts(shared: Path, held: set[str]) -> tuple[dict[str, list[str]], list[str], dict[str, str]]:
    """(train-speaker transcripts per shared set, every held-out speaker transcript, license per set)."""
    kept: dict[str, list[str]] = {}
    held_out: list[str] = []
    licenses: dict[str, str] = {}
    for src in load_sources(shared):
        kept[src.name] = [e.text for e in src.entries if e.text and e.speaker not in held]
        held_out += [e.text for e in src.entries if e.text and e.speaker in held]
        licenses[src.name] = src.field("License / provenance:") or "not stated"
    return kept, held_out, licenses


def collect(raw: dict[str, list[str]], recase: set[str], pinned: set[str], banned: set[str],
            counts: dict[str, dict[str, int]]) -> list[Candidate]:
    """Clean every source's lines in order, dropping unacceptable lines, banned keys (held-out text) and
    repeats (the first occurrence wins; it is pinned if any copy comes from a pinned source)."""
    seen: dict[str, Candidate] = {}
    for source, lines in raw.items():
        c = counts.setdefault(source, {"lines": 0, "pieces": 0, "kept": 0, "held_out_text": 0, "unique": 0})
        c["lines"] += len(lines)
        for line in lines:
            for piece in prepare(line, recase=source in recase):
                c["pieces"] += 1
                k = key(piece)
                if not acceptable(piece):
                    continue
                if k in banned:
                    c["held_out_text"] += 1
                    continue
                c["kept"] += 1
                if k in seen:
                    seen[k].pinned |= source in pinned
                    continue
                c["unique"] += 1
                seen[k] = Candidate(piece, source, source in pinned)
    return list(seen.values())


def hash_fraction(text: str) -> float:
    """A stable number in [0, 1) from the sentence's key (sha256), independent of run and platform."""
    return int.from_bytes(hashlib.sha256(key(text).encode()).digest()[:8], "big") / 2 ** 64


def split(candidates: list[Candidate], fraction: float = TEST_FRACTION,
          min_test: int = MIN_TEST) -> tuple[list[Candidate], list[Candidate]]:
    """(train, test), each in hash order: test holds the unpinned sentences whose hash fraction is below
    `fraction`, topped up with the next-lowest hashes to at least `min_test`."""
    ordered = sorted(candidates, key=lambda c: (hash_fraction(c.text), c.text))
    free = [c for c in ordered if not c.pinned]
    if len(free) <= min_test:
        raise SystemExit(f"only {len(free)} sentences can be held out; need more than {min_test} (--min-test)")
    count = max(min_test, sum(1 for c in free if hash_fraction(c.text) < fraction))
    test = free[:count]
    chosen = {id(c) for c in test}
    return [c for c in ordered if id(c) not in chosen], test


def source_txt(counts: dict[str, dict[str, int]], licenses: dict[str, str], train: list[Candidate],
               test: list[Candidate], held_speakers: int) -> str:
    """SOURCE.txt: what each source gave, how the corpus was cleaned and split, and the licenses."""
    out = ["Source repository: none; built locally by training.data.sentences.",
           f"Sentences: {len(train) + len(test)} (train {len(train)}, test {len(test)}); split by a sha256 "
           "hash of the lower-cased words; transcripts, built-in sentences and fortunes (in fortunes.txt) always in train.",
           f"Cleaning: ASCII quotes/dashes, accents folded, only letters, digits, space and .,?!'-:;\" kept, "
           f"{MIN_WORDS}-{MAX_WORDS} words, long lines split at <= {SPLIT_WORDS} words, case-insensitive dedup; "
           f"all text of the {held_speakers} held-out speakers removed.", "",
           f"{'source':<34} {'lines':>6} {'pieces':>6} {'kept':>6} {'heldtxt':>7} {'unique':>6} {'train':>6} "
           f"{'test':>5}  license"]
    for name, c in counts.items():
        tr = sum(1 for s in train if s.source == name)
        te = sum(1 for s in test if s.source == name)
        out.append(f"{name:<34} {c['lines']:>6} {c['pieces']:>6} {c['kept']:>6} {c['held_out_text']:>7} "
                   f"{c['unique']:>6} {tr:>6} {te:>5}  {licenses.get(name, 'not stated')}")
    return "\n".join(out) + "\n"


def build(shared: Path, out: Path, val_speakers: Path, scripts: Path = FILLETS_SCRIPTS,
          fraction: float = TEST_FRACTION, min_test: int = MIN_TEST, fortunes: Path = FORTUNES) -> str:
    """Write train.txt, test.txt and SOURCE.txt into `out`; return SOURCE.txt's text."""
    held = read_val_speakers(val_speakers)
    raw: dict[str, list[str]] = {}
    licenses: dict[str, str] = {}
    if scripts.is_dir():
        raw["fillets-ng-data"] = fillets_lines(scripts)
        licenses["fillets-ng-data"] = FILLETS_LICENSE
    else:
        print(f"{scripts} not found (apt-get install fillets-ng-data); skipping the game dialogs")
    kept, held_out, set_licenses = transcripts(shared, held)
    for name, lines in kept.items():
        raw[f"transcripts:{name}"] = lines
        licenses[f"transcripts:{name}"] = set_licenses[name]
    raw["builtin"] = list(SENTENCES)
    licenses["builtin"] = BUILTIN_LICENSE
    if fortunes.is_dir():  # last, so a sentence also found elsewhere keeps its earlier source and file
        raw["fortunes"] = fortune_lines(fortunes)
        licenses["fortunes"] = FORTUNES_LICENSE
    else:
        print(f"{fortunes} not found (apt-get install fortunes); skipping the fortune quotations")
    banned = {key(p) for t in held_out for p in prepare(t, recase=True)} | {key(normalise(t)) for t in held_out}
    recase = {name for name in raw if name.startswith("transcripts:")}
    pinned = recase | {"builtin", "fortunes"}
    counts: dict[str, dict[str, int]] = {}
    candidates = collect(raw, recase, pinned, banned, counts)
    train, test = split(candidates, fraction, min_test)
    out.mkdir(parents=True, exist_ok=True)
    parts = {"train": [c for c in train if c.source != "fortunes"], "test": test,
             "fortunes": [c for c in train if c.source == "fortunes"]}
    for name, part in parts.items():
        (out / f"{name}.txt").write_text("".join(c.text + "\n" for c in part), encoding="utf-8")
    info = source_txt(counts, licenses, train, test, len(held))
    (out / "SOURCE.txt").write_text(info, encoding="utf-8")
    return info


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shared", type=Path, default=Path("../shared/data/speech"),
                        help="folder holding one sub-folder per speech set (manifest.jsonl + SOURCE.txt)")
    parser.add_argument("--out", type=Path, default=Path("data/sentences"))
    parser.add_argument("--val-speakers", type=Path, default=Path("data/manifests/val_speakers.txt"),
                        help="held-out speakers whose text must not appear (written by build_manifests)")
    parser.add_argument("--fillets", type=Path, default=FILLETS_SCRIPTS, help="fillets-ng script folder")
    parser.add_argument("--fortunes", type=Path, default=FORTUNES, help="fortune file folder")
    parser.add_argument("--test-fraction", type=float, default=TEST_FRACTION)
    parser.add_argument("--min-test", type=int, default=MIN_TEST, help="at least this many test sentences")
    args = parser.parse_args(argv)
    print(build(Path(args.shared).absolute(), args.out, args.val_speakers, args.fillets,
                args.test_fraction, args.min_test, args.fortunes), end="")
    print(f"wrote {args.out}/train.txt, test.txt, fortunes.txt, SOURCE.txt")


if __name__ == "__main__":
    main()
