"""Synthetic English speech with exact transcripts from Debian's espeak-ng, flite and festival, one speaker per
voice/variant, resampled to 16 kHz mono FLAC with a manifest and a speaker-disjoint train/val split.

    apt-get install espeak-ng flite festival festvox-us-slt-hts festvox-kallpc16k festlex-cmu
    python -m training.data.synthesize --out data/synth --sentences 200

With the sentence corpus of training.data.sentences, train voices read train sentences and held-out voices
read held-out test sentences (so no evaluation text is trained on):

    python -m training.data.synthesize --out data/synth_tts --sentences-file data/sentences/train.txt \
        --sentences 400 --val-sentences-file data/sentences/test.txt --val-sentences 60
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import librosa
import numpy as np
import soundfile as sf
from tqdm import tqdm

from .manifest import ManifestEntry, speaker_folder, write_manifest

SAMPLE_RATE = 16000
INSTALL_HINT = ("apt-get install espeak-ng flite festival festvox-us-slt-hts festvox-kallpc16k festlex-cmu"
                " festvox-kdlpc16k")
COMMANDS = {"espeak-ng": "espeak-ng", "flite": "flite", "festival": "text2wave"}  # tool -> executable
FESTIVAL_VOICES = Path("/usr/share/festival/voices")  # <language>/<voice name>/ per installed festival voice
PEAK = 0.95  # written files never exceed this


@dataclass(frozen=True)
class Voice:
    """One synthetic speaker: a tool, its voice name, the extra arguments that make the variant, and
    whether it is held out for validation."""

    tool: str  # "espeak-ng", "flite" or "festival"
    voice: str
    variant: str
    args: tuple[str, ...] = ()
    val: bool = False
    extra: bool = False  # in EXTRA_VOICES: more training speakers for ASR, outside the default set

    @property
    def group(self) -> str:
        """"train" or "val" for the default voices, "extra" for EXTRA_VOICES (training voices too)."""
        return "extra" if self.extra else ("val" if self.val else "train")

    @property
    def speaker(self) -> str:
        return f"{self.tool}:{self.voice}:{self.variant}"

    @property
    def slug(self) -> str:
        """A folder name for the speaker's files."""
        return speaker_folder(self.speaker)


def _espeak(voice: str, speed: int, pitch: int, val: bool = False) -> Voice:
    # -a 70 (default 100) leaves headroom: at 100 espeak-ng output can reach full scale and clip
    return Voice("espeak-ng", voice, f"s{speed}p{pitch}", ("-s", str(speed), "-p", str(pitch), "-a", "70"), val)


def _flite(voice: str, stretch: float, val: bool = False, f0: int | None = None) -> Voice:
    """Flite voice; `f0` (Hz) moves the intonation target of voices that read it (slt, kal16; rms ignores it)."""
    args = ("--setf", f"duration_stretch={stretch:g}")
    if f0 is not None:
        args += ("--setf", f"int_f0_target_mean={f0}")
    return Voice("flite", voice, f"d{stretch:g}" + ("" if f0 is None else f"f{f0}"), args, val)


def _festival(voice: str, stretch: float, f0: int | None = None, val: bool = False) -> Voice:
    """Festival voice via text2wave: HTS voices change speed with the engine's rate (-r), diphone voices with
    Duration_Stretch (their pitch with the intonation model's target mean `f0`, in Hz)."""
    if voice.endswith("_hts"):
        if f0 is not None:
            raise ValueError("festival HTS voices take no f0 target")
        hts = f'(list "-r" {1 / stretch:.4g})'
        return Voice("festival", voice, f"d{stretch:g}",
                     (f"(set! hts_engine_params (append hts_engine_params (list {hts})))",), val)
    args = [f"(Parameter.set 'Duration_Stretch {stretch:g})"]
    if f0 is not None:
        args.append(f"(set! int_lr_params '((target_f0_mean {f0}) (target_f0_std {round(f0 * 0.15)}) "
                    "(model_f0_mean 170) (model_f0_std 34)))")
    return Voice("festival", voice, f"d{stretch:g}" + ("" if f0 is None else f"f{f0}"), tuple(args), val)


VOICES: tuple[Voice, ...] = (
    _espeak("en-us", 160, 50),
    _espeak("en-us+f3", 150, 70),
    _espeak("en-us+m3", 175, 35),
    _espeak("en-gb", 165, 45),
    _espeak("en-gb+f2", 145, 65),
    _espeak("en-gb-x-rp", 155, 55),
    _espeak("en-gb-x-gbclan", 170, 40),
    _espeak("en-029+f4", 150, 60),
    _espeak("en-us-nyc", 185, 45),
    _espeak("en-gb-scotland", 155, 50, val=True),
    _espeak("en-us+f5", 140, 75, val=True),
    _flite("slt", 1.0),
    _flite("rms", 1.1),
    _flite("kal16", 0.95),
    _flite("awb", 1.0, val=True),
    _festival("kal_diphone", 1.1, 105),  # the voice's own defaults
    _festival("kal_diphone", 0.95, 125),
    # held out: the only HTS (statistical parametric, MLSA vocoder) voice; flite's clustergen slt is the same
    # recorded speaker, so this tests an unseen synthesis method rather than an unseen person
    _festival("cmu_us_slt_arctic_hts", 1.0, val=True),
)

# More training speakers for ASR (`--voices extra`), none of them a held-out voice: espeak-ng's other variants
# (each its own formant scaling) across the accents except Scotland and never variant f5; flite's slt, rms and
# kal16 at other speeds and pitches (never awb); festival's second diphone voice ked (festvox-kdlpc16k).
# Variety of voice, not amount of text, is what the held-out voices showed missing (docs in asr/README.md).
EXTRA_VOICES: tuple[Voice, ...] = tuple(
    replace(v, extra=True) for v in (
        _espeak("en-us+m1", 170, 40), _espeak("en-us+f1", 155, 70), _espeak("en-us+klatt", 160, 50),
        _espeak("en-us+m7", 145, 30), _espeak("en-us+f2", 180, 64), _espeak("en-us+klatt4", 150, 58),
        _espeak("en-gb+m2", 160, 45), _espeak("en-gb+f4", 150, 72), _espeak("en-gb+klatt3", 170, 50),
        _espeak("en-gb-x-rp+m4", 140, 38), _espeak("en-gb-x-rp+f1", 165, 68),
        _espeak("en-gb-x-gbcwmd", 160, 48), _espeak("en-gb-x-gbcwmd+f3", 150, 66),
        _espeak("en-gb-x-gbclan+m5", 175, 42), _espeak("en-029+m6", 165, 36), _espeak("en-029", 150, 52),
        _espeak("en-us-nyc+f2", 160, 70), _espeak("en-us-nyc+m2", 150, 44), _espeak("en-us+klatt2", 185, 40),
        _espeak("en-gb+m6", 135, 55),
        _flite("slt", 0.9, f0=200), _flite("slt", 1.2, f0=150), _flite("rms", 0.85), _flite("kal16", 1.15, f0=120),
        _flite("kal16", 0.9, f0=80),
        _festival("ked_diphone", 1.0), _festival("ked_diphone", 0.9, 130), _festival("kal_diphone", 1.2, 95),
    )
)

SENTENCES: tuple[str, ...] = (
    'The old lighthouse keeper climbed the stairs every evening at dusk.',
    'Please put the blue cups on the top shelf of the kitchen cabinet.',
    'A gentle rain fell over the quiet village all through the night.',
    'She counted twelve sheep before she finally fell asleep.',
    'The train to the coast leaves at half past seven in the morning.',
    'Bright red apples hung from the branches of the crooked tree.',
    'He forgot his umbrella on the bus again this afternoon.',
    'Our neighbours planted three rows of sunflowers along the fence.',
    'The museum opens at ten and closes at six on weekdays.',
    'Nobody expected the small boat to cross the lake so quickly.',
    'A warm cup of tea is the best cure for a cold winter day.',
    'The children built a castle of sand that stood for an hour.',
    'Turn left at the bakery and walk straight for two blocks.',
    'The library has more than forty thousand books on its shelves.',
    'Her grandfather told stories about sailing around the world.',
    'The wind carried the scent of pine needles down the valley.',
    'We need eggs, flour, butter and a little sugar for the cake.',
    'The clock on the tower struck nine as we reached the square.',
    'A small brown dog followed us all the way home from the park.',
    'The meeting was moved from Tuesday to Thursday afternoon.',
    'Fresh snow covered the fields like a thick white blanket.',
    'The farmer sold potatoes and onions at the Saturday market.',
    'Can you hear the birds singing in the garden this morning?',
    'The bridge was built over two hundred years ago.',
    'He painted the front door a bright shade of yellow.',
    'Every student must return the borrowed books by Friday.',
    'The baker wakes up at four to prepare the morning bread.',
    'Thunder rolled across the hills long after the lightning faded.',
    'The river runs slowly past the mill and into the sea.',
    'She wrote a long letter to her sister who lives abroad.',
    'The kettle whistled loudly while we searched for the biscuits.',
    'Seven swans glided across the pond without a sound.',
    'The map showed a narrow path that wound through the forest.',
    'I would like a table for four near the window, please.',
    'The concert hall was filled with the sound of violins.',
    'A sudden gust of wind blew the papers off the desk.',
    'The soup needs a pinch of salt and a little more pepper.',
    'They walked along the beach collecting shells and smooth stones.',
    'The doctor asked him to breathe in deeply and hold his breath.',
    'Our flight was delayed by nearly three hours because of fog.',
    'The garden gate creaked every time someone opened it.',
    'Fifty people gathered in the hall to hear the speech.',
    'The cat curled up on the warm windowsill and closed its eyes.',
    'Please remember to switch off the lights when you leave.',
    'The mountain road was steep, narrow and full of sharp bends.',
    'He spent the whole summer learning to play the guitar.',
    'The shop on the corner sells newspapers, sweets and stamps.',
    'A thin layer of ice covered the puddles in the lane.',
    'The teacher wrote the date in large letters on the board.',
    'We watched the sun sink slowly behind the distant hills.',
    'The postman delivered a parcel wrapped in brown paper.',
    'It took them eight days to walk from one coast to the other.',
    'The orchestra tuned their instruments before the show began.',
    'Her bicycle had a basket on the front and a bell on the handle.',
    'The lamp in the hallway flickered and then went out.',
    'The recipe calls for two cups of milk and one spoonful of honey.',
    'Ships from many distant ports unloaded their cargo at the harbour.',
    'The puppy chewed one of my shoes while I was out.',
    'The committee will announce its decision next month.',
    'Dark clouds gathered over the harbour as the fishermen returned.',
    'He kept a small notebook in his pocket for new ideas.',
    'The path to the summit is marked with white stones.',
    'Twenty minutes later, the bus finally arrived at the station.',
    'The old piano in the corner had not been played for years.',
    'Please speak a little more slowly so that everyone can follow.',
    "The farmer's dog rounded up the sheep in a matter of minutes.",
    'Lanterns glowed along the river during the autumn festival.',
    'She measured the room carefully before buying the new carpet.',
    'The storm knocked down several trees along the main road.',
    'Our school trip to the science museum was a great success.',
    'The fox crept quietly past the henhouse in the moonlight.',
    'They painted the fence white and planted roses beside it.',
    'A cold breeze drifted in through the open kitchen window.',
    'The price of bread has gone up by ten pence this year.',
    'He carefully folded the map and put it back in the drawer.',
    'The first snowdrops of the year appeared in late January.',
    'Visitors are asked not to touch the paintings.',
    'The ferry crossed the channel in a little under two hours.',
    'Her voice was calm and clear as she read the poem aloud.',
    'The carpenter measured twice and cut the board only once.',
    'Bees buzzed lazily among the lavender in the afternoon heat.',
    'We stayed in a small cottage at the edge of the woods.',
    'The answer to the riddle was hidden in the last line.',
    'Thousands of stars filled the sky above the desert.',
    'The hotel offers breakfast from seven until ten every day.',
    'He tied the rope to the post with a strong double knot.',
    'The cook chopped the carrots, celery and onions into small pieces.',
    'A flock of geese flew south in a long, uneven line.',
    'The letter arrived three weeks after it had been posted.',
    'Please write your name and address in capital letters.',
    'The tide came in quickly and covered the rocks.',
    'They laughed so hard that tears ran down their cheeks.',
    'The small café serves the best hot chocolate in town.',
    'One hundred and twenty runners took part in the race.',
    'The quiet hum of the fridge was the only sound in the house.',
    'The gardener raked the fallen leaves into a tall pile.',
    'Our journey began on a grey and windy morning in March.',
    'The professor spoke for an hour without looking at her notes.',
    'A single candle lit the narrow room at the top of the stairs.',
    'The twins wore matching jackets on their first day of school.',
    'The sailors raised the anchor and set course for the island.',
    'He whistled a cheerful tune as he walked to work.',
    'The guide pointed out the ruins of an ancient castle.',
    'Thick fog rolled in from the sea just after sunset.',
    'The scissors are in the second drawer of the desk.',
    'She planted tomatoes, beans and peas in the vegetable patch.',
    'The crowd cheered when the team scored in the final minute.',
    'A heavy book fell from the shelf and landed with a thud.',
    'The village well had been dry for nearly a century.',
    'Could you pass me the salt and the bread, please?',
    'The owl hooted softly from its perch in the old oak.',
    'The workers finished repairing the roof before the rain came.',
    'Thirty-six steps lead up to the front door of the church.',
    'The photograph showed a family standing in front of a farmhouse.',
    'He poured the coffee and sat down to read the morning paper.',
    'The fire crackled and warmed the room on the chilly evening.',
    'The sign on the door said closed for lunch until two.',
    'A young deer stepped out of the trees and looked around.',
    'The painter mixed blue and yellow to make a soft green.',
    'The children sang songs around the campfire until midnight.',
    'The road to the farm was muddy after the long rain.',
    'She kept all her letters in a wooden box under the bed.',
    'The engine coughed twice and then started with a roar.',
    'We planted an apple tree in the garden on my sixth birthday.',
    'The pilot announced that we would land in fifteen minutes.',
    'A row of tall poplars lined both sides of the avenue.',
    'The baby giggled every time the dog wagged its tail.',
    'The market square was full of stalls selling fruit and flowers.',
    'He found an old silver coin buried in the sand.',
    'The choir practised every Wednesday evening in the church hall.',
    'The waves crashed against the cliffs with great force.',
    'Please close the window before the rain comes in.',
    'The scientist recorded the temperature every hour for a week.',
    'The mouse nibbled a piece of cheese behind the cupboard.',
    'Her garden was famous for its roses and tall hollyhocks.',
    'The students waited nervously outside the examination room.',
    'A bright rainbow appeared after the storm had passed.',
    'The hikers rested by a stream before climbing the last hill.',
    'The tailor sewed a new button onto the grey coat.',
    'The town hall clock is always five minutes fast.',
    'He carried the heavy suitcase up four flights of stairs.',
    'The cows lay down in the meadow before the rain arrived.',
    'They shared a picnic of sandwiches, fruit and lemonade.',
    "The ship's bell rang eight times at the change of watch.",
    'A pair of robins built a nest in the hedge by the gate.',
    'The nurse checked on each patient before the end of her shift.',
    'The stone wall ran for miles across the open moor.',
    'We listened to the radio while we painted the kitchen.',
    'The toy soldiers stood in neat rows on the windowsill.',
    'Light from the setting sun turned the lake a deep gold.',
    'The blacksmith hammered the glowing iron into a horseshoe.',
    'Her new shoes pinched her toes after the long walk.',
    'The museum guide spoke about the history of the town.',
    'A thick mist hung over the marshes until midday.',
    'The squirrel buried acorns all over the lawn.',
    'Two hundred guests were invited to the wedding.',
    'The lorry driver stopped for a rest at the roadside café.',
    'The old man fed the pigeons in the park every morning.',
    'The kite rose higher and higher above the green hill.',
    'She tasted the sauce and added a little more garlic.',
    'The post office is next to the bank on the high street.',
    'The wooden floor creaked under his heavy boots.',
    'Apples, pears and plums grow in the orchard behind the house.',
    'The fisherman mended his nets while the sun came up.',
    'A loud knock at the door woke everyone in the house.',
    'The history lesson was about the building of the railways.',
    'The hedgehog rolled itself into a tight prickly ball.',
    'He wrapped a woollen scarf twice around his neck.',
    'The parade moved slowly down the main street at noon.',
    'Our cat sleeps for almost sixteen hours every day.',
    'The candle burned down to a tiny stub by morning.',
    'The shepherd counted his flock as they passed through the gate.',
    'The tea was too hot to drink, so she let it cool.',
    'The path along the cliff top offers wonderful views of the sea.',
    'The bus was so crowded that we had to stand all the way.',
    'The glass vase shattered into a hundred tiny pieces.',
    'Ripe strawberries were sold by the punnet at the farm gate.',
    'Nine out of ten people preferred the blue design.',
    'The boy skipped stones across the surface of the pond.',
    'The captain checked the weather before leaving the harbour.',
    'The smell of fresh coffee drifted out of the small shop.',
    'A long queue had formed outside the cinema by eight.',
    'The winter coat hung on a hook behind the door.',
    'The frogs croaked loudly in the pond all evening.',
    'He practised the speech in front of the mirror many times.',
    'The goldfish swam in slow circles around its bowl.',
    'The road was closed for repairs for the whole of August.',
    'The grandmother knitted a red jumper for each of her grandchildren.',
    'A sudden silence fell over the room when she walked in.',
    'The sparrows quarrelled over crumbs on the garden table.',
    'The cyclists rode in single file along the narrow lane.',
    'The book was so exciting that he read it in one night.',
    'Sixty seconds make a minute and sixty minutes make an hour.',
    'The lighthouse beam swept across the dark and restless water.',
    'The girl in the green coat waved goodbye from the platform.',
    'Four hundred and eleven miles separate the two cities.',
    'The gardener watered the young plants early every morning.',
    'A faint light shone from the window of the empty house.',
    "The baker's van stopped outside every house on our street.",
    'Please leave your muddy boots by the back door.',
)


def missing_tools(voices: list[Voice]) -> list[str]:
    """Tools the voices need whose executable is not on PATH."""
    return sorted({v.tool for v in voices if shutil.which(COMMANDS.get(v.tool, v.tool)) is None})


def missing_festival_voices(voices: list[Voice], root: Path = FESTIVAL_VOICES) -> list[str]:
    """Festival voice names the voices need that are not installed under `root`."""
    return sorted({v.voice for v in voices if v.tool == "festival" and not any(root.glob(f"*/{v.voice}"))})


def synthesise_wav(voice: Voice, text: str, path: Path) -> None:
    """Run the voice's tool to write `text` as a WAV file at `path` (the tool's own rate)."""
    if voice.tool == "espeak-ng":
        cmd = ["espeak-ng", "-v", voice.voice, *voice.args, "-w", str(path), "--stdin"]
        subprocess.run(cmd, input=text.encode(), check=True, capture_output=True, timeout=120)
    elif voice.tool == "flite":
        _run_on_text_file(["flite", "-voice", voice.voice, *voice.args, "-f"], text, ["-o", str(path)])
    elif voice.tool == "festival":
        evals = [arg for expr in (f"(voice_{voice.voice})", *voice.args) for arg in ("-eval", expr)]
        _run_on_text_file(["text2wave", *evals, "-o", str(path)], text, [])
    else:
        raise ValueError(f"unknown tool {voice.tool!r}")


def _run_on_text_file(before: list[str], text: str, after: list[str]) -> None:
    """Run `before + [file] + after` with `text` in a temporary file (avoids any argument parsing of it)."""
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False, encoding="utf-8") as f:
        f.write(text)
    try:
        subprocess.run([*before, f.name, *after], check=True, capture_output=True, timeout=120)
    finally:
        os.unlink(f.name)


def render(voice: Voice, text: str, out: Path, overwrite: bool = False) -> float:
    """Synthesise `text` into 16 kHz mono FLAC `out` (kept if it exists); returns its duration in seconds."""
    if out.exists() and not overwrite:
        return sf.info(str(out)).duration
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "tts.wav"
        synthesise_wav(voice, text, wav)
        data, rate = sf.read(str(wav), dtype="float32", always_2d=True)
    mono = data.mean(axis=1)
    if rate != SAMPLE_RATE:
        mono = librosa.resample(mono, orig_sr=rate, target_sr=SAMPLE_RATE, res_type="soxr_hq")
    if mono.size == 0:
        raise RuntimeError(f"{voice.speaker} produced no audio for {text!r}")
    peak = float(np.max(np.abs(mono)))
    if peak > PEAK:  # resampling can overshoot; scale down rather than clip
        mono = mono * (PEAK / peak)
    tmp_out = out.with_suffix(".tmp.flac")
    sf.write(str(tmp_out), mono, SAMPLE_RATE, subtype="PCM_16", format="FLAC")
    os.replace(tmp_out, out)
    return mono.size / SAMPLE_RATE


def render_or_skip(voice: Voice, text: str, out: Path, overwrite: bool = False) -> float | None:
    """`render`, or None with a note when the tool fails on this text (festival's kal_diphone segfaults on
    some inputs), so one bad sentence does not lose a long run."""
    try:
        return render(voice, text, out, overwrite)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, RuntimeError) as e:
        print(f"skipped {voice.speaker} {text!r}: {e}", file=sys.stderr, flush=True)
        return None


def plan(voices: list[Voice], sentences: list[str], per_voice: int) -> list[tuple[Voice, int, str]]:
    """(voice, sentence number, text): voice k reads `per_voice` sentences starting at k * per_voice
    (wrapping), so different voices cover different sentences when the list is long enough."""
    jobs = []
    for k, voice in enumerate(voices):
        for j in range(per_voice):
            n = (k * per_voice + j) % len(sentences)
            jobs.append((voice, n, sentences[n]))
    return jobs


def select_voices(names: list[str] | None) -> list[Voice]:
    """The default voices, or those (of VOICES and EXTRA_VOICES) whose speaker id, voice name, tool or group
    matches one of `names` ("train" and "val" name the default training and held-out voices, "extra" the
    additional training voices)."""
    if not names:
        return list(VOICES)

    def labels(v: Voice) -> tuple[str, ...]:
        return v.speaker, v.voice, v.tool, v.group

    known = VOICES + EXTRA_VOICES
    chosen = [v for v in known if any(n in labels(v) for n in names)]
    unknown = [n for n in names if not any(n in labels(v) for v in known)]
    if unknown:
        raise SystemExit(f"unknown voices {unknown}; known: {', '.join(v.speaker for v in known)}")
    return chosen


SOURCE_TXT = """Source repository: none; generated locally by training.data.synthesize with Debian's espeak-ng, flite \
and festival.
License / provenance: synthetic speech; espeak-ng is GPL-3.0-or-later, flite and its voices are BSD-style \
(CMU), festival, its voices (festvox-kallpc16k, festvox-kdlpc16k, festvox-us-slt-hts) and festlex-cmu are X11/BSD-style \
(CSTR Edinburgh, CMU); sentences are {sentences}.
Utterances: {n} ({n} with transcript), speakers: {s}, minutes: {m:.2f}, sample rates: [16000]
manifest.jsonl fields: audio (relative path), text, speaker (tool:voice:variant), sample_rate, duration (s), \
plus tool, voice, split.
"""


def read_sentences(path: Path | None) -> list[str]:
    """Non-empty lines of `path`, or the built-in sentences when it is None."""
    if path is None:
        return list(SENTENCES)
    if not path.exists():
        raise SystemExit(f"{path} not found (build it with: python -m training.data.sentences)")
    return [ln.strip() for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]


def usable_voices(voices: list[Voice]) -> list[Voice]:
    """The voices whose tool (and festival voice) is installed; the others are skipped with a note."""
    missing = missing_tools(voices)
    if missing:
        print(f"not installed: {', '.join(missing)} (install with: {INSTALL_HINT}); skipping their voices",
              file=sys.stderr, flush=True)
        voices = [v for v in voices if v.tool not in missing]
    absent = missing_festival_voices(voices)
    if absent:
        print(f"festival voices not installed: {', '.join(absent)} (install with: {INSTALL_HINT}); skipping them",
              file=sys.stderr, flush=True)
        voices = [v for v in voices if not (v.tool == "festival" and v.voice in absent)]
    return voices


def sentences_note(train_file: Path | None, val_file: Path | None) -> str:
    """Where the sentences came from, for SOURCE.txt."""
    if train_file is None and val_file is None:
        return "the module's own plain English sentences"
    parts = [f"train voices: {train_file or 'the built-in list'}"]
    if val_file is not None:
        parts.append(f"held-out voices: {val_file}")
    return f"read from files ({'; '.join(parts)}; see the SOURCE.txt beside them for their licenses)"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("data/synth"))
    parser.add_argument("--sentences", type=int, default=len(SENTENCES), help="sentences per voice")
    parser.add_argument("--sentences-file", type=Path, default=None,
                        help="one sentence per line (replaces the built-in list)")
    parser.add_argument("--val-sentences-file", type=Path, default=None,
                        help="sentences for the held-out voices (then train voices read only --sentences-file)")
    parser.add_argument("--val-sentences", type=int, default=None,
                        help="sentences per held-out voice (default: --sentences)")
    parser.add_argument("--voices", nargs="+", default=None,
                        help="speaker ids, voice names, tools, or train / val / extra (the default training / "
                             "held-out voices, the additional training voices)")
    parser.add_argument("--first-sentence", type=int, default=0,
                        help="skip this many sentences of the list (to read sentences other runs did not)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--overwrite", action="store_true", help="re-synthesise files that already exist")
    args = parser.parse_args(argv)

    sentences = read_sentences(args.sentences_file)[max(0, args.first_sentence):]
    val_sentences = sentences if args.val_sentences_file is None else read_sentences(args.val_sentences_file)
    per_val = args.sentences if args.val_sentences is None else args.val_sentences
    if not sentences or not val_sentences or args.sentences < 1 or per_val < 1:
        raise SystemExit("need at least one sentence")
    voices = usable_voices(select_voices(args.voices))
    if not voices:
        raise SystemExit(f"no voices to synthesise; install the tools with: {INSTALL_HINT}")

    out: Path = args.out
    if args.val_sentences_file is None and per_val == args.sentences:
        jobs = plan(voices, sentences, args.sentences)  # one list for all voices, as before
    else:  # each voice is in one group, so sentence numbers (file names) index its own group's list
        jobs = (plan([v for v in voices if not v.val], sentences, args.sentences)
                + plan([v for v in voices if v.val], val_sentences, per_val))
    paths = [out / "audio" / v.slug / f"{v.slug}_{n:04d}.flac" for v, n, _ in jobs]
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        futures = [pool.submit(render_or_skip, v, text, p, args.overwrite) for (v, _, text), p in zip(jobs, paths)]
        results = [f.result() for f in tqdm(futures, desc="synthesising", unit="utt")]

    entries = [ManifestEntry(str(p), text, v.speaker, SAMPLE_RATE, round(d, 4),
                             {"tool": v.tool, "voice": v.voice, "split": "val" if v.val else "train"})
               for (v, _, text), p, d in zip(jobs, paths, results) if d is not None]
    durations = [e.duration for e in entries]
    train = [e for e in entries if e.extra["split"] == "train"]
    val = [e for e in entries if e.extra["split"] == "val"]
    assert not {e.speaker for e in train} & {e.speaker for e in val}
    write_manifest(entries, out / "manifest.jsonl")
    write_manifest(train, out / "train.jsonl")
    write_manifest(val, out / "val.jsonl")
    (out / "SOURCE.txt").write_text(SOURCE_TXT.format(sentences=sentences_note(args.sentences_file,
                                                                               args.val_sentences_file),
                                                      n=len(entries), s=len(voices), m=sum(durations) / 60),
                                    encoding="utf-8")

    print(f"{'speaker':<40} {'split':<5} {'utt':>4} {'min':>6}")
    for v in voices:
        mine = [e for e in entries if e.speaker == v.speaker]
        minutes = sum(e.duration for e in mine) / 60
        print(f"{v.speaker:<40} {'val' if v.val else 'train':<5} {len(mine):>4} {minutes:>6.2f}")
    for name, part in (("train", train), ("val", val)):
        print(f"{name}: {len(part)} utterances, {len({e.speaker for e in part})} speakers, "
              f"{sum(e.duration for e in part) / 60:.2f} min")
    print(f"total: {len(entries)} utterances, {sum(durations) / 3600:.2f} h"
          + (f"; {len(jobs) - len(entries)} skipped (tool failed)" if len(entries) < len(jobs) else ""))
    print(f"wrote {out}/manifest.jsonl, train.jsonl, val.jsonl, SOURCE.txt")


if __name__ == "__main__":
    main()
