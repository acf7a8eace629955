"""A `datasets` builder for the MSP-Podcast corpus as it lies on disk (release 1.12, Interspeech 2025).

The corpus is licensed, so users bring their own copy::

    MSP-PODCAST/
      Audios/                      MSP-PODCAST_0002_0033.wav ... (16 kHz mono; Test3 names contain "test3")
      Labels/labels_consensus.csv  FileName,EmoClass,EmoAct,EmoVal,EmoDom,SpkrID,Gender,Split_Set
      Labels/labels_detailed.csv   quoted "worker; primary; secondary; A:x; V:x; D:x", one per annotator
      Transcripts/<FileName without .wav>.txt

`load_msp_podcast(data_dir)` returns a `DatasetDict` with the splits the CSV holds: `train` (Train),
`validation` (Development), `test1`, `test2` and `test3` (no public labels: None). Loading scripts are gone in
datasets 5, so the builder is a class in this package, used as `MSPPodcast(data_dir=..., config_name=...)`
with `download_and_prepare()` and `as_dataset()`.

Configurations (paper 002 describes the two challenge tasks):
- `"categorical"`: `label`, a `ClassLabel` over the 8 primary emotions in the challenge order (Angry, Sad,
  Happy, Surprise, Fear, Disgust, Contempt, Neutral). Other (O) and No agreement (X) rows are excluded by
  default; `include_other=True` keeps them as classes 8 and 9, so the 8 primary ids do not move.
- `"attributes"`: `arousal`, `valence`, `dominance` floats on 1-7. O/X rows are kept by default: paper 001
  shows that training the attribute task with them helps.
- `"all"`: both (O/X excluded by default, as for `"categorical"`).
Every configuration has `audio` (`datasets.Audio`, 16 kHz, decoded lazily), `file`, `speaker_id` and `gender`
(None when `Unknown`) and `transcript` (the `[...]:` prefix some lines carry is stripped; None when missing).
`soft_labels=True` adds `soft_label`: per clip, the distribution of the annotators' primary votes from
`labels_detailed.csv` over the label classes (free-text primaries normalised: "Other-..." and unrecognised
strings count as Other), the soft targets used by top challenge systems (paper 002).

Preparation never holds audio in memory: examples carry file paths that `datasets.Audio` decodes on access, so
a corpus of 120k+ clips prepares in the time it takes to read the CSVs. Rows that cannot be used (missing
audio file, unknown class or split, missing/invalid attribute, duplicate file name) are counted and reported
with the first examples; `on_error="raise"` (default) stops with that report, `on_error="skip"` drops the rows
and logs it. Nothing is dropped silently.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import logging
import math
import os
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import datasets

from ..errors import HFSERError
from ..models.labels import EMOTION_LABELS, SAMPLING_RATE

logger = logging.getLogger(__name__)

# Consensus codes in the challenge class order (EMOTION_LABELS), then the two outside the 8 primary classes.
EMOTION_CODES = ("A", "S", "H", "U", "F", "D", "C", "N")
OTHER_CODES = ("O", "X")
OTHER_LABELS = ("Other", "No agreement")
# Split_Set value -> DatasetDict split name, in the order the splits are returned.
SPLITS = {"Train": "train", "Development": "validation", "Test1": "test1", "Test2": "test2", "Test3": "test3"}
ATTRIBUTE_COLUMNS = {"arousal": "EmoAct", "valence": "EmoVal", "dominance": "EmoDom"}
CONFIG_NAMES = ("categorical", "attributes", "all")
# Spellings annotators used for the primary classes (lower-cased); anything else is an "Other" vote.
_PRIMARY_ALIASES = {
    **{name.lower(): name for name in EMOTION_LABELS},
    "anger": "Angry",
    "sadness": "Sad",
    "happiness": "Happy",
    "surprised": "Surprise",
    "fearful": "Fear",
    "afraid": "Fear",
    "disgusted": "Disgust",
    "contemptuous": "Contempt",
}
_REPORTED_EXAMPLES = 5
# Written next to the prepared Arrow files: the preparation's warnings, repeated on every load from the cache.
REPORT_FILE = "hf_ser_preparation_warnings.json"


class MSPPodcastError(HFSERError, ValueError):
    """The corpus on disk does not match the MSP-Podcast layout, or holds rows that cannot be used."""


@dataclass
class MSPPodcastConfig(datasets.BuilderConfig):
    """Configuration of [`MSPPodcast`].

    Args:
        name (`str`, defaults to `"categorical"`): `"categorical"`, `"attributes"` or `"all"`.
        include_other (`bool`, *optional*): keep the O (other) and X (no agreement) rows. Defaults to False
            for `"categorical"`/`"all"` (the challenge's 8 classes) and True for `"attributes"` (paper 001).
        soft_labels (`bool`, defaults to `False`): add `soft_label` from `Labels/labels_detailed.csv`.
        on_error (`str`, defaults to `"raise"`): what to do with rows that cannot be used: `"raise"` an
            [`MSPPodcastError`] listing them, or `"skip"` them with a logged report.
        corpus_signature (`str`, *optional*): a fingerprint of the corpus files, so that the cache is rebuilt
            when they change (`load_msp_podcast` sets it).
    """

    name: str = "categorical"
    include_other: bool | None = None
    soft_labels: bool = False
    on_error: str = "raise"
    corpus_signature: str | None = None

    def __post_init__(self):
        super().__post_init__()
        self.validate()

    def validate(self) -> None:
        """Check the fields (also called by the builder: datasets applies overrides after `__post_init__`)."""
        if self.name not in CONFIG_NAMES:
            raise MSPPodcastError(f"Unknown configuration {self.name!r}; choose one of {CONFIG_NAMES}.")
        if self.on_error not in ("raise", "skip"):
            raise MSPPodcastError(f"on_error must be 'raise' or 'skip', got {self.on_error!r}.")
        if self.include_other not in (None, True, False):
            raise MSPPodcastError(f"include_other must be None, True or False, got {self.include_other!r}.")

    @property
    def keeps_other(self) -> bool:
        return self.name == "attributes" if self.include_other is None else bool(self.include_other)

    @property
    def has_classes(self) -> bool:
        return self.name in ("categorical", "all")

    @property
    def has_attributes(self) -> bool:
        return self.name in ("attributes", "all")

    @property
    def label_names(self) -> tuple[str, ...]:
        """Class names of `label`/`soft_label`: the 8 primary emotions, then Other, No agreement if kept."""
        return EMOTION_LABELS + (OTHER_LABELS if self.keeps_other else ())


@dataclass
class PreparationReport:
    """What the builder found: rows per split, rows left out on purpose (O/X), rows dropped for problems."""

    rows_read: int = 0
    split_sizes: dict[str, int] = field(default_factory=dict)
    excluded_other: int = 0
    unlisted_test3_files: int = 0
    # labels_consensus.csv rows that cannot be used, by problem.
    problems: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    # labels_detailed.csv rows that cannot be read (their vote is left out; no clip is dropped for them).
    vote_problems: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    # Worth a warning, but no row is dropped for them.
    notes: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    # Free-text primaries naming no class (typos, "Dissapointed"): counted as Other votes, as in the corpus.
    unrecognised_primaries: list[str] = field(default_factory=list)
    # What was logged as warnings (skipped rows, notes): repeated on every load of the prepared corpus.
    warnings: list[str] = field(default_factory=list)

    @staticmethod
    def _describe(entries: dict[str, list[str]]) -> str:
        lines = []
        for kind, examples in entries.items():
            distinct = list(dict.fromkeys(examples))
            shown = ", ".join(distinct[:_REPORTED_EXAMPLES]) + (
                ", ..." if len(distinct) > _REPORTED_EXAMPLES else ""
            )
            lines.append(f"  - {kind}: {len(examples)} (first: {shown})")
        return "\n".join(lines)

    def problem_summary(self) -> str:
        return self._describe(self.problems)

    def note_summary(self) -> str:
        return self._describe(self.notes)

    @property
    def num_dropped(self) -> int:
        return sum(len(examples) for examples in self.problems.values())


def strip_transcript_prefix(text: str) -> str:
    """Drop the `[...]:` prefix some transcript lines carry (e.g. `"[0001_0005]: hello"` -> `"hello"`)."""
    head, sep, tail = text.partition("]:")
    if sep and len(head) <= 100 and "[" in head:
        return tail.strip()
    return text.strip()


def normalise_primary(primary: str) -> str | None:
    """Map an annotator's free-text primary emotion to a class name, or "Other"; None if it is empty.

    Exact names and common spellings (case-insensitive) map to the 8 primary classes; "Other-..." strings and
    anything unrecognised (e.g. "Dissapointed") count as "Other", as in the corpus's own consensus.
    """
    text = primary.strip()
    if not text:
        return None
    return _PRIMARY_ALIASES.get(text.lower(), "Other")


def read_text(path: Path) -> str:
    """A UTF-8 text file (a BOM is allowed); `MSPPodcastError` naming the file and line when it is not UTF-8."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise MSPPodcastError(
            f"{path} is not UTF-8 text: line {line} has the byte {data[error.start : error.start + 1]!r} "
            "(re-save the file as UTF-8)."
        ) from None


def _parse_float(value: str | None) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


class MSPPodcast(datasets.GeneratorBasedBuilder):
    """Builder of the MSP-Podcast corpus from its on-disk layout (see the module docstring).

    After a preparation that read the CSVs (not one answered from the cache), `builder.report` is a
    [`PreparationReport`]: rows read, split sizes, O/X rows excluded, rows dropped per problem.

    Example:
        >>> builder = MSPPodcast(data_dir="/data/MSP-PODCAST", config_name="categorical", soft_labels=True)
        >>> builder.download_and_prepare()
        >>> dataset = builder.as_dataset()  # DatasetDict: train, validation, test1, test2, test3
    """

    VERSION = datasets.Version("1.0.0")
    BUILDER_CONFIG_CLASS = MSPPodcastConfig
    BUILDER_CONFIGS = [
        MSPPodcastConfig(
            name="categorical", description="8 primary emotions (ClassLabel), challenge Task 1."
        ),
        MSPPodcastConfig(
            name="attributes", description="Arousal, valence, dominance on 1-7, challenge Task 2."
        ),
        MSPPodcastConfig(name="all", description="Primary emotion and attributes."),
    ]
    DEFAULT_CONFIG_NAME = "categorical"

    def __init__(self, *args, **kwargs):
        config_name = kwargs.get("config_name")
        if config_name is not None and config_name not in CONFIG_NAMES:
            raise MSPPodcastError(f"Unknown configuration {config_name!r}; choose one of {CONFIG_NAMES}.")
        super().__init__(*args, **kwargs)
        self.config.validate()
        self.report: PreparationReport | None = None

    def _info(self) -> datasets.DatasetInfo:
        config = self.config
        features = {
            "audio": datasets.Audio(sampling_rate=SAMPLING_RATE),
            "file": datasets.Value("string"),
            "speaker_id": datasets.Value("string"),
            "gender": datasets.Value("string"),
            "transcript": datasets.Value("string"),
        }
        if config.has_classes:
            features["label"] = datasets.ClassLabel(names=list(config.label_names))
        if config.has_attributes:
            features.update({name: datasets.Value("float32") for name in ATTRIBUTE_COLUMNS})
        if config.soft_labels:
            features["soft_label"] = datasets.List(datasets.Value("float32"), length=len(config.label_names))
        return datasets.DatasetInfo(
            description="MSP-Podcast (release 1.12) as used by the Interspeech 2025 SER challenge.",
            features=datasets.Features(features),
            homepage="https://ecs.utdallas.edu/research/researchlabs/msp-lab/MSP-Podcast.html",
            citation=(
                "@article{busso2025msppodcast, title={The MSP-Podcast Corpus},"
                " author={Busso, Carlos and others},"
                " journal={IEEE Transactions on Affective Computing}, year={2025}}"
            ),
        )

    # ------------------------------------------------------------------ reading the corpus
    def _required_columns(self) -> list[str]:
        config = self.config
        columns = ["FileName", "SpkrID", "Gender", "Split_Set"]
        if config.has_classes or not config.keeps_other:
            columns.append("EmoClass")
        if config.has_attributes:
            columns += list(ATTRIBUTE_COLUMNS.values())
        return columns

    def _read_consensus(
        self, root: Path, audio_files: set[str]
    ) -> tuple[dict[str, list[dict]], PreparationReport]:
        config = self.config
        report = PreparationReport()
        path = root / "Labels" / "labels_consensus.csv"
        if not path.is_file():
            raise MSPPodcastError(f"{path} not found: is {root} the root of an MSP-Podcast corpus?")
        rows_by_split: dict[str, list[dict]] = defaultdict(list)
        seen: set[str] = set()
        with io.StringIO(read_text(path), newline="") as handle:
            reader = csv.DictReader(handle)
            header = [name.strip() for name in reader.fieldnames or []]
            reader.fieldnames = header
            missing = [name for name in self._required_columns() if name not in header]
            if missing:
                raise MSPPodcastError(
                    f"{path} lacks the column(s) {missing} that the {config.name!r} configuration needs; "
                    f"its columns are {header}."
                )
            for line_number, row in enumerate(reader, start=2):
                report.rows_read += 1
                example = self._consensus_row(row, line_number, audio_files, seen, report)
                if example is not None:
                    rows_by_split[example.pop("split")].append(example)
        if report.rows_read == 0:
            raise MSPPodcastError(f"{path} has a header but no rows: no clip is labelled.")
        # Test3 audio the CSV does not list (the challenge shipped Test3 without labels): found by name.
        unlisted = sorted(name for name in audio_files - seen if "test3" in name.lower())
        for name in unlisted:
            rows_by_split["test3"].append(self._unlabelled(name))
        report.unlisted_test3_files = len(unlisted)
        # Other audio without a row is not used: say so rather than drop it without a word.
        unlabelled = sorted(name for name in audio_files - seen if "test3" not in name.lower())
        if unlabelled:
            report.notes["audio files in Audios/ without a row in labels_consensus.csv (not used)"] += (
                unlabelled
            )
        return rows_by_split, report

    def _unlabelled(self, file_name: str, speaker: str | None = None, gender: str | None = None) -> dict:
        example = {"file": file_name, "speaker_id": speaker, "gender": gender}
        if self.config.has_classes:
            example["label"] = None
        if self.config.has_attributes:
            example.update(dict.fromkeys(ATTRIBUTE_COLUMNS))
        return example

    def _consensus_row(
        self, row: dict, line_number: int, audio_files: set[str], seen: set[str], report: PreparationReport
    ) -> dict | None:
        """One CSV row -> an example dict with its split, or None (excluded O/X row or a reported problem)."""
        config = self.config
        file_name = (row.get("FileName") or "").strip()
        if not file_name:
            report.problems["empty FileName"].append(f"line {line_number}")
            return None
        if file_name in seen:
            report.problems["duplicate FileName (first occurrence kept)"].append(file_name)
            return None
        seen.add(file_name)

        split_set = (row.get("Split_Set") or "").strip()
        split = SPLITS.get(split_set) or ("test3" if not split_set and "test3" in file_name.lower() else None)
        if split is None:
            report.problems[f"unknown Split_Set (expected one of {list(SPLITS)})"].append(
                f"{file_name}: {split_set!r}"
            )
            return None
        # Test3 has no public labels: blank label fields there mean "unknown", elsewhere they are an error.
        may_be_unlabelled = split == "test3"

        speaker = (row.get("SpkrID") or "").strip()
        gender = (row.get("Gender") or "").strip()
        example = self._unlabelled(
            file_name,
            speaker=None if speaker.lower() in ("", "unknown") else speaker,
            gender=None if gender.lower() in ("", "unknown") else gender,
        )
        example["split"] = split

        code = (row.get("EmoClass") or "").strip().upper()
        if "EmoClass" in row and code in OTHER_CODES and not config.keeps_other:
            report.excluded_other += 1
            return None
        if config.has_classes:
            if code in EMOTION_CODES:
                example["label"] = EMOTION_CODES.index(code)
            elif code in OTHER_CODES:
                example["label"] = len(EMOTION_CODES) + OTHER_CODES.index(code)
            elif not (code == "" and may_be_unlabelled):
                known = EMOTION_CODES + OTHER_CODES
                report.problems[f"unknown EmoClass (expected one of {list(known)})"].append(
                    f"{file_name}: {code!r}"
                )
                return None
        if config.has_attributes:
            for name, column in ATTRIBUTE_COLUMNS.items():
                raw = (row.get(column) or "").strip()
                value = _parse_float(raw)
                if raw == "" and may_be_unlabelled:
                    continue
                if value is None or not 1.0 <= value <= 7.0:
                    report.problems[f"missing, NaN or out-of-range (1-7) {column}"].append(
                        f"{file_name}: {raw!r}"
                    )
                    return None
                example[name] = value

        if file_name not in audio_files:
            if file_name in getattr(self, "_empty_audio", ()):
                report.problems["empty (0-byte) audio file in Audios/"].append(file_name)
            else:
                report.problems["missing audio file in Audios/"].append(file_name)
            return None
        return example

    def _read_votes(
        self, root: Path, wanted: set[str], report: PreparationReport
    ) -> dict[str, dict[str, int]]:
        """Primary-emotion vote counts per clip from labels_detailed.csv, streamed (650k+ rows in 1.12)."""
        path = root / "Labels" / "labels_detailed.csv"
        if not path.is_file():
            raise MSPPodcastError(f"soft_labels=True needs {path}, which does not exist.")
        votes: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        with io.StringIO(read_text(path), newline="") as handle:
            reader = csv.reader(handle)
            header = [name.strip() for name in next(reader, [])]
            # Some releases spell the annotation out in columns; the 1.12 release quotes it in one field.
            primary_column = header.index("EmoClass_Major") if "EmoClass_Major" in header else None
            for line_number, row in enumerate(reader, start=2):
                if not row or not row[0].strip():
                    continue
                file_name = row[0].strip()
                if file_name not in wanted:
                    continue
                if primary_column is not None:
                    primary = row[primary_column] if len(row) > primary_column else ""
                else:
                    # "worker; primary; secondary; A:x; V:x; D:x": commas inside unquoted tags split the row.
                    fields = [part.strip() for part in ",".join(row[1:]).split(";")]
                    primary = fields[1] if len(fields) > 1 else ""
                label = normalise_primary(primary)
                if label is None:
                    report.vote_problems["row without a primary emotion"].append(
                        f"line {line_number}: {','.join(row)[:60]!r}"
                    )
                    continue
                if label == "Other" and not primary.strip().lower().startswith("other"):
                    report.unrecognised_primaries.append(repr(primary.strip()))
                votes[file_name][label] += 1
        return votes

    def _soft_label(self, counts: dict[str, int] | None) -> list[float] | None:
        names = self.config.label_names
        if not counts:
            return None
        vector = [float(counts.get(name, 0)) for name in names]
        total = sum(vector)
        return [value / total for value in vector] if total > 0 else None

    # ------------------------------------------------------------------ datasets hooks
    def _split_generators(self, dl_manager):
        config = self.config
        if not config.data_dir:
            raise MSPPodcastError(
                "Pass data_dir, the root of the MSP-Podcast corpus (with Audios/ and Labels/)."
            )
        root = Path(config.data_dir).expanduser()
        audio_dir = root / "Audios"
        if not audio_dir.is_dir():
            raise MSPPodcastError(f"{audio_dir} not found: is {root} the root of an MSP-Podcast corpus?")
        # One directory listing (sizes come with the stat of each entry, which the fingerprint needs anyway).
        with os.scandir(audio_dir) as entries:
            sizes = {entry.name: entry.stat().st_size for entry in entries if entry.is_file()}
        audio_files = {name for name, size in sizes.items() if size > 0}
        self._empty_audio = {name for name, size in sizes.items() if size == 0}

        rows_by_split, report = self._read_consensus(root, audio_files)
        if config.soft_labels:
            wanted = {row["file"] for rows in rows_by_split.values() for row in rows}
            votes = self._read_votes(root, wanted, report)
            for split, rows in rows_by_split.items():
                for row in rows:
                    row["soft_label"] = self._soft_label(votes.get(row["file"]))
                    if row["soft_label"] is None and split != "test3":
                        report.notes["clips without usable annotator votes (soft_label None)"].append(
                            row["file"]
                        )

        if report.problems or report.vote_problems:
            parts = []
            if report.problems:
                parts.append(
                    f"{report.num_dropped} of the {report.rows_read} rows of "
                    f"{root / 'Labels' / 'labels_consensus.csv'} cannot be used:\n{report.problem_summary()}"
                )
            if report.vote_problems:
                parts.append(
                    f"{root / 'Labels' / 'labels_detailed.csv'} has rows that cannot be read:\n"
                    f"{report._describe(report.vote_problems)}"
                )
            message = "\n".join(parts)
            if config.on_error == "raise":
                raise MSPPodcastError(
                    message + "\nFix the corpus, or pass on_error='skip' to skip these rows."
                )
            report.warnings.append(f"{message}\nThese rows are skipped (on_error='skip').")
        if report.notes:
            report.warnings.append(f"MSP-Podcast notes:\n{report.note_summary()}")
        for warning in report.warnings:
            logger.warning(warning)
        # Kept with the prepared files, so that every later load (from the cache) repeats the warnings.
        with contextlib.suppress(OSError):  # a read-only or remote cache: the warnings were logged above
            Path(self._output_dir, REPORT_FILE).write_text(json.dumps({"warnings": report.warnings}))
        if report.unrecognised_primaries:
            logger.info(
                "labels_detailed.csv:\n%s",
                report._describe(
                    {"primary labels naming no class, counted as Other": report.unrecognised_primaries}
                ),
            )
        report.split_sizes = {
            split: len(rows_by_split[split]) for split in SPLITS.values() if rows_by_split.get(split)
        }
        if not report.split_sizes:
            raise MSPPodcastError(f"No usable rows in {root / 'Labels' / 'labels_consensus.csv'}.")
        logger.info(
            "MSP-Podcast %r: %s; %d O/X rows excluded%s; %d unlisted test3 files added.",
            config.name,
            ", ".join(f"{split} {size}" for split, size in report.split_sizes.items()),
            report.excluded_other,
            "" if config.keeps_other else " (include_other=True keeps them)",
            report.unlisted_test3_files,
        )
        self.report = report
        return [
            datasets.SplitGenerator(name=split, gen_kwargs={"rows": rows_by_split[split], "root": str(root)})
            for split in report.split_sizes
        ]

    def _generate_examples(self, rows: list[dict], root: str):
        # Plain strings and one directory listing: this loop runs once per clip (120k+ in the corpus).
        audio_dir = os.path.join(root, "Audios")
        transcript_dir = os.path.join(root, "Transcripts")
        transcripts = set()
        if os.path.isdir(transcript_dir):
            with os.scandir(transcript_dir) as entries:
                transcripts = {entry.name for entry in entries}
        for row in rows:
            name = os.path.splitext(row["file"])[0] + ".txt"
            transcript = None
            if name in transcripts:
                with open(os.path.join(transcript_dir, name), encoding="utf-8", errors="replace") as handle:
                    lines = handle.read().splitlines()
                transcript = " ".join(strip_transcript_prefix(line) for line in lines if line.strip()) or None
            # A path, not samples: datasets.Audio stores it and decodes on access.
            yield (
                row["file"],
                {**row, "audio": os.path.join(audio_dir, row["file"]), "transcript": transcript},
            )


def corpus_signature(data_dir: str | os.PathLike, soft_labels: bool = False) -> str:
    """A fingerprint of the corpus files, used as part of the cache key: the name, size and modification time of
    every file in `Labels/`, `Audios/` and `Transcripts/` (one stat per file, no reading), so that any file added,
    removed or edited in place (a transcript, an audio file, a label CSV) prepares the corpus again."""
    root = Path(data_dir)
    digest = hashlib.sha256(f"soft_labels={bool(soft_labels)};".encode())
    for folder in ("Labels", "Audios", "Transcripts"):
        path = root / folder
        digest.update(f"[{folder}]".encode())
        if not path.is_dir():
            continue
        with os.scandir(path) as entries:
            stats = sorted(
                (entry.name, entry.stat().st_size, entry.stat().st_mtime_ns)
                for entry in entries
                if entry.is_file()
            )
        for name, size, mtime in stats:
            digest.update(f"{name}:{size}:{mtime};".encode())
    return digest.hexdigest()[:16]


def load_msp_podcast(
    data_dir: str | os.PathLike,
    config_name: str = "categorical",
    *,
    include_other: bool | None = None,
    soft_labels: bool = False,
    on_error: str = "raise",
    cache_dir: str | os.PathLike | None = None,
    download_mode: str | None = None,
    num_proc: int | None = None,
) -> datasets.DatasetDict:
    """Prepare (once, cached) and load the MSP-Podcast corpus from its on-disk layout.

    Args:
        data_dir (`str` or `os.PathLike`): the corpus root, holding `Audios/`, `Labels/` and `Transcripts/`.
        config_name (`str`, defaults to `"categorical"`): `"categorical"`, `"attributes"` or `"all"`.
        include_other (`bool`, *optional*): keep O/X rows (default: only for `"attributes"`); kept rows get
            class ids 8 (Other) and 9 (No agreement).
        soft_labels (`bool`, defaults to `False`): add `soft_label`, the annotators' vote distribution.
        on_error (`str`, defaults to `"raise"`): `"raise"` on unusable rows, or `"skip"` them (logged).
        cache_dir (`str`, *optional*): where the prepared Arrow files go; defaults to the datasets cache
            (`HF_DATASETS_CACHE`). The cache key includes the arguments and a fingerprint of the corpus files.
        download_mode (`str`, *optional*): e.g. `"force_redownload"` to prepare again.
        num_proc (`int`, *optional*): processes for preparation.

    Returns:
        `datasets.DatasetDict`: the splits the CSV holds, among train, validation, test1, test2, test3.

    Example:
        >>> from hf_ser import load_msp_podcast
        >>> corpus = load_msp_podcast("/data/MSP-PODCAST", "categorical", soft_labels=True)
        >>> corpus["train"].features["label"].names
        ['Angry', 'Sad', 'Happy', 'Surprise', 'Fear', 'Disgust', 'Contempt', 'Neutral']
    """
    root = Path(data_dir).expanduser()
    if not root.is_dir():
        raise MSPPodcastError(f"{root} is not a directory.")
    root = root.resolve()
    builder = MSPPodcast(
        config_name=config_name,
        data_dir=str(root),
        cache_dir=None if cache_dir is None else str(cache_dir),
        include_other=include_other,
        soft_labels=soft_labels,
        on_error=on_error,
        corpus_signature=corpus_signature(root, soft_labels),
    )
    builder.download_and_prepare(download_mode=download_mode, num_proc=num_proc)
    if builder.report is None:  # answered from the cache: repeat what the preparation warned about
        report_file = Path(builder.cache_dir, REPORT_FILE)
        try:
            warnings = json.loads(report_file.read_text()).get("warnings", [])
        except (OSError, ValueError):
            warnings = []
        for warning in warnings:
            logger.warning(warning)
    return builder.as_dataset()


__all__ = [
    "EMOTION_CODES",
    "MSPPodcast",
    "MSPPodcastConfig",
    "MSPPodcastError",
    "PreparationReport",
    "SPLITS",
    "load_msp_podcast",
    "normalise_primary",
    "strip_transcript_prefix",
]
