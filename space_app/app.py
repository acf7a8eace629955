"""Gradio demo of an hf_ser speech emotion model, ready to run as a Hugging Face Space.

The model comes from the environment variable `HF_SER_MODEL` (a Hub id or a local folder; the default
`org/ser-masp` is a placeholder to replace with your published model, see README.md). Upload or record speech and
get:

- a categorical model: the probabilities of the 8 MSP-Podcast emotions as a bar chart;
- an attribute model (`problem_type="regression"`): arousal, valence and dominance;
- for recordings longer than `TIMELINE_MIN_SECONDS`, a timeline over `WINDOW_SECONDS` windows.

Bad input (nothing uploaded, a file that is not audio, silence, a recording longer than `MAX_SECONDS`) is answered
with a message in the page, never a crash. Uploads are limited to `MAX_FILE_SIZE` by the server.
"""

from __future__ import annotations

import functools
import math
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
# On a Space the hf_ser sources are vendored next to app.py (hf_ser.publishing.hub.push_space copies them).
if (HERE / "hf_ser").is_dir():
    sys.path.insert(0, str(HERE))

import gradio as gr  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402

import hf_ser  # noqa: E402,F401  (registers the model classes with the Auto classes)
from hf_ser.audio import AudioError, audio_duration, load_audio  # noqa: E402
from hf_ser.inference.predict import predict_logits  # noqa: E402
from hf_ser.models.labels import SAMPLING_RATE  # noqa: E402

DEFAULT_MODEL = "org/ser-masp"
MAX_FILE_SIZE = "20mb"
MAX_SECONDS = 10 * 60.0
# The challenge clips last 3-11 s: whole-clip inference up to 12 s (the training crop), windows beyond.
WHOLE_CLIP_SECONDS = 12.0
TIMELINE_MIN_SECONDS = 8.0
WINDOW_SECONDS = 4.0
HOP_SECONDS = 2.0
# -60 dBFS RMS: quieter than any usable speech recording.
SILENCE_RMS = 1e-3


def model_id_from_env() -> str:
    return os.environ.get("HF_SER_MODEL", DEFAULT_MODEL)


@functools.lru_cache(maxsize=2)
def load_model(model_id: str):
    """The model and its feature extractor (cached: one load per process). A folder written by `hf-ser export`
    runs in ONNX Runtime (`hf_ser.onnx.ORTSERModel`), with the same predictions."""
    from transformers import AutoFeatureExtractor, AutoModelForAudioClassification

    from hf_ser.onnx import ORTSERModel, is_onnx_folder

    if is_onnx_folder(model_id):
        model = ORTSERModel.from_pretrained(model_id)
        return model, model.feature_extractor
    try:
        # No remote code, ever: the registered hf_ser classes load the model, and no prompt can offer to run a
        # repository's code files.
        model = AutoModelForAudioClassification.from_pretrained(model_id, trust_remote_code=False).eval()
        feature_extractor = AutoFeatureExtractor.from_pretrained(model_id, trust_remote_code=False)
    except (OSError, ValueError) as error:
        hint = " (the default is a placeholder)" if model_id == DEFAULT_MODEL else ""
        raise RuntimeError(
            f"Cannot load the model {model_id!r}{hint}: {error}. Set the environment variable (Space variable) "
            "HF_SER_MODEL to a published hf_ser model id or a local model folder."
        ) from error
    return model, feature_extractor


def is_regression(model) -> bool:
    return getattr(model.config, "problem_type", None) == "regression"


def read_waveform(path: str | None) -> np.ndarray:
    """Checks an uploaded file and returns it as 16 kHz mono float32; bad input raises `gr.Error`.

    The length is checked before decoding, from the header or container metadata of any format
    (`hf_ser.audio.load_audio` with `max_seconds`); a file whose metadata tells no duration is decoded block by
    block and refused as soon as it passes `MAX_SECONDS`, so memory stays bounded for every upload."""
    if not path:
        raise gr.Error("No audio: upload a file or record with the microphone, then press Analyze.")
    name = Path(path).name
    duration = audio_duration(path)
    if duration is not None and duration > MAX_SECONDS:
        raise gr.Error(
            f"{name} lasts {duration / 60:.1f} min; this demo accepts up to {MAX_SECONDS / 60:.0f} min."
        )
    try:
        waveform = load_audio(path, target_sr=SAMPLING_RATE, max_seconds=MAX_SECONDS)
    except AudioError as error:
        message = str(error).replace(str(path), name)
        if "more than" in message:
            raise gr.Error(
                f"{name} is too long: this demo accepts up to {MAX_SECONDS / 60:.0f} min ({message})."
            ) from None
        raise gr.Error(f"{name} could not be used as audio: {message}") from None
    rms = float(np.sqrt(np.mean(np.square(waveform, dtype=np.float64))))
    if rms < SILENCE_RMS:
        level = f"{20 * math.log10(rms):.0f} dBFS" if rms > 0 else "no signal at all"
        raise gr.Error(f"{name} is silent ({level}): nothing to analyse. Upload or record some speech.")
    return waveform


def windows(waveform: np.ndarray) -> tuple[list[np.ndarray], list[float]]:
    """Overlapping windows covering the whole recording, with their centre times in seconds."""
    size, hop = int(WINDOW_SECONDS * SAMPLING_RATE), int(HOP_SECONDS * SAMPLING_RATE)
    starts = list(range(0, max(len(waveform) - size, 0) + 1, hop))
    if starts[-1] + size < len(waveform):  # the tail gets its own window
        starts.append(len(waveform) - size)
    chunks = [waveform[s : s + size] for s in starts]
    centres = [(s + len(c) / 2) / SAMPLING_RATE for s, c in zip(starts, chunks, strict=True)]
    return chunks, centres


def scores(model, logits: np.ndarray) -> np.ndarray:
    """Probabilities (softmax) for a classifier, the raw predictions for an attribute model."""
    if is_regression(model):
        return logits
    return torch.softmax(torch.from_numpy(logits), dim=-1).numpy()


def analyze(audio_path: str | None, model_id: str | None = None):
    """Everything the page shows for one recording.

    Returns:
        `(probabilities, attributes, timeline, summary)`: `{emotion: probability}` for `gr.Label` (None for an
        attribute model); a DataFrame of attribute values (None for a classifier); a DataFrame with one row per
        window and class for the timeline (None for short clips); a Markdown summary.
    """
    model, feature_extractor = load_model(model_id or model_id_from_env())
    waveform = read_waveform(audio_path)
    duration = len(waveform) / SAMPLING_RATE
    names = [model.config.id2label[i] for i in range(model.config.num_labels)]

    timeline = None
    if duration > TIMELINE_MIN_SECONDS:
        chunks, centres = windows(waveform)
        window_scores = scores(model, predict_logits(model, feature_extractor, chunks, batch_size=8))
        column = "value" if is_regression(model) else "probability"
        kind = "attribute" if is_regression(model) else "emotion"
        rows = [
            {"time (s)": round(t, 2), kind: name, column: float(value)}
            for t, row in zip(centres, window_scores, strict=True)
            for name, value in zip(names, row, strict=True)
        ]
        timeline = pd.DataFrame(rows)
    if duration <= WHOLE_CLIP_SECONDS:
        overall = scores(model, predict_logits(model, feature_extractor, [waveform]))[0]
        how = "the whole recording"
    else:
        # Long recordings: average of the window predictions (self-attention over minutes is too costly).
        overall = window_scores.mean(axis=0)
        how = f"the mean over {len(window_scores)} windows of {WINDOW_SECONDS:g} s"

    if is_regression(model):
        attributes = pd.DataFrame({"attribute": names, "value": [float(v) for v in overall]})
        values = ", ".join(f"{n} {v:.2f}" for n, v in zip(names, overall, strict=True))
        summary = f"**{values}** ({how}, {duration:.1f} s)."
        return None, attributes, timeline, summary
    probabilities = {name: float(p) for name, p in zip(names, overall, strict=True)}
    top = max(probabilities, key=probabilities.get)
    summary = f"Most likely: **{top}** ({probabilities[top]:.0%}), from {how} ({duration:.1f} s)."
    return probabilities, None, timeline, summary


def example_files(folder: Path) -> list[str]:
    """Generated example recordings: espeak-ng speech (tones when espeak-ng is missing) and a long one."""
    import soundfile as sf

    folder.mkdir(parents=True, exist_ok=True)
    sentences = {
        "excited": ("Wow, we actually won the whole thing! I can't believe it!", 80, 190),
        "calm": ("Well, I suppose the weather will be the same tomorrow.", 35, 130),
    }
    espeak = shutil.which("espeak-ng")
    paths = []
    for name, (text, pitch, speed) in sentences.items():
        path = folder / f"{name}.wav"
        if not path.exists():
            if espeak:
                subprocess.run(
                    [espeak, "-w", str(path), "-p", str(pitch), "-s", str(speed), text],
                    check=True,
                    timeout=60,
                )
            else:
                t = np.arange(3 * SAMPLING_RATE) / SAMPLING_RATE
                sf.write(path, 0.3 * np.sin(2 * np.pi * (120 + pitch) * t), SAMPLING_RATE)
        paths.append(path)
    long_path = folder / "long_conversation.wav"
    if not long_path.exists():
        pieces = [load_audio(p) for p in paths]
        pause = np.zeros(SAMPLING_RATE // 2, dtype=np.float32)
        sequence = [piece for _ in range(3) for p in pieces for piece in (p, pause)]
        sf.write(long_path, np.concatenate(sequence), SAMPLING_RATE)
    paths.append(long_path)
    return [str(p) for p in paths]


def build_demo(model_id: str | None = None, examples_dir: str | Path | None = None) -> gr.Blocks:
    """The Gradio app for `model_id` (default: `HF_SER_MODEL`), with a queue."""
    model_id = model_id or model_id_from_env()
    model, _ = load_model(model_id)
    regression = is_regression(model)
    examples_dir = Path(examples_dir or Path(tempfile.gettempdir()) / "hf_ser_space_examples")

    # Uploaded recordings are deleted from the server's cache within two hours.
    with gr.Blocks(title="Speech emotion recognition (hf_ser)", delete_cache=(3600, 3600)) as demo:
        gr.Markdown(
            "# Speech emotion recognition\n"
            f"Model: `{model_id}`. Upload or record English speech (up to {MAX_SECONDS / 60:.0f} min, "
            f"{MAX_FILE_SIZE.replace('mb', ' MB')}); recordings over {TIMELINE_MIN_SECONDS:g} s also get a timeline over "
            f"{WINDOW_SECONDS:g}-s windows.\n\n"
            "*The model reports the emotions listeners would perceive, not what a speaker feels. "
            "Do not use it to judge people: the EU AI Act bans emotion recognition in workplaces and schools.*"
        )
        with gr.Row():
            with gr.Column():
                audio = gr.Audio(sources=["upload", "microphone"], type="filepath", label="Speech")
                button = gr.Button("Analyze", variant="primary")
            with gr.Column():
                summary = gr.Markdown(elem_id="summary")
                probabilities = gr.Label(
                    num_top_classes=model.config.num_labels,
                    label="Emotion probabilities",
                    visible=not regression,
                    elem_id="probabilities",
                )
                names = [model.config.id2label[i] for i in range(model.config.num_labels)]
                attributes = gr.BarPlot(
                    x="attribute",
                    y="value",
                    sort=names if regression else None,  # arousal, valence, dominance, not alphabetical
                    label="Arousal, valence, dominance",
                    visible=regression,
                )
        timeline = gr.LinePlot(
            x="time (s)",
            y="value" if regression else "probability",
            color="attribute" if regression else "emotion",
            label="Timeline",
            y_lim=None if regression else [0, 1],
        )
        gr.Examples(examples=example_files(examples_dir), inputs=audio, label="Examples (synthetic speech)")
        button.click(
            functools.partial(analyze, model_id=model_id),
            inputs=audio,
            outputs=[probabilities, attributes, timeline, summary],
            api_name="analyze",
        )
    demo.queue(max_size=32, default_concurrency_limit=1)
    demo.examples_dir = examples_dir
    return demo


def launch_kwargs(demo: gr.Blocks) -> dict:
    """Server settings: upload size limit and access to the generated examples."""
    return {"max_file_size": MAX_FILE_SIZE, "allowed_paths": [str(demo.examples_dir)], "show_error": True}


if __name__ == "__main__":
    app = build_demo()
    app.launch(**launch_kwargs(app))
