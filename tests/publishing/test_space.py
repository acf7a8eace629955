"""The Gradio Space app (`space_app/app.py`) with a tiny random model: its functions, its HTTP API through
`gradio_client`, and its page in real headless Chromium through playwright."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from tests.tiny import SPACE_APP, load_space_app, tiny_encoder_config, tone

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import gradio as gr  # noqa: E402

APP_PATH = SPACE_APP
load_app_module = load_space_app


@pytest.fixture(scope="module")
def app():
    return load_app_module()


@pytest.fixture(scope="module")
def audio_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("space_audio")
    files = {
        "short": folder / "short.wav",
        "long": folder / "long.wav",
        "silence": folder / "silence.wav",
        "hour": folder / "hour.flac",
        "text": folder / "notes.wav",
    }
    sf.write(files["short"], tone(2.0, freq=200.0), 16000)
    # 11 s: whole-clip prediction plus a timeline of 5 windows (starts 0, 2, 4, 6 and the tail at 7 s).
    sf.write(files["long"], np.concatenate([tone(5.0, freq=180.0), tone(6.0, freq=320.0, seed=1)]), 16000)
    sf.write(files["silence"], np.zeros(32000, dtype=np.float32), 16000)
    # One hour of 16 kHz audio, small on disk (FLAC of silence): the duration check must catch it.
    sf.write(files["hour"], np.zeros(16000 * 3600, dtype=np.int16), 16000)
    files["text"].write_text("this is not audio, only text with a .wav name\n")
    return files


def save_space_model(path: Path, seed: int, **kwargs) -> None:
    """A tiny model whose front end strides 320 samples like WavLM's (20 ms frames), so that the 11-s clips of these
    tests give 550 frames and not the 8800 of the default tiny front end."""
    from hf_ser import WavLMForMASPClassification, WavLMMASPConfig, build_feature_extractor

    torch.manual_seed(seed)
    encoder = tiny_encoder_config("wavlm", conv_stride=(10, 32), conv_kernel=(20, 32))
    config = WavLMMASPConfig(encoder_config=encoder, num_trainable_layers=2, head_hidden_size=16, **kwargs)
    WavLMForMASPClassification(config).save_pretrained(path)
    build_feature_extractor().save_pretrained(path)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("space_model")
    save_space_model(path, seed=3)
    return path


@pytest.fixture(scope="module")
def regression_model_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("space_regression_model")
    save_space_model(path, seed=4, problem_type="regression")
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def server(app, model_dir, tmp_path_factory):
    demo = app.build_demo(str(model_dir), examples_dir=tmp_path_factory.mktemp("examples"))
    demo.launch(
        server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True, **app.launch_kwargs(demo)
    )
    yield demo.local_url
    demo.close()


def reference_scores(model_dir: Path, path: Path) -> dict[str, float]:
    """Class probabilities from transformers' own audio-classification pipeline (an independent path)."""
    from transformers import pipeline

    classifier = pipeline("audio-classification", model=str(model_dir))
    return {r["label"]: r["score"] for r in classifier(str(path), top_k=None)}


# -- the functions behind the page ---------------------------------------------------------------------------------


def test_model_id_comes_from_the_environment(app, monkeypatch):
    monkeypatch.delenv("HF_SER_MODEL", raising=False)
    assert app.model_id_from_env() == "org/ser-masp"
    monkeypatch.setenv("HF_SER_MODEL", "someone/other-model")
    assert app.model_id_from_env() == "someone/other-model"


def test_timeline_windows_match_classifying_each_window(app, model_dir, audio_files):
    from hf_ser import classify, load_audio

    probabilities, attributes, timeline, summary = app.analyze(str(audio_files["long"]), str(model_dir))
    assert attributes is None
    assert abs(sum(probabilities.values()) - 1) < 1e-5
    top = max(probabilities, key=probabilities.get)
    assert top in summary and "whole recording" in summary

    waveform = load_audio(audio_files["long"])
    model, extractor = app.load_model(str(model_dir))
    starts_s = [0, 2, 4, 6, 7]
    assert sorted(timeline["time (s)"].unique()) == [s + 2.0 for s in starts_s]
    assert len(timeline) == len(starts_s) * 8
    for start in starts_s:
        expected = classify(model, extractor, [waveform[start * 16000 : (start + 4) * 16000]])[0]
        rows = timeline[timeline["time (s)"] == start + 2.0]
        got = dict(zip(rows["emotion"], rows["probability"], strict=True))
        assert got == pytest.approx(expected, abs=1e-5)


def test_attribute_model_shows_arousal_valence_dominance(app, regression_model_dir, audio_files):
    from hf_ser import load_audio

    probabilities, attributes, timeline, summary = app.analyze(
        str(audio_files["short"]), str(regression_model_dir)
    )
    assert probabilities is None and timeline is None
    assert list(attributes["attribute"]) == ["arousal", "valence", "dominance"]
    model, extractor = app.load_model(str(regression_model_dir))
    inputs = extractor(load_audio(audio_files["short"]), sampling_rate=16000, return_tensors="pt")
    with torch.no_grad():
        expected = model(**inputs).logits[0].numpy()
    np.testing.assert_allclose(attributes["value"].to_numpy(), expected, atol=1e-5)
    assert "arousal" in summary


@pytest.mark.parametrize(
    ("case", "message"),
    [
        (None, "No audio"),
        ("text", "could not be used as audio"),
        ("silence", "is silent"),
        ("hour", "60.0 min"),
    ],
)
def test_bad_input_is_a_clear_gradio_error(app, model_dir, audio_files, case, message):
    path = None if case is None else str(audio_files[case])
    with pytest.raises(gr.Error, match=message):
        app.analyze(path, str(model_dir))


def test_examples_are_generated_audio(app, tmp_path):
    from hf_ser import load_audio

    paths = app.example_files(tmp_path)
    assert len(paths) == 3
    durations = [len(load_audio(p)) / 16000 for p in paths]
    assert all(d > 0.5 for d in durations)
    assert durations[-1] > app.TIMELINE_MIN_SECONDS  # the long example shows the timeline


# -- the HTTP API (gradio_client) -----------------------------------------------------------------------------------


def test_gradio_client_predict_matches_the_pipeline(server, model_dir, audio_files):
    from gradio_client import Client, handle_file

    client = Client(server, verbose=False)
    label, _attributes, _timeline, summary = client.predict(
        handle_file(str(audio_files["short"])), api_name="/analyze"
    )
    got = {item["label"]: item["confidence"] for item in label["confidences"]}
    assert got == pytest.approx(reference_scores(model_dir, audio_files["short"]), abs=1e-4)
    assert label["label"] in summary


@pytest.mark.parametrize(
    ("case", "message"), [("text", "could not be used as audio"), ("silence", "is silent")]
)
def test_gradio_client_bad_input_gets_the_message(server, audio_files, case, message):
    from gradio_client import Client, handle_file
    from gradio_client.exceptions import AppError

    client = Client(server, verbose=False)
    with pytest.raises(AppError, match=message):
        client.predict(handle_file(str(audio_files[case])), api_name="/analyze")


def test_keeps_serving_after_bad_requests_and_queues_concurrent_ones(server, model_dir, audio_files):
    from concurrent.futures import ThreadPoolExecutor

    from gradio_client import Client, handle_file
    from gradio_client.exceptions import AppError

    client = Client(server, verbose=False)
    for case in ("text", "silence"):
        with pytest.raises(AppError):
            client.predict(handle_file(str(audio_files[case])), api_name="/analyze")
    want = reference_scores(model_dir, audio_files["short"])

    def ask(_):
        label = Client(server, verbose=False).predict(
            handle_file(str(audio_files["short"])), api_name="/analyze"
        )[0]
        return {item["label"]: item["confidence"] for item in label["confidences"]}

    with ThreadPoolExecutor(max_workers=4) as pool:
        answers = list(pool.map(ask, range(4)))  # queued (concurrency limit 1), all answered
    for got in answers:
        assert got == pytest.approx(want, abs=1e-4)


def test_uploads_are_limited_in_size(server, tmp_path):
    import httpx

    big = tmp_path / "big.wav"
    sf.write(big, np.zeros(16000 * 60 * 11, dtype=np.int16), 16000)  # 21 MB > 20 MB
    with big.open("rb") as handle:
        response = httpx.post(f"{server}gradio_api/upload", files={"files": handle}, timeout=60)
    assert response.status_code == 413
    assert "size" in response.text.lower()


# -- the page in headless Chromium ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser():
    playwright_api = pytest.importorskip("playwright.sync_api")
    if not Path("/usr/bin/chromium").exists():
        pytest.skip("Debian chromium is not installed")
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path="/usr/bin/chromium",
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-background-networking",
                "--disable-component-update",
                "--no-first-run",
            ],
        )
        yield browser
        browser.close()


def test_browser_upload_click_and_read_result(server, browser, model_dir, audio_files, artifacts_dir):
    expected = reference_scores(model_dir, audio_files["long"])
    page = browser.new_page(viewport={"width": 1280, "height": 1100})
    page.goto(server)
    page.locator("input[type=file]").first.set_input_files(str(audio_files["long"]))
    page.get_by_role("button", name="Analyze").click()
    summary = page.locator("#summary")
    summary.get_by_text("Most likely").wait_for(timeout=60_000)
    # The whole-clip prediction (11 s <= 12 s) is what the pipeline gives for the file.
    top = max(expected, key=expected.get)
    assert top in summary.inner_text()
    assert top in page.locator("#probabilities").inner_text()
    page.locator(".vega-embed").last.wait_for(timeout=30_000)  # the timeline plot was drawn
    page.wait_for_timeout(500)
    page.screenshot(path=str(artifacts_dir / "space_app.png"), full_page=True)
    page.close()


def test_browser_shows_an_error_without_audio(server, browser, artifacts_dir):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(server)
    page.get_by_role("button", name="Analyze").click()
    toast = page.locator(".toast-body").filter(has_text="No audio: upload a file")
    toast.wait_for(timeout=30_000)
    assert toast.is_visible()
    page.wait_for_timeout(300)  # let the toast finish sliding in
    page.screenshot(path=str(artifacts_dir / "space_app_error.png"))
    page.close()


def test_missing_model_gives_a_clear_message(app, tmp_path):
    with pytest.raises(RuntimeError, match="HF_SER_MODEL"):
        app.load_model(str(tmp_path / "no-model-here"))


def test_browser_example_can_be_analysed(server, browser):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(server)
    page.get_by_text("excited.wav").click()
    page.locator("audio, .waveform-container, [data-testid=waveform-Speech]").first.wait_for(
        state="attached", timeout=30_000
    )
    page.get_by_role("button", name="Analyze").click()
    page.locator("#summary").get_by_text("Most likely").wait_for(timeout=60_000)
    assert "whole recording" in page.locator("#summary").inner_text()
    page.close()


@pytest.fixture(scope="module")
def regression_server(app, regression_model_dir, tmp_path_factory):
    demo = app.build_demo(
        str(regression_model_dir), examples_dir=tmp_path_factory.mktemp("examples_regression")
    )
    demo.launch(
        server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True, **app.launch_kwargs(demo)
    )
    yield demo.local_url
    demo.close()


def test_browser_attribute_model_shows_bars(regression_server, browser, audio_files, artifacts_dir):
    page = browser.new_page(viewport={"width": 1280, "height": 1100})
    page.goto(regression_server)
    assert not page.locator("#probabilities").is_visible()  # no emotion classes for an attribute model
    page.locator("input[type=file]").first.set_input_files(str(audio_files["long"]))
    page.get_by_role("button", name="Analyze").click()
    summary = page.locator("#summary")
    summary.get_by_text("arousal").wait_for(timeout=60_000)
    assert "valence" in summary.inner_text() and "dominance" in summary.inner_text()
    page.get_by_text("Arousal, valence, dominance").first.wait_for(timeout=30_000)
    page.locator(".vega-embed").nth(1).wait_for(timeout=30_000)  # the bars and the timeline were drawn
    page.wait_for_timeout(500)
    page.screenshot(path=str(artifacts_dir / "space_app_attributes.png"), full_page=True)
    page.close()
