"""Old module paths keep working: before the subpackages, hf_ser was one flat folder (`hf_ser.trainer`,
`hf_ser.model_card`, ...). Code and pickled training arguments that name those modules still import, and get the
very same module objects as the new paths (`hf_ser.trainer is hf_ser.training.trainer`).

New code should import from `hf_ser` itself (the public API) or from the new paths.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys

# Old path -> new path. `hf_ser.inference` and `hf_ser.evaluation` became packages of the same name; they keep the
# old modules' names through a module-level `__getattr__` instead.
MOVED_MODULES = {
    "hf_ser." + old: "hf_ser." + new
    for old, new in {
        "configuration_base": "models.configuration_base",
        "configuration_wavlm_masp": "models.configuration_wavlm_masp",
        "configuration_multimodal": "models.configuration_multimodal",
        "configuration_multiview": "models.configuration_multiview",
        "modeling_base": "models.modeling_base",
        "modeling_wavlm_masp": "models.modeling_wavlm_masp",
        "modeling_multimodal": "models.modeling_multimodal",
        "modeling_multiview": "models.modeling_multiview",
        "pooling": "models.pooling",
        "losses": "models.losses",
        "labels": "models.labels",
        "wavlm_sdpa_attention": "models.wavlm_sdpa_attention",
        "feature_extraction": "processing.feature_extraction",
        "processing_multimodal": "processing.processing_multimodal",
        "data_collator": "processing.data_collator",
        "embedding_cache": "processing.embedding_cache",
        "crossval": "data.crossval",
        "trainer": "training.trainer",
        "sampler": "training.sampler",
        "checkpoints": "training.checkpoints",
        "recipes": "training.recipes",
        "optimization": "training.optimization",
        "demo": "training.demo",
        "metrics": "evaluation.metrics",
        "submission": "evaluation.submission",
        "analysis": "evaluation.analysis",
        "probing": "evaluation.probing",
        "batching": "inference.batching",
        "pipelines": "inference.pipelines",
        "prediction": "inference.files",
        "ensemble": "inference.ensemble",
        "fusion_search": "inference.fusion_search",
        "model_card": "publishing.model_card",
        "hub": "publishing.hub",
        "convert": "publishing.convert",
    }.items()
}


class _MovedModuleFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds `hf_ser.<old path>` and answers with the module at its new path (imported if needed)."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname not in MOVED_MODULES:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec):
        # The module object itself, not a copy: isinstance checks and monkeypatching see one module.
        return importlib.import_module(MOVED_MODULES[spec.name])

    def exec_module(self, module):
        pass  # already executed under its new name


def forward_to_module(package: str, module: str):
    """A module-level `__getattr__` for `package`, which replaced a module of the same name: the old module's names
    resolve from `package.module` (`hf_ser.inference.predict_logits` is `hf_ser.inference.predict.predict_logits`),
    imported on first use so that importing a sibling module does not import it."""

    def __getattr__(name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        try:
            return getattr(importlib.import_module(f"{package}.{module}"), name)
        except AttributeError:
            raise AttributeError(f"module {package!r} has no attribute {name!r}") from None

    return __getattr__


def install() -> None:
    if not any(isinstance(finder, _MovedModuleFinder) for finder in sys.meta_path):
        sys.meta_path.append(_MovedModuleFinder())
