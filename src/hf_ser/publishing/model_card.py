"""Model cards of hf_ser models, part of the model's life as in sentence-transformers and SpanMarker:

- `CardData`, a `huggingface_hub.ModelCardData`, lives on the model (`model.model_card_data`, never in
  `config.json`);
- hf_ser's trainers add `ModelCardCallback`, which fills it with the training set-up and evaluation results;
- `save_pretrained` of hf_ser's models writes it as `README.md` beside the weights (`install_model_card_hooks`,
  run at `import hf_ser`, installs the hook that `hf_ser.models.modeling_base` calls), and `from_pretrained` of a local
  folder reads it back;
- `hf_ser.publishing.hub.push_to_hub` / `hf-ser push` keep that README and update it (`update_model_card`).

The card is rendered with `huggingface_hub.ModelCard.from_template` from the Jinja template
`hf_ser/publishing/templates/model_card.md`. Its YAML metadata follows the Hub's model card specification: `library_name:
transformers`, `pipeline_tag` by model kind (`audio-classification` for the audio classifiers, `other` for the
multimodal and multi-view models, which read a transcript or cached embeddings besides audio), tags, license,
datasets, and a `model-index` built from `huggingface_hub.EvalResult`s (macro/micro F1 per test set, CCC per
attribute). Writing a card during a save never raises: `write_model_card` logs a warning and returns `None`.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import json
import logging
import math
import os
import platform
import re
from dataclasses import dataclass, field, fields
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from huggingface_hub import EvalResult, ModelCard, ModelCardData
from transformers import TrainerCallback

from ..models.modeling_base import set_model_card_hooks
from ..registration import MODELS, is_audio_classifier

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

DEFAULT_TAGS = ("hf_ser", "speech-emotion-recognition")
AUDIO_CLASSIFICATION = "audio-classification"
# The Hub's task for models that are not audio classifiers (speech + transcript, cached per-view embeddings):
# no Hub task reads such inputs, and "audio-classification" would offer a widget that cannot run them.
OTHER_TASK = "other"
# The hidden comment that carries the card data in a README.md that hf_ser wrote. Its presence also means "hf_ser
# owns this card's body": a README without it is the author's, and hf_ser only updates its YAML metadata.
CARD_DATA_COMMENT = re.compile(r"<!-- hf_ser card data: (\{.*?\}) -->", re.DOTALL)


@dataclass
class CardData(ModelCardData):
    r"""Everything the model card says about a model that its config does not: a `huggingface_hub.ModelCardData`
    whose metadata (`to_dict()`, `to_yaml()`) is the card's YAML block, built with `huggingface_hub`'s `EvalResult`
    and `eval_results_to_model_index`.

    The card data lives on the model (`model.model_card_data`, see `model_card_data()`), never in `config.json`:
    hf_ser's trainers fill it (`ModelCardCallback`), `save_pretrained` writes it as `README.md`, and
    `hf_ser.publishing.hub.push_to_hub` publishes and updates that README. A README written by hf_ser carries these fields
    in a hidden comment, so `CardData.from_model_card(text)` reads them back (results at full precision).

    `eval_results` is hf_ser's own form (a dict of metric dicts per evaluation set), unlike
    `ModelCardData.eval_results` (a list of `EvalResult`): `to_eval_results()` converts it.

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
        base_model (`str` or `list[str]`, *optional*):
            The Hub ids of the pretrained checkpoints the model was built around; by default those the model
            records (`base_model_of`), None for a model trained from scratch.
        tags (`list[str]`, *optional*):
            Extra tags added to `hf_ser`, `speech-emotion-recognition` (and `audio-classification` for audio
            classifiers).
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
    base_model: str | list[str] | None = None
    tags: list[str] = field(default_factory=list)
    paper: str | None = None
    eval_results: dict[str, dict[str, float]] = field(default_factory=dict)
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    config_changes: dict[str, Any] = field(default_factory=dict)
    train_stats: dict[str, Any] = field(default_factory=dict)
    space_id: str | None = None
    versions: dict[str, str] = field(default_factory=dict)
    # The config of the model the card describes (its kind decides the pipeline tag); set by `bind`, not saved.
    _config: Any = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self):
        if self.paper is not None and self.paper not in PAPERS:
            raise ValueError(f"paper={self.paper!r} is unknown; use one of {sorted(PAPERS)} or None.")

    def update(self, **kwargs) -> CardData:
        """Set fields by name (unknown names raise `ValueError`); returns `self`."""
        names = _field_names()
        for key, value in kwargs.items():
            if key not in names:
                raise ValueError(f"CardData has no field {key!r}; fields are {sorted(names)}.")
            setattr(self, key, value)
        return self

    def add_eval_results(self, dataset: str, metrics: dict[str, float]) -> None:
        """Record the metrics of one evaluation set (known metric keys only, finite numbers only)."""
        kept = {}
        for key, value in metrics.items():
            if (
                key in METRIC_NAMES
                and isinstance(value, (int, float))
                and not isinstance(value, bool)
                and math.isfinite(value)
            ):
                kept[key] = float(value)
        if kept:
            self.eval_results.setdefault(dataset, {}).update(kept)

    def merge(self, other: CardData) -> CardData:
        """Update this card with what `other` sets: its fields that differ from the defaults replace these,
        its evaluation results are added set by set (a metric measured again replaces the old value), its tags are
        added. Returns `self`."""
        defaults = CardData()
        for name in _field_names():
            value = getattr(other, name)
            if name == "eval_results":
                for dataset, metrics in value.items():
                    self.add_eval_results(dataset, metrics)
            elif name == "tags":
                self.tags = list(dict.fromkeys([*self.tags, *value]))
            elif value != getattr(defaults, name):
                setattr(self, name, copy.deepcopy(value))
        return self

    def bind(self, model_or_config) -> CardData:
        """Describe this model (or config): its kind decides `pipeline_tag`, its problem type the task name."""
        if model_or_config is not None:
            self._config = _config_of(model_or_config)
        return self

    # ------------------------------------------------------------------------------------------------ metadata
    @property
    def audio_classifier(self) -> bool:
        """Whether the model answers to `AutoModelForAudioClassification`: for hf_ser's models as registered, for
        other models (a transformers audio classifier trained with hf_ser's trainers) as transformers maps them.
        Without a bound config: hf_ser's main model, an audio classifier."""
        if self._config is None:
            return True
        model_type = getattr(self._config, "model_type", None)
        if model_type in {config_class.model_type for config_class, _, _ in MODELS}:
            return is_audio_classifier(model_type)
        from transformers.models.auto.modeling_auto import MODEL_FOR_AUDIO_CLASSIFICATION_MAPPING_NAMES

        return model_type in MODEL_FOR_AUDIO_CLASSIFICATION_MAPPING_NAMES

    @property
    def pipeline_tag(self) -> str:
        """`audio-classification` for audio classifiers, `other` for the models that read more than audio."""
        return AUDIO_CLASSIFICATION if self.audio_classifier else OTHER_TASK

    @property
    def title(self) -> str:
        return self.model_name or (self.model_id or "hf-ser-model").split("/")[-1]

    def to_eval_results(self) -> list[EvalResult]:
        """The evaluation results as `huggingface_hub.EvalResult`s (one per set and metric, rounded to 4 digits)."""
        regression = getattr(self._config, "problem_type", None) == "regression"
        task_name = "Speech emotion attribute prediction" if regression else "Speech emotion recognition"
        results = []
        for dataset, metrics in self.eval_results.items():
            for key, value in metrics.items():
                metric_type, args = METRIC_TYPES.get(key, ("ccc" if key.startswith("ccc") else key, None))
                results.append(
                    EvalResult(
                        task_type=self.pipeline_tag,
                        task_name=task_name,
                        dataset_type="msp-podcast",
                        dataset_name=dataset,
                        dataset_split=dataset,
                        metric_type=metric_type,
                        metric_value=round(float(value), 4),
                        metric_name=METRIC_NAMES[key],
                        metric_args=dict(args) if args else None,
                    )
                )
        return results

    def to_hub_card_data(self) -> ModelCardData:
        """The card's YAML metadata as a plain `huggingface_hub.ModelCardData` (the Hub model card specification)."""
        reported = {key for metrics in self.eval_results.values() for key in metrics}
        regression = getattr(self._config, "problem_type", None) == "regression"
        metrics = [name for name in ("f1", "ccc") if any(k.startswith(name) for k in reported)]
        metrics = metrics or (["ccc"] if regression else ["f1"])
        extra = (AUDIO_CLASSIFICATION,) if self.audio_classifier else ()
        results = self.to_eval_results()
        return ModelCardData(
            library_name="transformers",
            pipeline_tag=self.pipeline_tag,
            language=list(self.language),
            license=self.license,
            tags=list(dict.fromkeys([*DEFAULT_TAGS, *extra, *self.tags])),
            datasets=list(self.datasets) or None,
            base_model=self.base_model,
            metrics=metrics,
            model_name=self.title if results else None,  # the model-index name
            eval_results=results or None,
        )

    def to_dict(self) -> dict[str, Any]:
        """The YAML metadata block as a dict (`model-index` from `eval_results_to_model_index`)."""
        return self.to_hub_card_data().to_dict()

    # ------------------------------------------------------------------------------------------ round trip
    def to_json(self) -> str:
        """The fields as one line of JSON, safe inside an HTML comment."""
        data = {name: getattr(self, name) for name in _field_names()}
        # "-->" would close the comment; inside a JSON string "\u003e" is the same ">".
        return json.dumps(data, ensure_ascii=True, default=str).replace("-->", "--\\u003e")

    @classmethod
    def from_model_card(cls, text: str) -> CardData | None:
        """The card data of a README.md that hf_ser wrote; `None` for any other README (no hf_ser comment).

        The YAML block wins for what it holds (license, language, datasets, base model, extra tags), so edits
        made there are kept; the rest comes from the hidden comment. Raises `ValueError` on YAML the Hub would
        reject (e.g. an unreadable `model-index`)."""
        card = ModelCard(text)  # validates the metadata as the Hub does
        match = CARD_DATA_COMMENT.search(card.text)
        if match is None:
            return None
        try:
            stored = json.loads(match.group(1))
        except json.JSONDecodeError as error:
            raise ValueError(f"The card's hf_ser data comment is not valid JSON: {error.msg}.") from None
        names = _field_names()
        unknown = sorted(set(stored) - set(names))
        if unknown:
            logger.warning("Ignoring unknown model card fields %s.", unknown)
        data = cls(**{key: value for key, value in stored.items() if key in names})
        metadata = card.data
        for key in ("license", "language", "datasets", "base_model"):
            if metadata.get(key) is not None:
                value = metadata.get(key)
                setattr(
                    data,
                    key,
                    [value] if key in ("language", "datasets") and isinstance(value, str) else value,
                )
        if metadata.get("tags"):
            automatic = {*DEFAULT_TAGS, AUDIO_CLASSIFICATION}
            data.tags = [tag for tag in metadata.get("tags") if tag not in automatic]
        return data


def _field_names() -> list[str]:
    return [spec.name for spec in fields(CardData) if spec.init]


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
    return copy.copy(card_data).bind(config).to_dict()


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


def build_model_card(card_data: CardData, model_or_config=None) -> ModelCard:
    """The model card as a `huggingface_hub.ModelCard`, from hf_ser's template (`ModelCard.from_template`).

    Args:
        card_data (`CardData`): what the card says beyond the config.
        model_or_config (`PreTrainedModel` or `PretrainedConfig`, *optional*): supplies the label map, problem type,
            pooling, encoder and frozen layers; defaults to the config `card_data` is bound to.
    """
    card_data = copy.copy(card_data)  # bind without changing the caller's card
    card_data.bind(model_or_config)
    config = card_data._config
    paper_key = card_data.paper or guess_paper(config)
    template = (
        resources.files("hf_ser.publishing").joinpath("templates", TEMPLATE_NAME).read_text(encoding="utf-8")
    )
    id2label = {int(k): v for k, v in (getattr(config, "id2label", None) or {}).items()}
    return ModelCard.from_template(
        card_data,
        template_str=template,
        card=card_data,
        card_json=card_data.to_json(),
        name=card_data.title,
        model_id=card_data.model_id or "path/to/model",
        regression=getattr(config, "problem_type", None) == "regression",
        audio_classifier=card_data.audio_classifier,
        model_type=getattr(config, "model_type", None),
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


def render_model_card(card_data: CardData, model_or_config=None) -> str:
    """The complete README.md text (YAML front matter + Markdown body) for a model; see `build_model_card`."""
    return _ending_with_newline(str(build_model_card(card_data, model_or_config)))


def _ending_with_newline(text: str) -> str:
    return text if text.endswith("\n") else text + "\n"


def _merge_results(old: list[EvalResult] | None, new: list[EvalResult]) -> list[EvalResult]:
    """`old` with `new` added; a result for the same task, dataset and metric as an old one replaces it."""
    merged = list(old or [])
    for result in new:
        merged = [kept for kept in merged if not kept.is_equal_except_value(result)]
        merged.append(result)
    return merged


def _updated_metadata(card: ModelCard, generated: ModelCardData) -> None:
    """Update the YAML metadata of an author's card (its body stays): hf_ser's library name and pipeline tag, its
    tags added, results merged into `model-index`, and license, language, datasets and base model where the card
    has none."""
    data = card.data
    data.library_name = generated.library_name
    data.pipeline_tag = generated.pipeline_tag
    data.tags = list(dict.fromkeys([*(data.get("tags") or []), *(generated.tags or [])]))
    for key in ("license", "language", "datasets", "base_model"):
        if data.get(key) is None and generated.get(key) is not None:
            data[key] = generated.get(key)
    data.metrics = list(dict.fromkeys([*(data.get("metrics") or []), *(generated.metrics or [])]))
    if generated.eval_results:
        data.eval_results = _merge_results(data.get("eval_results"), generated.eval_results)
        data.model_name = data.get("model_name") or generated.model_name


def _write_card(target: Path, card_data: CardData, model_or_config, existing: ModelCard | None) -> None:
    card = build_model_card(card_data, model_or_config)
    if existing is not None:
        # Keep the metadata keys an author added to the YAML block of a generated card (a widget, a thumbnail).
        for key, value in existing.data.to_dict().items():
            if key not in card.data and key != "model-index":
                card.data[key] = value
    target.write_text(_ending_with_newline(str(card)), encoding="utf-8")


def _read_existing(target: Path) -> tuple[ModelCard | None, CardData | None]:
    if not target.is_file():
        return None, None
    text = target.read_text(encoding="utf-8")
    return ModelCard(text), CardData.from_model_card(text)


def write_model_card(path: str | Path, card_data: CardData, model_or_config=None) -> Path | None:
    """Write the model's card as `README.md` into the folder `path` (what `save_pretrained` does).

    A README that hf_ser wrote is replaced (metadata keys an author added to its YAML are kept); a README that
    hf_ser did not write is the author's: its body is kept and only its YAML metadata is updated. Never raises (a
    card must not break a save): on any error it logs a warning and returns `None`."""
    try:
        target = Path(path) / "README.md"
        if not target.parent.is_dir():
            raise FileNotFoundError(f"no folder {target.parent}")
        existing, generated = _read_existing(target)
        if existing is not None and generated is None:
            _updated_metadata(existing, copy.copy(card_data).bind(model_or_config).to_hub_card_data())
            existing.save(target)
        else:
            _write_card(target, card_data, model_or_config, existing)
        return target
    except Exception as error:  # noqa: BLE001 - the card is optional, the weights are not
        logger.warning("Could not write the model card in %s: %s: %s", path, type(error).__name__, error)
        return None


def update_model_card(
    path: str | Path, card_data: CardData | None = None, model_or_config=None, *, model_id: str | None = None
) -> Path:
    """Update the `README.md` in the folder `path` with what `card_data` sets (what `hf-ser push` does).

    - a README that hf_ser wrote: its card data is read back, updated with `card_data` (`CardData.merge`: new
      results added, fields set replace old ones) and the card is written again;
    - an author's README: its body is kept, its YAML metadata updated (results merged into `model-index`);
    - no README: the card of `card_data` is written.

    Unlike `write_model_card` it raises: publishing a card that could not be read would lose its results.
    """
    target = Path(path) / "README.md"
    card_data = card_data if card_data is not None else CardData()
    existing, generated = _read_existing(target)
    base = generated if generated is not None else copy.deepcopy(card_data)
    if generated is not None:
        base.merge(card_data)
    if model_id is not None:
        base.model_id = model_id
    if existing is not None and generated is None:
        _updated_metadata(existing, base.bind(model_or_config).to_hub_card_data())
        existing.save(target)
    else:
        _write_card(target, base, model_or_config, existing)
    return target


def base_model_of(model) -> str | list[str] | None:
    """The Hub ids of the pretrained checkpoints the model was built around (`model.pretrained_from`, set by
    `from_pretrained` of an encoder checkpoint and by `from_encoders_pretrained`): one id, a list, or None for a
    model trained from scratch. Local paths are left out: the Hub's `base_model` names Hub repositories."""
    ids = [
        name
        for name in map(str, getattr(model, "pretrained_from", ()) or ())
        if re.fullmatch(r"[\w.-]+/[\w.-]+", name) and not os.path.exists(name)
    ]
    return (ids[0] if len(ids) == 1 else ids) or None


def model_card_data(model) -> CardData:
    """The model's card data (`model.model_card_data`), created and attached when it has none."""
    card_data = getattr(model, "model_card_data", None)
    if not isinstance(card_data, CardData):
        card_data = CardData(base_model=base_model_of(model))
        with contextlib.suppress(Exception):  # modules that forbid new attributes go without
            model.model_card_data = card_data
    return card_data.bind(model)


def _save_hook(model, folder) -> None:
    write_model_card(folder, model_card_data(model), model)


def _load_hook(model, folder) -> None:
    try:
        readme = Path(folder) / "README.md"
        if readme.is_file():
            card_data = CardData.from_model_card(readme.read_text(encoding="utf-8"))
            if card_data is not None:
                model.model_card_data = card_data.bind(model)
    except Exception as error:  # noqa: BLE001 - a broken card must not stop a model from loading
        logger.warning("Could not read the model card in %s: %s: %s", folder, type(error).__name__, error)


def install_model_card_hooks() -> None:
    """Make `save_pretrained` of hf_ser's models write the card and `from_pretrained` of a local folder read it
    back (`hf_ser.models.modeling_base.set_model_card_hooks`; called at `import hf_ser`, idempotent)."""
    set_model_card_hooks(on_save=_save_hook, on_load=_load_hook)


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
    """`eval_f1_macro` -> ("validation", "f1_macro"); `eval_test1_ccc_mean` -> ("test1", "ccc_mean");
    `test_f1_macro` (`Trainer.predict`'s default prefix) -> ("test", "f1_macro")."""
    for metric in sorted(METRIC_NAMES, key=len, reverse=True):
        if key.endswith("_" + metric):
            prefix = key[: -len(metric) - 1]
            if prefix == "eval":
                return "validation", metric
            if prefix.startswith("eval_"):
                prefix = prefix[len("eval_") :]
            return (prefix, metric) if prefix else None
    return None


def _results_by_set(metrics: dict[str, Any] | None) -> dict[str, dict[str, float]]:
    by_set: dict[str, dict[str, float]] = {}
    for key, value in (metrics or {}).items():
        split = _split_metric_key(key)
        if split is not None:
            by_set.setdefault(split[0], {})[split[1]] = value
    return by_set


def _best_checkpoint_results(state) -> dict[str, dict[str, float]]:
    """The evaluation results logged at the step of `state.best_model_checkpoint` (the weights that
    `load_best_model_at_end` restores)."""
    match = re.search(r"checkpoint-(\d+)$", str(state.best_model_checkpoint or ""))
    if match is None:
        return {}
    step = int(match.group(1))
    logged: dict[str, Any] = {}
    for entry in state.log_history:
        if entry.get("step") == step:
            logged.update(entry)
    return _results_by_set(logged)


class ModelCardCallback(TrainerCallback):
    """A `TrainerCallback` that fills the model's `CardData` while training and writes README.md with every
    checkpoint and at the end of training.

    hf_ser's `FocalLossTrainer` and `CCCLossTrainer` add one themselves (unless one is given in `callbacks`); add
    it to a plain `transformers.Trainer` to get the same card.

    It records training arguments that differ from the defaults, config fields that differ from the config
    defaults, training-set statistics, library versions and evaluation metrics: `eval_f1_macro` for the evaluation
    set ("validation"), `eval_<name>_f1_macro` when `Trainer.evaluate` gets a dict of sets or
    `metric_key_prefix="eval_<name>"`, and `test_f1_macro` from `Trainer.predict` ("test"). Results recorded before
    training starts are dropped (they describe other weights), and with `load_best_model_at_end` the validation
    results are those of the restored checkpoint. The card data is the model's own `model.model_card_data`
    (created when missing, or the given `card_data`), which `save_pretrained` writes as README.md and
    `hf_ser.publishing.hub.push_to_hub` publishes.

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
        self._given = card_data is not None
        self.card_data = card_data if card_data is not None else CardData()

    def _attach(self, model) -> None:
        if model is None:
            return
        if not self._given:
            # No card given: the model's own card data (e.g. read from its README.md) is the one to fill.
            self.card_data = model_card_data(model)
            self._given = True
        # Modules that forbid new attributes just go without; the callback keeps its own copy.
        with contextlib.suppress(Exception):
            model.model_card_data = self.card_data.bind(model)

    def on_init_end(self, args, state, control, model=None, **kwargs):
        self._attach(model)

    def on_train_begin(self, args, state, control, model=None, train_dataloader=None, **kwargs):
        try:
            self._attach(model)
            if not state.global_step:  # a fresh run (not a resumed one): earlier results are of other weights
                self.card_data.eval_results.clear()
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
        for dataset, values in _results_by_set(metrics).items():
            self.card_data.add_eval_results(dataset, values)

    def on_predict(self, args, state, control, metrics=None, **kwargs):
        self.on_evaluate(args, state, control, metrics=metrics)

    def on_save(self, args, state, control, model=None, **kwargs):
        folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        if folder.is_dir():
            write_model_card(folder, self.card_data, model)

    def on_train_end(self, args, state, control, model=None, **kwargs):
        if args.load_best_model_at_end and state.best_model_checkpoint:
            for dataset, values in _best_checkpoint_results(state).items():
                self.card_data.eval_results.pop(dataset, None)
                self.card_data.add_eval_results(dataset, values)
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
    "build_model_card",
    "card_metadata",
    "install_model_card_hooks",
    "model_card_data",
    "parse_card_metadata",
    "render_model_card",
    "update_model_card",
    "write_model_card",
]
