"""The package's user errors share one base class, `HFSERError`, so callers (and the `hf-ser` command line) catch
one type for every problem the user can fix: bad audio, a bad corpus, a bad recipe, a bad checkpoint, an
unreachable Hub.

Every error class hf_ser defines subclasses `HFSERError` (enforced by a test that walks every module); all but
`HubConnectionError` (a `ConnectionError`) and the CLI's `CommandError` also subclass `ValueError`, so code written
against `ValueError` keeps working.

The model files that travel to the Hub (`configuration_*.py`, `modeling_*.py`, `pooling.py`, `losses.py`,
`wavlm_sdpa_attention.py`, `labels.py`) cannot import this module: they define no error class and raise plain
`ValueError`/`TypeError`, as transformers' own configs and models do, so a model loaded with `trust_remote_code`
behaves exactly as one loaded from hf_ser. Plain `ValueError`s elsewhere in the package are programming errors
(a wrong argument in Python code), not user input; the CLI validates its own arguments before calling the library.

Messages can echo what a server or a file said; `redact_secrets` removes anything that looks like a token before
it is printed.
"""

from __future__ import annotations

import re


class HFSERError(Exception):
    """Base class of every error hf_ser raises for a problem the user can fix (printed as one line by the CLI)."""


class ModelOutputError(HFSERError, ValueError):
    """A model returned NaN or infinite outputs for valid input (corrupt or diverged weights)."""


class HubConnectionError(HFSERError, ConnectionError):
    """The Hugging Face Hub (or the endpoint in `HF_ENDPOINT`) could not be reached or refused the request."""


# Hugging Face tokens (hf_..., api_org_...), bearer headers, and key=value secrets in URLs or messages.
_SECRET_PATTERNS = (
    re.compile(r"\b(hf_|api_org_)[A-Za-z0-9]{8,}"),
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]{8,}"),
    re.compile(
        r"(?i)((?:token|access_token|api_key|apikey|password|secret|authorization)[\"']?\s*[=:]\s*[\"']?)"
        r"[^\s\"'&,;]{4,}"
    ),
)


def redact_secrets(text: str) -> str:
    """`text` with anything that looks like a token or a password replaced by `***`."""
    text = _SECRET_PATTERNS[0].sub(r"\1***", text)
    text = _SECRET_PATTERNS[1].sub(r"\1***", text)
    return _SECRET_PATTERNS[2].sub(r"\1***", text)


def one_line(error: BaseException, limit: int = 400) -> str:
    """A one-line, redacted description of `error`: its message's first non-empty line (or its type's name)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    text = lines[0] if lines else type(error).__name__
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return redact_secrets(text)


def is_network_error(error: BaseException) -> bool:
    """True for errors raised while talking to a server (connection refused, timeouts, HTTP errors)."""
    if isinstance(error, (ConnectionError, TimeoutError, HubConnectionError)):
        return True
    # httpcore's, urllib3's and httpx forks' own exceptions (httpx2.ConnectError from huggingface_hub 2) do not
    # derive from the builtin ones.
    roots = {cls.__module__.split(".")[0] for cls in type(error).__mro__}
    if any(root.startswith(("httpx", "httpcore", "urllib3", "requests")) for root in roots):
        return True
    try:
        import httpx

        if isinstance(error, httpx.HTTPError):
            return True
    except ImportError:  # pragma: no cover - httpx comes with huggingface_hub
        pass
    try:
        from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled

        if isinstance(error, (HfHubHTTPError, OfflineModeIsEnabled)):
            return True
    except ImportError:  # pragma: no cover
        pass
    return False


__all__ = [
    "HFSERError",
    "HubConnectionError",
    "ModelOutputError",
    "is_network_error",
    "one_line",
    "redact_secrets",
]
