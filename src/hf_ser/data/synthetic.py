"""Tiny MSP-Podcast-layout corpora of synthetic speech, for tests and the embedded demo.

`make_tiny_corpus` writes a few dozen to a few hundred short clips (1-3 s, 16 kHz mono PCM) in exactly the
layout of the licensed corpus (see `hf_ser.data.msp_podcast`): `Audios/`, `Labels/labels_consensus.csv`,
`Labels/labels_detailed.csv` and `Transcripts/`. Speech comes from espeak-ng, one espeak voice per "speaker"
so that held-out-speaker splits are meaningful; each emotion gets its own prosody (pitch, rate, loudness,
pauses) and voice quality (spectral tilt, tremolo, breathiness), strong enough that a small model trained from
scratch learns it. Without espeak-ng the clips are harmonic tone "syllables" with the same class-dependent
pitch, tempo and quality.

What mimics the real corpus (so the builder's code paths run on it):
- `Split_Set` values Train / Development / Test1 / Test2 / Test3, speaker-independent; Test3 files carry
  `test3` in their names and have no labels, speaker or transcript (withheld in the challenge, paper 002).
- Some O (other) and X (no agreement) rows and some `Unknown` speakers.
- `labels_detailed.csv` with one quoted `worker; primary; secondary; A:x; V:x; D:x;` row per annotator,
  free-text primaries (`Other-...` strings, a bare "Dissapointed" typo) from which the consensus rows are
  derived by plurality vote (ties give X) and attribute means, as in the corpus.
- Some transcripts carry a `[...]:` prefix; some are missing.

Generation takes a few seconds per 100 clips on 2 CPU cores (espeak-ng runs in parallel threads) and caches
nothing.
"""

from __future__ import annotations

import csv
import io
import logging
import os
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..models.labels import SAMPLING_RATE

logger = logging.getLogger(__name__)

MAX_SECONDS = 3.0
CLASS_CODES = ("A", "S", "H", "U", "F", "D", "C", "N")
CLASS_NAMES = ("Angry", "Sad", "Happy", "Surprise", "Fear", "Disgust", "Contempt", "Neutral")


@dataclass(frozen=True)
class EmotionStyle:
    """How one emotion is rendered (espeak-ng prosody, a voice-quality effect) and its typical attributes."""

    pitch: int  # espeak-ng -p (0-99), relative to the voice's own pitch
    speed: int  # espeak-ng -s, words per minute
    amplitude: int  # espeak-ng -a (0-200)
    word_gap: int  # espeak-ng -g, pause between words in 10 ms units
    tilt: float  # > 0 brighter (pre-emphasis), < 0 darker (low-pass)
    tremolo_hz: float
    breathiness: float
    attributes: tuple[float, float, float]  # typical (arousal, valence, dominance) on 1-7


# Pitch, rate and loudness follow the usual acoustic correlates of emotion (high arousal: higher, faster,
# louder; sadness: low, slow, soft, dark); the voice-quality effects make every pair of classes differ in more
# than one cue.
STYLES: dict[str, EmotionStyle] = {
    "A": EmotionStyle(45, 215, 190, 0, 0.9, 0.0, 0.0, (5.8, 2.2, 5.6)),
    "S": EmotionStyle(15, 105, 60, 14, -0.9, 0.0, 0.0, (2.4, 2.3, 2.8)),
    "H": EmotionStyle(80, 190, 150, 0, 0.4, 0.0, 0.0, (5.2, 6.0, 4.8)),
    "U": EmotionStyle(99, 150, 160, 8, 0.0, 0.0, 0.0, (5.4, 4.6, 4.2)),
    "F": EmotionStyle(70, 240, 80, 2, 0.0, 8.0, 0.0, (5.0, 2.6, 2.6)),
    "D": EmotionStyle(30, 125, 110, 8, 0.0, 0.0, 0.08, (3.8, 2.4, 4.4)),
    "C": EmotionStyle(35, 145, 90, 4, -0.5, 0.0, 0.03, (3.6, 2.8, 5.0)),
    "N": EmotionStyle(50, 165, 100, 0, 0.0, 0.0, 0.0, (4.0, 4.0, 4.0)),
}

# (espeak-ng voice, gender): variants change the voice's pitch, formants and timbre.
VOICES = (
    ("en-us", "Male"),
    ("en+f3", "Female"),
    ("en-gb+m3", "Male"),
    ("en-us+f2", "Female"),
    ("en-gb-scotland+m1", "Male"),
    ("en-029+f4", "Female"),
    ("en-gb-x-rp+m5", "Male"),
    ("en-us+f1", "Female"),
    ("en+m7", "Male"),
    ("en-gb+f5", "Female"),
)
UNKNOWN_VOICE = ("en-us-nyc+m2", "Male")

SENTENCES = (
    "I did not expect that",
    "We talked about it yesterday",
    "That is what they told me",
    "Let me think about this",
    "It was a long week",
    "You should see the numbers",
    "Nobody called us back",
    "She said it was fine",
    "This changes everything",
    "Come over here right now",
    "We will see tomorrow",
    "I have heard this before",
)

# Free-text primary labels as annotators typed them: Other-<anything>, and a typo that names no class.
OTHER_PRIMARIES = ("Other-Dissapointed", "Other-Tired", "Other-Concerned", "Other-confused", "Dissapointed")
SECONDARY_TAGS = (
    "Frustrated",
    "Annoyed",
    "Amused",
    "Concerned",
    "Excited",
    "Dissapointed",
    "Confused",
    "Neutral",
)


def espeak_available() -> bool:
    """Whether the `espeak-ng` executable is on the PATH."""
    return shutil.which("espeak-ng") is not None


def _espeak(
    text: str, voice: str, style: EmotionStyle, pitch_offset: int, speed_factor: float
) -> tuple[np.ndarray, int]:
    command = [
        "espeak-ng",
        "--stdout",
        "-v",
        voice,
        "-p",
        str(int(np.clip(style.pitch + pitch_offset, 0, 99))),
        "-s",
        str(int(style.speed * speed_factor)),
        "-a",
        str(style.amplitude),
        "-g",
        str(style.word_gap),
        text,
    ]
    wav = subprocess.run(command, check=True, capture_output=True, timeout=30).stdout
    import soundfile as sf

    data, rate = sf.read(io.BytesIO(wav), dtype="float32")
    return data, rate


def _tones(
    text: str,
    speaker: int,
    style: EmotionStyle,
    pitch_offset: int,
    speed_factor: float,
    rng: np.random.Generator,
) -> tuple[np.ndarray, int]:
    """Harmonic tone syllables with the class's pitch, tempo and loudness: the fallback without espeak-ng."""
    rate = SAMPLING_RATE
    base = (110.0 if VOICES[speaker % len(VOICES)][1] == "Male" else 200.0) * (1 + 0.04 * (speaker % 5))
    f0 = base * 2 ** ((style.pitch + pitch_offset - 50) / 40)
    syllable_s = 60.0 / (style.speed * speed_factor) / 1.4  # ~1.4 syllables per word
    gap_s = 0.05 + style.word_gap * 0.01
    harmonics = 1.0 / np.arange(1, 6) ** (1.2 + 0.1 * (speaker % 4))
    pieces = []
    for _ in range(int(len(text.split()) * 1.4)):
        n = int(syllable_s * rate)
        t = np.arange(n) / rate
        glide = f0 * (1 + 0.08 * rng.standard_normal()) * (1 + 0.1 * t / max(syllable_s, 1e-3))
        phase = 2 * np.pi * glide * t
        tone = sum(weight * np.sin(k * phase) for k, weight in enumerate(harmonics, start=1))
        pieces += [tone * np.hanning(n), np.zeros(int(gap_s * rate))]
    return np.concatenate(pieces).astype(np.float32) * style.amplitude / 200, rate


def _voice_quality(audio: np.ndarray, rate: int, style: EmotionStyle, rng: np.random.Generator) -> np.ndarray:
    from scipy.signal import lfilter

    if style.tilt > 0:  # pre-emphasis: more energy in the high frequencies, a "tense" voice
        audio = lfilter([1.0, -0.9 * style.tilt], [1.0], audio)
    elif style.tilt < 0:  # one-pole low-pass: a "dark", soft voice
        pole = 0.9 * -style.tilt
        audio = lfilter([1.0 - pole], [1.0, -pole], audio)
    if style.tremolo_hz:
        t = np.arange(audio.size) / rate
        audio = audio * (0.6 + 0.4 * np.sin(2 * np.pi * style.tremolo_hz * t))
    if style.breathiness:
        envelope = np.convolve(np.abs(audio), np.ones(256) / 256, mode="same")
        audio = audio + style.breathiness * 4 * envelope * rng.standard_normal(audio.size)
    return audio


@dataclass(frozen=True)
class _Clip:
    """Everything random about one clip, drawn up front so that parallel synthesis stays deterministic."""

    file_name: str
    text: str
    code: str
    speaker: int
    voice: str
    pitch_offset: int
    speed_factor: float
    seed: int


def _render(clip: _Clip, use_espeak: bool) -> np.ndarray:
    from hf_ser.audio import resample

    style = STYLES[clip.code]
    rng = np.random.default_rng(clip.seed)
    if use_espeak:
        audio, rate = _espeak(clip.text, clip.voice, style, clip.pitch_offset, clip.speed_factor)
    else:
        audio, rate = _tones(clip.text, clip.speaker, style, clip.pitch_offset, clip.speed_factor, rng)
    audio = _voice_quality(np.asarray(audio, dtype=np.float64), rate, style, rng)
    audio = resample(audio.astype(np.float32), rate, SAMPLING_RATE)
    # Trim espeak's trailing silence, keep at most 3 s.
    loud = np.flatnonzero(np.abs(audio) > 0.02 * (np.abs(audio).max() + 1e-9))
    if loud.size:
        audio = audio[: min(loud[-1] + 1600, audio.size)]
    audio = audio[: int(MAX_SECONDS * SAMPLING_RATE)]
    peak = np.abs(audio).max() + 1e-9
    audio = audio / peak * (0.25 + 0.6 * style.amplitude / 200)
    audio = audio + 0.002 * rng.standard_normal(audio.size)  # a recording's noise floor: no digital silence
    return np.clip(audio, -1.0, 1.0).astype(np.float32)


def _votes(target: str, rng: np.random.Generator) -> list[str]:
    """Annotators' free-text primary labels whose plurality is `target` (a class code, "O" or "X")."""
    n = int(rng.integers(5, 8))  # the corpus has at least five annotators per clip
    if target == "X":  # two classes tied at the top, every other vote distinct: no agreement
        tied = rng.choice(len(CLASS_NAMES), size=2, replace=False)
        rest = [name for i, name in enumerate(CLASS_NAMES) if i not in tied]
        votes = [CLASS_NAMES[i] for i in tied for _ in range(2)] + list(
            rng.choice(rest, size=n - 4, replace=False)
        )
    elif target == "O":  # a majority of Other-... strings, the rest distinct classes
        majority = n // 2 + 1
        votes = list(rng.choice(OTHER_PRIMARIES, size=majority)) + list(
            rng.choice(CLASS_NAMES, size=n - majority, replace=False)
        )
    else:  # a majority for the class; the rest distinct other classes or Other strings, always fewer
        name = CLASS_NAMES[CLASS_CODES.index(target)]
        majority = n // 2 + 1
        rest = [v for v in (*CLASS_NAMES, *OTHER_PRIMARIES) if v != name]
        votes = [name] * majority + list(rng.choice(rest, size=n - majority, replace=False))
    votes = [str(v) for v in votes]
    rng.shuffle(votes)
    return votes


def _attribute_ratings(code: str, n: int, rng: np.random.Generator) -> np.ndarray:
    """n annotators' integer 1-7 ratings (arousal, valence, dominance) around the class's typical values."""
    typical = np.array(STYLES[code].attributes if code in STYLES else (4.0, 4.0, 4.0))
    return np.clip(np.rint(typical + rng.normal(0.0, 0.8, size=(n, 3))), 1, 7)


def _speaker_splits(n_speakers: int) -> list[str]:
    """Speaker-independent split of the labelled speakers: the last three go to Development, Test1, Test2."""
    held_out = ["Development", "Test1", "Test2"][: max(1, min(3, n_speakers - 1))]
    return ["Train"] * (n_speakers - len(held_out)) + held_out


def make_tiny_corpus(
    root: str | Path,
    n_speakers: int = 8,
    clips_per_class: int = 2,
    seed: int = 0,
    *,
    n_other: int | None = None,
    n_unknown_speaker: int = 4,
    n_test3: int = 8,
    backend: str = "auto",
) -> Path:
    """Write a tiny corpus in the MSP-Podcast layout and return its root.

    Args:
        root (`str` or `Path`): directory to create (or an empty existing one).
        n_speakers (`int`, defaults to 8): labelled speakers, each an espeak-ng voice (at most 10). The last
            three are held out as Development, Test1 and Test2 (fewer with fewer speakers), the rest are
            Train.
        clips_per_class (`int`, defaults to 2): clips per emotion class and labelled speaker.
        seed (`int`, defaults to 0): seed of every random choice; the same arguments give the same corpus.
        n_other (`int`, *optional*): O and X rows (alternating, spread over the speakers); defaults to
            `n_speakers`.
        n_unknown_speaker (`int`, defaults to 4): Train clips whose speaker is `Unknown`.
        n_test3 (`int`, defaults to 8): unlabelled Test3 clips (one class each, cycling).
        backend (`str`, defaults to `"auto"`): `"espeak"`, `"tones"`, or `"auto"` (espeak-ng when installed).

    Returns:
        `Path`: the corpus root, ready for `hf_ser.load_msp_podcast(root)`.

    Example:
        >>> from hf_ser.data.synthetic import make_tiny_corpus
        >>> root = make_tiny_corpus("/tmp/tiny-msp", n_speakers=4, clips_per_class=1)
    """
    if not 1 <= n_speakers <= len(VOICES):
        raise ValueError(f"n_speakers must lie in [1, {len(VOICES)}], got {n_speakers}.")
    if clips_per_class < 1:
        raise ValueError(f"clips_per_class must be >= 1, got {clips_per_class}.")
    if min(n_unknown_speaker, n_test3) < 0 or (n_other is not None and n_other < 0):
        raise ValueError("n_other, n_unknown_speaker and n_test3 must be >= 0.")
    if backend not in ("auto", "espeak", "tones"):
        raise ValueError(f"backend must be 'auto', 'espeak' or 'tones', got {backend!r}.")
    use_espeak = backend == "espeak" or (backend == "auto" and espeak_available())
    if use_espeak and not espeak_available():
        raise ValueError(
            "backend='espeak' needs the espeak-ng executable (Debian: apt-get install espeak-ng)."
        )
    if backend == "auto" and not use_espeak:
        logger.warning("espeak-ng not found: the tiny corpus uses generated tones instead of speech.")

    root = Path(root)
    if root.exists() and any(root.iterdir()):
        raise ValueError(
            f"{root} is not empty: make_tiny_corpus writes a fresh corpus into a new or empty directory."
        )
    for sub in ("Audios", "Labels", "Transcripts"):
        (root / sub).mkdir(parents=True, exist_ok=True)

    import soundfile as sf

    rng = np.random.default_rng(seed)
    n_other = n_speakers if n_other is None else n_other
    splits = _speaker_splits(n_speakers)

    # (file name, target class code or O/X, speaker index or None, split); Test3 is handled separately.
    plan: list[tuple[str, str, int | None, str]] = []
    segment = 0
    for speaker in range(n_speakers):
        for code in CLASS_CODES:
            for _ in range(clips_per_class):
                segment += 1
                plan.append(
                    (f"MSP-PODCAST_{speaker + 1:04d}_{segment:04d}.wav", code, speaker, splits[speaker])
                )
    for k in range(n_other):
        speaker = k % n_speakers
        segment += 1
        plan.append(
            (f"MSP-PODCAST_{speaker + 1:04d}_{segment:04d}.wav", "OX"[k % 2], speaker, splits[speaker])
        )
    for k in range(n_unknown_speaker):
        segment += 1
        plan.append((f"MSP-PODCAST_9000_{segment:04d}.wav", CLASS_CODES[k % 8], None, "Train"))
    for k in range(n_test3):
        plan.append((f"MSP-PODCAST_test3_{k + 1:04d}.wav", CLASS_CODES[k % 8], None, "Test3"))

    consensus_rows, detailed_rows, clips = [], [], []
    worker = 0
    for index, (file_name, target, speaker, split) in enumerate(plan):
        voice, gender = VOICES[speaker] if speaker is not None else UNKNOWN_VOICE
        votes = _votes(target, rng)
        # O and X clips sound like one of the classes their annotators named (or neutral).
        named = [CLASS_CODES[CLASS_NAMES.index(v)] for v in votes if v in CLASS_NAMES]
        rendered = target if target in STYLES else (named[0] if named else "N")
        text = SENTENCES[int(rng.integers(len(SENTENCES)))]
        voice_index = speaker if speaker is not None else len(VOICES)
        clips.append(
            _Clip(
                file_name,
                text,
                rendered,
                voice_index,
                voice,
                # Small per-clip variation, so that no single exact value identifies a class.
                pitch_offset=int(rng.integers(-6, 7)) + (voice_index % 3) * 3,
                speed_factor=float(rng.uniform(0.92, 1.08)),
                seed=int(rng.integers(2**31)),
            )
        )
        ratings = _attribute_ratings(rendered, len(votes), rng)
        if split == "Test3":  # labels, speaker and transcript are withheld (paper 002)
            consensus_rows.append([file_name, "", "", "", "", "Unknown", "Unknown", "Test3"])
            continue
        for vote, (arousal, valence, dominance) in zip(votes, ratings, strict=True):
            worker += 1
            secondary = ",".join(
                str(t) for t in rng.choice(SECONDARY_TAGS, size=int(rng.integers(1, 3)), replace=False)
            )
            detailed_rows.append(
                [
                    file_name,
                    f"WORKER{worker:08d}; {vote}; {secondary}; "
                    f"A:{arousal:.1f}; V:{valence:.1f}; D:{dominance:.1f};",
                ]
            )
        code = _plurality(votes)
        speaker_id = str(speaker + 1) if speaker is not None else "Unknown"
        speaker_gender = gender if speaker is not None else "Unknown"
        means = ratings.mean(axis=0)
        consensus_rows.append(
            [
                file_name,
                code,
                f"{means[0]:.6f}",
                f"{means[1]:.6f}",
                f"{means[2]:.6f}",
                speaker_id,
                speaker_gender,
                split,
            ]
        )
        if index % 17 == 5:  # a few transcripts are missing, as in the corpus
            continue
        prefix = f"[{file_name[12:21]}]: " if index % 3 == 0 else ""
        (root / "Transcripts" / f"{Path(file_name).stem}.txt").write_text(
            prefix + text + "\n", encoding="utf-8"
        )

    def write_clip(clip: _Clip) -> None:
        sf.write(root / "Audios" / clip.file_name, _render(clip, use_espeak), SAMPLING_RATE, subtype="PCM_16")

    # espeak-ng runs in subprocesses (and numpy/soxr release the GIL): threads overlap them.
    with ThreadPoolExecutor(max_workers=min(8, (os.cpu_count() or 1) * 2)) as pool:
        list(pool.map(write_clip, clips))

    with open(root / "Labels" / "labels_consensus.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            ["FileName", "EmoClass", "EmoAct", "EmoVal", "EmoDom", "SpkrID", "Gender", "Split_Set"]
        )
        writer.writerows(consensus_rows)
    with open(root / "Labels" / "labels_detailed.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, quoting=csv.QUOTE_ALL)
        writer.writerow(["FileName", "Annotation"])
        writer.writerows(detailed_rows)
    return root


def _plurality(votes: list[str]) -> str:
    """The consensus class code of a list of primary votes: the plurality class, O for Other, X for a tie."""
    codes = [
        CLASS_CODES[CLASS_NAMES.index(vote)]
        if vote in CLASS_NAMES
        else "O"  # every free-text label is an Other
        for vote in votes
    ]
    values, counts = np.unique(codes, return_counts=True)
    best = counts.max()
    if (counts == best).sum() > 1:
        return "X"
    return str(values[counts.argmax()])


__all__ = ["CLASS_CODES", "STYLES", "VOICES", "EmotionStyle", "espeak_available", "make_tiny_corpus"]
