"""Model cards for published hf_ser models: a `CardData` dataclass, a Jinja template
(`hf_ser/templates/model_card.md`, mirrored in `model_cards/`) and a `ModelCardCallback` that fills the card data
during `Trainer` runs (in the style of sentence-transformers and SpanMarker).

The YAML metadata follows the Hub's model card specification: `library_name: transformers`, `pipeline_tag:
audio-classification`, tags, license, datasets, and a `model-index` with the evaluation results (macro/micro F1 per
test set, CCC per attribute). Card generation never raises into a save: `write_model_card` logs a warning and
returns `None` on failure.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import platform
from dataclasses import dataclass, field, fields
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from transformers import TrainerCallback

logger = logging.getLogger(__name__)

TEMPLATE_NAME = "model_card.md"

# Metrics recognised in evaluation results, with the display name used in the card and the model-index.
METRIC_NAMES = {
    "f1_macro": "Macro F1",
    "f1_micro": "Micro F1",
    "uar": "Unweighted average recall",
    "war": "Weighted average recall",
    "ccc_arousal": "CCC arousal",
    "ccc_valence": "CCC valence",
    "ccc_dominance": "CCC dominance",
    "ccc_mean": "CCC mean",
    "ccc": "CCC",
}
# model-index metric types (the Hub links `f1` to the evaluate metric; `ccc` is free text).
METRIC_TYPES = {
    "f1_macro": ("f1", {"average": "macro"}),
    "f1_micro": ("f1", {"average": "micro"}),
    "uar": ("recall", {"average": "macro"}),
    "war": ("recall", {"average": "weighted"}),
}

# The numbers each implemented paper reports on the Interspeech 2025 challenge test set.
PAPERS = {
    "000": {
        "title": "From Pretraining to Performance: Benchmarking Self-Supervised Speech Models for Interspeech-25 "
        "SER Challenge",
        "authors": "Uniyal & Abrol",
        "system": "WavLM-large + MASP, 15 of 24 layers fine-tuned, focal loss",
        "results": {"f1_macro": 0.3661, "f1_micro": 0.3794},
    },
    "002": {
        "title": "The Interspeech 2025 Challenge on Speech Emotion Recognition in Naturalistic Conditions",
        "authors": "Naini et al.",
        "system": "challenge baseline: WavLM-large + attentive statistics pooling, full fine-tuning",
        "results": {
            "f1_macro": 0.329,
            "f1_micro": 0.355,
            "ccc_arousal": 0.623,
            "ccc_valence": 0.638,
            "ccc_dominance": 0.477,
        },
    },
}

DEFAULT_TAGS = ("hf_ser", "speech-emotion-recognition", "audio-classification")


@dataclass
class CardData:
    r"""Everything the model card says about a model that its config does not.

    Args:
        model_id (`str`, *optional*):
            The Hub repository id (`org/name`), used in the usage snippets.
        model_name (`str`, *optional*):
            A human-readable title; defaults to the repository name.
        language (`list[str]`, *optional*, defaults to `["en"]`):
            Languages of the training speech (MSP-Podcast is English podcast speech).
        license (`str`, *optional*, defaults to `"apache-2.0"`):
            The license of the weights. The license of the training data (MSP-Podcast is released under an academic
            license by UT Dallas) may restrict use further.
        datasets (`list[str]`, *optional*, defaults to `["MSP-Podcast"]`):
            Training datasets (Hub ids or names).
        base_model (`str`, *optional*, defaults to `"microsoft/wavlm-large"`):
            The pretrained encoder the model was fine-tuned from.
        tags (`list[str]`, *optional*):
            Extra tags added to `hf_ser`, `speech-emotion-recognition`, `audio-classification`.
        paper (`str`, *optional*):
            Which implemented paper the model follows (`"000"` paper 000's MASP system, `"002"` the challenge
            baseline); guessed from the config's pooling when not given.
        eval_results (`dict[str, dict[str, float]]`, *optional*):
            Metrics per evaluation set, e.g. `{"test": {"f1_macro": 0.35, "f1_micro": 0.37}}`; keys as returned by
            `hf_ser.load_metric("f1")` / `load_metric("ccc")`.
        hyperparameters (`dict[str, Any]`, *optional*):
            Training hyperparameters that differ from the `TrainingArguments` defaults.
        config_changes (`dict[str, Any]`, *optional*):
            Model configuration fields that differ from the config class defaults.
        train_stats (`dict[str, Any]`, *optional*):
            Training-set statistics (number of clips, speakers, hours, per-class counts).
        space_id (`str`, *optional*):
            A Hub Space that demos the model.
        versions (`dict[str, str]`, *optional*):
            Library versions used for training; filled in automatically.
    """

    model_id: str | None = None
    model_name: str | None = None
    language: list[str] = field(default_factory=lambda: ["en"])
    license: str = "apache-2.0"
    datasets: list[str] = field(default_factory=lambda: ["MSP-Podcast"])
    base_model: str | None = "microsoft/wavlm-large"
    tags: list[str] = field(default_factory=list)
    paper: str | None = None
    eval_results: dict[str, dict[str, float]] = field(default_factory=dict)
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    config_changes: dict[str, Any] = field(default_factory=dict)
    train_stats: dict[str, Any] = field(default_factory=dict)
    space_id: str | None = None
    versions: dict[str, str] = field(default_factory=dict)

    def __post_init__(self):
        if self.paper is not None and self.paper not in PAPERS:
            raise ValueError(f"paper={self.paper!r} is unknown; use one of {sorted(PAPERS)} or None.")

    def update(self, **kwargs) -> CardData:
        """Set fields by name (unknown names raise `ValueError`); returns `self`."""
        names = {f.name for f in fields(self)}
        for key, value in kwargs.items():
            if key not in names:
                raise ValueError(f"CardData has no field {key!r}; fields are {sorted(names)}.")
            setattr(self, key, value)
        return self

    def add_eval_results(self, dataset: str, metrics: dict[str, float]) -> None:
        """Record the metrics of one evaluation set (known metric keys only, finite numbers only)."""
        kept = {}
        for key, value in metrics.items():
            if key in METRIC_NAMES and isinstance(value, (int, float)) and math.isfinite(value):
                kept[key] = float(value)
        if kept:
            self.eval_results.setdefault(dataset, {}).update(kept)


def library_versions() -> dict[str, str]:
    """Versions of the libraries that matter to reproduce a model."""
    import importlib.metadata as metadata

    versions = {"python": platform.python_version()}
    for name in ("hf_ser", "transformers", "torch", "datasets", "evaluate", "accelerate"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def _config_of(model_or_config):
    return getattr(model_or_config, "config", model_or_config)


def guess_paper(config) -> str | None:
    """Paper 000 for multi-layer pooling, paper 002 (the challenge baseline) for last-layer ASP."""
    pooling = getattr(config, "pooling", None)
    return {"masp": "000", "asp": "002"}.get(pooling)


def card_metadata(card_data: CardData, config=None) -> dict[str, Any]:
    """The YAML metadata block of the card as a dict (Hub model card specification)."""
    name = card_data.model_name or (card_data.model_id or "hf-ser-model").split("/")[-1]
    tags = list(dict.fromkeys([*DEFAULT_TAGS, *card_data.tags]))
    metadata: dict[str, Any] = {
        "library_name": "transformers",
        "pipeline_tag": "audio-classification",
        "language": list(card_data.language),
        "license": card_data.license,
        "tags": tags,
    }
    if card_data.datasets:
        metadata["datasets"] = list(card_data.datasets)
    if card_data.base_model:
        metadata["base_model"] = card_data.base_model
    reported = {key for metrics in card_data.eval_results.values() for key in metrics}
    metadata["metrics"] = [name for name in ("f1", "ccc") if any(k.startswith(name) for k in reported)] or [
        "f1"
    ]
    results = []
    regression = getattr(config, "problem_type", None) == "regression"
    for dataset, metrics in card_data.eval_results.items():
        entries = []
        for key, value in metrics.items():
            metric_type, args = METRIC_TYPES.get(key, ("ccc" if key.startswith("ccc") else key, None))
            entry: dict[str, Any] = {"type": metric_type, "value": round(value, 4), "name": METRIC_NAMES[key]}
            if args:
                entry["args"] = args
            entries.append(entry)
        task_name = "Speech emotion attribute prediction" if regression else "Speech emotion recognition"
        results.append(
            {
                "task": {"type": "audio-classification", "name": task_name},
                "dataset": {"name": dataset, "type": "msp-podcast", "split": dataset},
                "metrics": entries,
            }
        )
    if results:
        metadata["model-index"] = [{"name": name, "results": results}]
    return metadata


def _encoder_summary(config) -> dict[str, Any]:
    encoder = getattr(config, "encoder_config", None) or getattr(config, "audio_config", None)
    if encoder is None:
        return {}
    return {
        "type": getattr(encoder, "model_type", "?"),
        "layers": getattr(encoder, "num_hidden_layers", "?"),
        "hidden_size": getattr(encoder, "hidden_size", "?"),
    }


def _paper_table(card_data: CardData, paper_key: str | None) -> list[dict[str, Any]]:
    """Rows of (metric, paper's number, measured numbers per eval set) for the metrics the paper reports."""
    if paper_key is None:
        return []
    rows = []
    for key, reported in PAPERS[paper_key]["results"].items():
        measured = {dataset: metrics.get(key) for dataset, metrics in card_data.eval_results.items()}
        rows.append({"metric": METRIC_NAMES[key], "paper": reported, "measured": measured})
    return rows


def render_model_card(card_data: CardData, model_or_config=None) -> str:
    """The complete README.md text (YAML front matter + Markdown body) for a model.

    Args:
        card_data (`CardData`): what the card says beyond the config.
        model_or_config (`PreTrainedModel` or `PretrainedConfig`, *optional*): supplies the label map, problem type,
            pooling, encoder and frozen layers.
    """
    import jinja2

    config = _config_of(model_or_config) if model_or_config is not None else None
    paper_key = card_data.paper or guess_paper(config)
    metadata = card_metadata(card_data, config)
    template_text = resources.files("hf_ser").joinpath("templates", TEMPLATE_NAME).read_text(encoding="utf-8")
    environment = jinja2.Environment(trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    id2label = {int(k): v for k, v in (getattr(config, "id2label", None) or {}).items()}
    from .hub import is_audio_classifier  # hub imports this module

    # Without a config, assume the package's main model (an audio classifier).
    audio_classifier = config is None or is_audio_classifier(getattr(config, "model_type", None))
    return environment.from_string(template_text).render(
        metadata=yaml.safe_dump(metadata, sort_keys=False, allow_unicode=True).strip(),
        card=card_data,
        name=card_data.model_name or (card_data.model_id or "hf-ser-model").split("/")[-1],
        model_id=card_data.model_id or "path/to/model",
        regression=getattr(config, "problem_type", None) == "regression",
        audio_classifier=audio_classifier,
        id2label=dict(sorted(id2label.items())),
        pooling=getattr(config, "pooling", None),
        num_trainable_layers=getattr(config, "num_trainable_layers", None),
        loss=getattr(config, "loss", None),
        encoder=_encoder_summary(config),
        model_class=type(model_or_config).__name__ if hasattr(model_or_config, "config") else None,
        paper_key=paper_key,
        paper=PAPERS.get(paper_key) if paper_key else None,
        paper_rows=_paper_table(card_data, paper_key),
        eval_sets=list(card_data.eval_results),
        versions=card_data.versions or library_versions(),
    )


def write_model_card(path: str | Path, card_data: CardData, model_or_config=None) -> Path | None:
    """Write `README.md` into the folder `path`; never raises (a card must not break a save): on any error it
    logs a warning and returns `None`."""
    try:
        target = Path(path) / "README.md"
        target.write_text(render_model_card(card_data, model_or_config), encoding="utf-8")
        return target
    except Exception as error:  # noqa: BLE001 - the card is optional, the weights are not
        logger.warning("Could not write the model card in %s: %s: %s", path, type(error).__name__, error)
        return None


def _plain(value: Any) -> Any:
    """Enums to their values, anything else that YAML/Jinja would not show plainly to a string."""
    value = getattr(value, "value", value)
    return value if isinstance(value, (int, float, str, bool, type(None))) else str(value)


def _training_args_diff(args) -> dict[str, Any]:
    """TrainingArguments fields whose value differs from the dataclass default (paths, logging and tokens left
    out). Defaults are read from the field declarations: instantiating a second `TrainingArguments` would reset
    accelerate's shared state under the running Trainer."""
    skip = {"output_dir", "logging_dir", "run_name", "hub_model_id", "report_to"}
    changed = {}
    for spec in dataclasses.fields(args):
        name = spec.name
        if name in skip or "token" in name or name.startswith("_") or not spec.init:
            continue
        if spec.default is not dataclasses.MISSING:
            default = spec.default
        elif spec.default_factory is not dataclasses.MISSING:
            default = spec.default_factory()
        else:
            default = dataclasses.MISSING
        value = getattr(args, name, None)
        if default is dataclasses.MISSING or _plain(value) != _plain(default):
            changed[name] = _plain(value)
    return changed


def _config_diff(config) -> dict[str, Any]:
    """Config fields that differ from the config class defaults, encoder sub-config and bookkeeping left out."""
    skip = {
        "encoder_config",
        "auto_map",
        "id2label",
        "label2id",
        "architectures",
        "transformers_version",
        "dtype",
    }
    try:
        diff = config.to_diff_dict()
    except Exception:  # noqa: BLE001
        return {}
    return {k: v for k, v in diff.items() if k not in skip and not isinstance(v, dict)}


def _dataset_stats(dataset) -> dict[str, Any]:
    """Number of clips, speakers, clips per gender and per class of a `datasets.Dataset` (reads metadata columns
    only, never the audio)."""
    stats: dict[str, Any] = {"clips": len(dataset)}
    columns = getattr(dataset, "column_names", None) or []
    if "speaker_id" in columns:
        stats["speakers"] = len(set(dataset["speaker_id"]))
    if "gender" in columns:  # the card's bias section asks readers to compare groups
        genders: dict[str, int] = {}
        for gender in dataset["gender"]:
            genders[str(gender)] = genders.get(str(gender), 0) + 1
        stats["gender"] = dict(sorted(genders.items()))
    if "label" in columns:
        feature = dataset.features.get("label") if getattr(dataset, "features", None) else None
        names = getattr(feature, "names", None)
        counts: dict[str, int] = {}
        for label in dataset["label"]:
            name = (
                names[label] if names and isinstance(label, int) and 0 <= label < len(names) else str(label)
            )
            counts[name] = counts.get(name, 0) + 1
        stats["per_class"] = dict(sorted(counts.items(), key=lambda item: -item[1]))
    if "duration" in columns:
        stats["hours"] = round(sum(dataset["duration"]) / 3600, 2)
    return stats


def _split_metric_key(key: str) -> tuple[str, str] | None:
    """`eval_f1_macro` -> ("validation", "f1_macro"); `eval_test1_ccc_mean` -> ("test1", "ccc_mean")."""
    if not key.startswith("eval_"):
        return None
    rest = key[len("eval_") :]
    if rest in METRIC_NAMES:
        return "validation", rest
    for metric in sorted(METRIC_NAMES, key=len, reverse=True):
        if rest.endswith("_" + metric):
            return rest[: -len(metric) - 1], metric
    return None


class ModelCardCallback(TrainerCallback):
    """A `TrainerCallback` that fills a `CardData` while training and writes README.md with every checkpoint and
    at the end of training.

    It records training arguments that differ from the defaults, config fields that differ from the config
    defaults, training-set statistics, evaluation metrics (`eval_f1_macro` for the evaluation set, or
    `eval_<name>_f1_macro` when `Trainer.evaluate` gets a dict of sets) and library versions. The card data is
    also attached to the model as `model.model_card_data`, where `hf_ser.hub.push_to_hub` finds it.

    Example:
        ```python
        callback = ModelCardCallback(CardData(model_id="org/ser-masp"))
        trainer = Trainer(model=model, args=args, train_dataset=train, callbacks=[callback])
        trainer.train()
        trainer.evaluate(test_set, metric_key_prefix="eval_test")
        push_to_hub(model, "org/ser-masp")  # uses model.model_card_data
        ```
    """

    def __init__(self, card_data: CardData | None = None):
        self.card_data = card_data or CardData()

    def _attach(self, model) -> None:
        if model is not None:
            # Modules that forbid new attributes just go without; the callback keeps its own copy.
            with contextlib.suppress(Exception):
                model.model_card_data = self.card_data

    def on_init_end(self, args, state, control, model=None, **kwargs):
        self._attach(model)

    def on_train_begin(self, args, state, control, model=None, train_dataloader=None, **kwargs):
        try:
            self._attach(model)
            self.card_data.hyperparameters = _training_args_diff(args)
            if model is not None:
                self.card_data.config_changes = _config_diff(model.config)
            dataset = getattr(train_dataloader, "dataset", None)
            if dataset is not None and hasattr(dataset, "column_names"):
                self.card_data.train_stats = _dataset_stats(dataset)
            self.card_data.versions = library_versions()
        except Exception as error:  # noqa: BLE001 - the card must never stop training
            logger.warning("Model card: could not record the training setup (%s).", error)

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        by_set: dict[str, dict[str, float]] = {}
        for key, value in (metrics or {}).items():
            split = _split_metric_key(key)
            if split is not None:
                by_set.setdefault(split[0], {})[split[1]] = value
        for dataset, values in by_set.items():
            self.card_data.add_eval_results(dataset, values)

    def on_save(self, args, state, control, model=None, **kwargs):
        folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        if folder.is_dir():
            write_model_card(folder, self.card_data, model)

    def on_train_end(self, args, state, control, model=None, **kwargs):
        if args.output_dir and Path(args.output_dir).is_dir():
            write_model_card(args.output_dir, self.card_data, model)


def parse_card_metadata(text: str) -> dict[str, Any]:
    """The YAML front matter of a README.md as a dict (raises `ValueError` without one)."""
    if not text.startswith("---\n"):
        raise ValueError("The model card does not start with a YAML block ('---').")
    end = text.find("\n---\n", 4)
    if end < 0:
        raise ValueError("The model card's YAML block is not closed with '---'.")
    return yaml.safe_load(text[4:end]) or {}


__all__ = [
    "CardData",
    "ModelCardCallback",
    "PAPERS",
    "card_metadata",
    "parse_card_metadata",
    "render_model_card",
    "write_model_card",
]
