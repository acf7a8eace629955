"""Publishing to the Hugging Face Hub: a trained model with its card and code (`push_to_hub`), and the Gradio demo
Space (`push_space`).

A pushed model repository holds safetensors weights (pickle files are never uploaded), `config.json` with a complete
`auto_map`, the self-contained code files it names (and their sibling imports), `preprocessor_config.json`, the
tokenizer files when given, and a `README.md` model card (`hf_ser.publishing.model_card`). It loads with
`AutoModelForAudioClassification.from_pretrained(repo)` when hf_ser is imported, and with
`trust_remote_code=True` when it is not.

The card is the folder's own README.md (written by `save_pretrained` from `model.model_card_data`, with the
training set-up and results the trainers recorded), updated with what the push adds (`card_data`, e.g.
`--eval-results`, the repo id): see `hf_ser.publishing.model_card.update_model_card`. An author's README keeps its body; only
its YAML metadata is updated.

Tokens are passed straight to `huggingface_hub` (or read by it from `HF_TOKEN` / the login cache); this module
never logs, prints or writes them.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

from ..errors import HFSERError
from ..models.configuration_base import AUDIO_CLASSIFIER_AUTO_MAP, REQUIRED_AUTO_MAP
from ..registration import is_audio_classifier  # re-exported: hf_ser.publishing.hub.is_audio_classifier
from .model_card import CardData, parse_card_metadata, update_model_card

logger = logging.getLogger(__name__)

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt")
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json")
PACKAGE_DIR = Path(__file__).resolve().parents[1]
# The model files that travel to the Hub beside the weights (they import only torch, transformers and each other).
MODELS_DIR = PACKAGE_DIR / "models"
SPACE_MODEL_VARIABLE = "HF_SER_MODEL"


class PublishError(HFSERError, ValueError):
    """A model folder or Space folder that cannot be published as it is (missing weights, pickle files, ...)."""


def _check_repo_id(repo_id: str) -> None:
    if not isinstance(repo_id, str) or not re.fullmatch(r"[\w.-]+/[\w.-]+", repo_id):
        raise PublishError(f"repo_id must look like 'org/name', got {repo_id!r}.")


def _relative_imports(source: str) -> set[str]:
    return set(re.findall(r"^\s*from \.([\w]+) import", source, flags=re.MULTILINE))


def complete_code_files(folder: Path) -> dict[str, str]:
    """Make `config.json`'s `auto_map` complete and every code file it needs present in `folder`.

    Every model needs `AutoConfig` and `AutoModel`; audio classifiers (models hf_ser registers with
    `AutoModelForAudioClassification`) also need that entry. A missing model entry is filled from the other one.
    Code files named in the map, and the sibling modules they import (`from .pooling import ...`), are copied from
    hf_ser when missing. Returns the final `auto_map`.
    """
    config_path = folder / "config.json"
    config = json.loads(config_path.read_text())
    auto_map: dict[str, Any] = dict(config.get("auto_map") or {})
    required = list(REQUIRED_AUTO_MAP)
    if is_audio_classifier(config.get("model_type")):
        required.append(AUDIO_CLASSIFIER_AUTO_MAP)
        if AUDIO_CLASSIFIER_AUTO_MAP not in auto_map and "AutoModel" in auto_map:
            auto_map[AUDIO_CLASSIFIER_AUTO_MAP] = auto_map["AutoModel"]
    if "AutoModel" not in auto_map and AUDIO_CLASSIFIER_AUTO_MAP in auto_map:
        auto_map["AutoModel"] = auto_map[AUDIO_CLASSIFIER_AUTO_MAP]
    missing = [name for name in required if name not in auto_map]
    if missing:
        raise PublishError(
            f"config.json's auto_map lacks {missing}; the repo would not load with trust_remote_code. "
            "Save the model after `import hf_ser` (which registers its classes for the Auto classes)."
        )
    config["auto_map"] = auto_map
    config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")

    pending = {str(v).split(".")[0] for v in auto_map.values() if isinstance(v, str)}
    seen: set[str] = set()
    while pending:
        module = pending.pop()
        seen.add(module)
        target = folder / f"{module}.py"
        if not target.exists():
            source = MODELS_DIR / f"{module}.py"
            if not source.exists():
                raise PublishError(f"auto_map names {module}.py, which is neither in {folder} nor in hf_ser.")
            shutil.copyfile(source, target)
        pending |= _relative_imports(target.read_text()) - seen
    return auto_map


def _stage_folder(source: Path, staging: Path) -> None:
    """Copy a saved model folder without pickle files (a Trainer's `training_args.bin`, optimizer state, or
    `pytorch_model.bin` weights) and hidden files; its README.md (the card) is kept, to be updated. Weights only in
    pickle form are an error."""
    pickles = sorted(p.name for p in source.iterdir() if p.suffix in PICKLE_SUFFIXES)
    if not any((source / name).is_file() for name in WEIGHT_FILES):
        found = f" (found pickle files {pickles})" if pickles else ""
        raise PublishError(
            f"No safetensors weights ({' or '.join(WEIGHT_FILES)}) in {source}{found}; only safetensors are "
            "published. Load the model and re-save it with `save_pretrained`."
        )
    if pickles:
        logger.info("Not publishing pickle files %s (safetensors weights only).", pickles)
    for path in source.iterdir():
        skipped = path.suffix in PICKLE_SUFFIXES or path.name.startswith(".")
        if path.is_file() and not skipped:
            shutil.copyfile(path, staging / path.name)


def prepare_model_folder(
    model,
    folder: str | Path,
    *,
    repo_id: str | None = None,
    feature_extractor=None,
    tokenizer=None,
    processor=None,
    card_data: CardData | None = None,
) -> Path:
    """Write everything a published model repository holds into `folder` (see the module docstring).

    Args:
        model (`PreTrainedModel` or path):
            A model instance, or a folder written by `save_pretrained`.
        folder (`str` or `Path`):
            An empty folder to fill.
        repo_id (`str`, *optional*):
            The target repository, shown in the card's usage snippets.
        feature_extractor (*optional*):
            Saved alongside; defaults to the folder's own `preprocessor_config.json`, else
            `hf_ser.build_feature_extractor()` (16 kHz, per-utterance normalisation, attention mask).
        tokenizer (*optional*):
            Saved alongside.
        processor (*optional*):
            A processor (feature extractor + tokenizer, e.g. `MultimodalSERProcessor`), saved alongside.
        card_data (`CardData`, *optional*):
            What to update the card with: its evaluation results are added to the card's and its fields that differ
            from the defaults replace the card's. The card itself is the folder's README.md (a model instance's is
            written from `model.model_card_data` by `save_pretrained`); without one, `card_data`'s card is written.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if isinstance(model, (str, Path)):
        source = Path(model)
        if not (source / "config.json").is_file():
            raise PublishError(f"{source} is not a saved model folder (no config.json).")
        _stage_folder(source, folder)
        from transformers import AutoConfig

        from .. import registration

        registration.register_auto_classes()
        model_or_config = AutoConfig.from_pretrained(folder)
    else:
        if not hasattr(model, "save_pretrained"):
            raise PublishError(f"Expected a PreTrainedModel or a saved folder, got {type(model).__name__}.")
        model.save_pretrained(
            folder
        )  # writes README.md from model.model_card_data (see hf_ser.publishing.model_card)
        model_or_config = model

    if not any((folder / name).is_file() for name in WEIGHT_FILES):
        raise PublishError(f"No safetensors weights ({' or '.join(WEIGHT_FILES)}) in the model folder.")
    complete_code_files(folder)

    if processor is not None:
        processor.save_pretrained(folder)
    if feature_extractor is not None:
        feature_extractor.save_pretrained(folder)
    elif not (folder / "preprocessor_config.json").is_file():
        from ..processing.feature_extraction import build_feature_extractor

        build_feature_extractor().save_pretrained(folder)
    if tokenizer is not None:
        tokenizer.save_pretrained(folder)

    try:
        update_model_card(folder, card_data, model_or_config, model_id=repo_id)
    except ValueError as error:  # e.g. a README whose YAML block the Hub would reject
        raise PublishError(f"Cannot update the model card README.md: {error}") from None
    return folder


def push_to_hub(
    model,
    repo_id: str,
    *,
    feature_extractor=None,
    tokenizer=None,
    processor=None,
    card_data: CardData | None = None,
    token: str | bool | None = None,
    private: bool | None = None,
    revision: str | None = None,
    commit_message: str = "Upload hf_ser model",
    endpoint: str | None = None,
):
    """Publish a model to `repo_id` on the Hub in one commit: weights, config, code, feature extractor, card.

    Args:
        model (`PreTrainedModel` or path): the model, or a folder written by `save_pretrained`.
        repo_id (`str`): `org/name`; the repository is created when missing.
        feature_extractor, tokenizer, processor, card_data: see [`prepare_model_folder`].
        token (`str`, *optional*): a Hub token; defaults to `HF_TOKEN` / the login cache. Never logged or written.
        private (`bool`, *optional*): visibility of a newly created repository.
        revision (`str`, *optional*): branch to commit to.
        commit_message (`str`, *optional*): the commit title.
        endpoint (`str`, *optional*): Hub URL; defaults to `HF_ENDPOINT`.

    Returns:
        `huggingface_hub.CommitInfo` of the upload commit.

    Example:
        ```python
        >>> from hf_ser.publishing.hub import push_to_hub
        >>> push_to_hub(trainer.model, "org/ser-masp")  # card filled by ModelCardCallback
        ```
    """
    from huggingface_hub import HfApi

    _check_repo_id(repo_id)
    api = HfApi(endpoint=endpoint, token=token)
    with tempfile.TemporaryDirectory(prefix="hf_ser_push_") as staging:
        folder = prepare_model_folder(
            model,
            Path(staging) / "repo",
            repo_id=repo_id,
            feature_extractor=feature_extractor,
            tokenizer=tokenizer,
            processor=processor,
            card_data=card_data,
        )
        api.create_repo(repo_id, repo_type="model", private=private, exist_ok=True)
        commit = api.upload_folder(
            repo_id=repo_id,
            repo_type="model",
            folder_path=folder,
            revision=revision,
            commit_message=commit_message,
        )
    logger.info("Pushed %s", repo_id)
    return commit


def default_space_dir() -> Path:
    """`space_app/` of a source checkout (the folder next to `src/`)."""
    return PACKAGE_DIR.parents[1] / "space_app"


def prepare_space_folder(folder: str | Path, *, model_id: str, app_dir: str | Path | None = None) -> Path:
    """Write the Space's files into `folder`: `space_app/` (README with Space metadata naming `model_id`,
    `app.py`, `requirements.txt`) plus a copy of the hf_ser package sources, which the app imports."""
    app_dir = Path(app_dir) if app_dir is not None else default_space_dir()
    for required in ("README.md", "app.py", "requirements.txt"):
        if not (app_dir / required).is_file():
            raise PublishError(f"{app_dir} is not a Space folder: {required} is missing (pass app_dir=...).")
    folder = Path(folder)
    shutil.copytree(app_dir, folder, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".*", "flagged"))
    # Vendor the package: the Space installs requirements.txt only, and hf_ser is not on PyPI.
    shutil.copytree(
        PACKAGE_DIR, folder / "hf_ser", ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    )
    readme = folder / "README.md"
    text = readme.read_text(encoding="utf-8")
    metadata = parse_card_metadata(text)
    metadata["models"] = [model_id]
    import yaml

    body = text[text.find("\n---\n", 4) + len("\n---\n") :]
    readme.write_text("---\n" + yaml.safe_dump(metadata, sort_keys=False) + "---\n" + body, encoding="utf-8")
    return folder


def push_space(
    repo_id: str,
    *,
    model_id: str,
    app_dir: str | Path | None = None,
    token: str | bool | None = None,
    private: bool | None = None,
    commit_message: str = "Upload hf_ser demo Space",
    endpoint: str | None = None,
):
    """Publish the Gradio demo (`space_app/`) as the Space `repo_id`, showing the model `model_id`.

    The Space variable `HF_SER_MODEL` is set to `model_id`, which `app.py` reads at start-up.

    Returns:
        `huggingface_hub.CommitInfo` of the upload commit.
    """
    from huggingface_hub import HfApi

    _check_repo_id(repo_id)
    _check_repo_id(model_id)
    api = HfApi(endpoint=endpoint, token=token)
    with tempfile.TemporaryDirectory(prefix="hf_ser_space_") as staging:
        folder = prepare_space_folder(Path(staging) / "space", model_id=model_id, app_dir=app_dir)
        api.create_repo(repo_id, repo_type="space", space_sdk="gradio", private=private, exist_ok=True)
        api.add_space_variable(repo_id, SPACE_MODEL_VARIABLE, model_id)
        commit = api.upload_folder(
            repo_id=repo_id, repo_type="space", folder_path=folder, commit_message=commit_message
        )
    return commit


__all__ = [
    "PublishError",
    "complete_code_files",
    "is_audio_classifier",
    "prepare_model_folder",
    "prepare_space_folder",
    "push_space",
    "push_to_hub",
]
