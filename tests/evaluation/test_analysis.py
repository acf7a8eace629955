"""Analysis toolkit (papers 000 and 004): CKA, decision mismatch, cosine distances, Bhattacharyya attention
distances, plots and the `hf-ser analyze` command."""

from __future__ import annotations

import csv
import shutil

import numpy as np
import pytest
import soundfile as sf
import torch

from hf_ser import analysis
from hf_ser.cli import main as cli_main
from hf_ser.evaluation.analysis import (
    AnalysisError,
    attention_map_distances,
    bhattacharyya_distance,
    cka_matrix,
    collect_attentions,
    cosine_distances,
    decision_mismatch,
    layer_representations,
    linear_cka,
    threshold_agreement,
)
from tests.tiny import save_tiny_model, tiny_encoder_config, tiny_masp_model, tone

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


# ------------------------------------------------------------------------------------------------------ CKA
def test_cka_of_a_representation_with_itself_is_one(rng):
    x = rng.normal(size=(50, 8))
    assert linear_cka(x, x) == pytest.approx(1.0)


def test_cka_is_invariant_to_orthogonal_transforms_and_isotropic_scaling(rng):
    x, y = rng.normal(size=(60, 6)), rng.normal(size=(60, 5))
    y = y + 0.5 * x[:, :5]  # partly shared, so CKA is neither 0 nor 1
    q, _ = np.linalg.qr(rng.normal(size=(6, 6)))
    base = linear_cka(x, y)
    assert 0.05 < base < 0.95
    assert linear_cka(x @ q, y) == pytest.approx(base)
    assert linear_cka(3.7 * x, 0.01 * y) == pytest.approx(base)
    assert linear_cka(x @ q * 5.0 + 2.0, y) == pytest.approx(base)  # centring removes the offset
    # Not invariant to arbitrary (non-isotropic) linear maps: the property above is not vacuous.
    assert linear_cka(x @ np.diag([10.0, 1, 1, 1, 1, 0.1]), y) != pytest.approx(base, abs=1e-3)


def test_cka_rejects_different_examples(rng):
    with pytest.raises(AnalysisError, match="same examples"):
        linear_cka(rng.normal(size=(5, 3)), rng.normal(size=(6, 3)))


def _perturbed_copy(model, layer: int, scale: float = 20.0):
    """A copy whose `layer` attends much more sharply (scaled queries and keys), like a fine-tuned layer."""
    # Not copy.deepcopy: the MASP layer hooks close over the original instance.
    other = type(model)(model.config)
    other.load_state_dict(model.state_dict())
    attention = other.encoder.encoder.layers[layer].attention
    with torch.no_grad():
        attention.q_proj.weight.mul_(scale)
        attention.k_proj.weight.mul_(scale)
        other.encoder.encoder.layers[layer].feed_forward.output_dense.weight.add_(
            torch.randn_like(other.encoder.encoder.layers[layer].feed_forward.output_dense.weight)
        )
    return other


def test_cka_per_layer_finds_the_changed_layers():
    torch.manual_seed(0)
    model = tiny_masp_model()
    changed = _perturbed_copy(model, layer=2)
    clips = [tone(0.6, freq=f, seed=i) for i, f in enumerate((140.0, 230.0, 310.0))]
    reps_a = layer_representations(model, clips)
    reps_b = layer_representations(changed, clips)
    assert len(reps_a) == 5  # embedding output + 4 layers
    matrix = cka_matrix(reps_a, reps_b)
    diagonal = np.diag(matrix)
    # hidden_states[k] is the input of layer k: identical up to layer 2's input, different after it.
    np.testing.assert_allclose(diagonal[:3], 1.0, atol=1e-6)
    assert diagonal[3] < 0.99
    # Against itself every diagonal entry is 1.
    np.testing.assert_allclose(np.diag(cka_matrix(reps_a, reps_a)), 1.0, atol=1e-6)


# ----------------------------------------------------------------------------------- decisions and embeddings
def test_decision_mismatch_and_threshold_table():
    a, b = [0, 1, 2, 3, 1], [0, 1, 0, 3, 2]
    assert decision_mismatch(a, b) == pytest.approx(40.0)
    distances = np.array([0.1, 0.5, 0.7, 0.2, 0.65])
    table = threshold_agreement(distances, a, b, threshold=0.6)
    assert table["data_pct"] == pytest.approx(60.0)  # examples 0, 1, 3
    assert table["match_pct"] == pytest.approx(100.0)
    table = threshold_agreement(distances, a, b, threshold=0.66)
    assert table["data_pct"] == pytest.approx(80.0) and table["match_pct"] == pytest.approx(75.0)
    with pytest.raises(AnalysisError, match="one length"):
        decision_mismatch([0, 1], [0])


def test_cosine_distances_match_a_loop(rng):
    a, b = rng.normal(size=(9, 4)), rng.normal(size=(9, 4))
    fast = cosine_distances(a, b)
    for i in range(9):
        expected = 1 - a[i] @ b[i] / (np.linalg.norm(a[i]) * np.linalg.norm(b[i]))
        assert fast[i] == pytest.approx(expected)
    np.testing.assert_allclose(cosine_distances(a, -a), 2.0)
    np.testing.assert_allclose(cosine_distances(a, 3 * a), 0.0, atol=1e-12)


# ---------------------------------------------------------------------------------------------- attention
def test_bhattacharyya_distance_values(rng):
    p = rng.dirichlet(np.ones(6), size=4)
    q = rng.dirichlet(np.ones(6), size=4)
    np.testing.assert_allclose(bhattacharyya_distance(p, p), 0.0, atol=1e-12)
    np.testing.assert_allclose(bhattacharyya_distance(p, q), bhattacharyya_distance(q, p))
    assert np.all(bhattacharyya_distance(p, q) > 0)
    # -ln(sqrt(1 * 0.5)) = ln(2) / 2
    assert bhattacharyya_distance(np.array([1.0, 0.0]), np.array([0.5, 0.5])) == pytest.approx(np.log(2) / 2)


def test_attention_map_distances_match_eq1_loop(rng):
    layers, heads, n = 2, 3, 5
    a = [rng.dirichlet(np.ones(n), size=(heads, n)) for _ in range(layers)]
    b = [rng.dirichlet(np.ones(n), size=(heads, n)) for _ in range(layers)]
    fast = attention_map_distances(a, b)
    assert fast.shape == (layers, heads)
    for layer in range(layers):
        for head in range(heads):
            total = 0.0
            for i in range(n):
                coefficient = sum(np.sqrt(a[layer][head, i, j] * b[layer][head, i, j]) for j in range(n))
                total += -np.log(coefficient)
            assert fast[layer, head] == pytest.approx(total / n)
    np.testing.assert_allclose(attention_map_distances(a, a), 0.0, atol=1e-12)


def test_attention_distances_of_real_models_locate_the_changed_layer():
    torch.manual_seed(0)
    model = tiny_masp_model()
    changed = _perturbed_copy(model, layer=2)
    clip = tone(0.6)
    maps = collect_attentions(model, clip)
    assert len(maps) == 4 and maps[0].shape[0] == 2 and maps[0].shape[1] == maps[0].shape[2]
    np.testing.assert_allclose(maps[0].sum(-1), 1.0, atol=1e-5)
    np.testing.assert_allclose(attention_map_distances(maps, collect_attentions(model, clip)), 0.0, atol=1e-9)
    distances = attention_map_distances(maps, collect_attentions(changed, clip))
    np.testing.assert_allclose(distances[:2], 0.0, atol=1e-9)
    assert distances[2].min() > 0.05


# --------------------------------------------------------------------------------------- plots and the CLI
@pytest.fixture
def two_saved_models(tmp_path):
    save_tiny_model(tmp_path / "ser", seed=0)
    torch.manual_seed(0)
    model = tiny_masp_model()
    _perturbed_copy(model, layer=3).save_pretrained(tmp_path / "asr_ser")
    shutil.copy(tmp_path / "ser" / "preprocessor_config.json", tmp_path / "asr_ser")
    audio = tmp_path / "audio"
    audio.mkdir()
    for i, freq in enumerate((120.0, 180.0, 260.0, 340.0)):
        sf.write(audio / f"clip{i}.wav", tone(0.5 + 0.1 * i, freq=freq, seed=i), 16000)
    return tmp_path / "ser", tmp_path / "asr_ser", audio


def _read_csv(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_cli_analyze_writes_plots_and_tables(two_saved_models, tmp_path, artifacts_dir):
    model_a, model_b, audio = two_saved_models
    out = tmp_path / "analysis"
    common = [
        "--model-a",
        str(model_a),
        "--model-b",
        str(model_b),
        "--audio",
        str(audio),
        "--output-dir",
        str(out),
    ]
    names = ["--names", "SER", "ASR->SER"]
    assert cli_main(["analyze", "cka", *common, *names]) == 0
    assert cli_main(["analyze", "mismatch", *common, *names, "--threshold", "0.5"]) == 0
    assert cli_main(["analyze", "attention", *common, *names]) == 0
    for name in ("cka.png", "cosine_distances.png", "attention.png"):
        data = (out / name).read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 5000
        shutil.copy(out / name, artifacts_dir / f"analysis_{name}")
    cka = _read_csv(out / "cka.csv")
    assert len(cka) == 25  # 5 x 5 layer pairs
    diagonal = {int(r["layer_a"]): float(r["cka"]) for r in cka if r["layer_a"] == r["layer_b"]}
    assert diagonal[3] == pytest.approx(1.0, abs=1e-6) and diagonal[4] < 0.99  # layer 3 was changed
    summary = _read_csv(out / "mismatch.csv")[0]
    per_clip = _read_csv(out / "cosine_distances.csv")
    assert len(per_clip) == 4
    mismatched = sum(r["prediction_a"] != r["prediction_b"] for r in per_clip)
    assert float(summary["mismatch_pct"]) == pytest.approx(100.0 * mismatched / 4)
    attention = _read_csv(out / "attention.csv")
    assert len(attention) == 4 * 2  # layers x heads
    by_layer = {}
    for row in attention:
        by_layer.setdefault(int(row["layer"]), []).append(float(row["bhattacharyya_distance"]))
    assert max(by_layer[0] + by_layer[1] + by_layer[2]) < 1e-6 and min(by_layer[3]) > 0.05


def test_analysis_errors_are_clear(tmp_path):
    with pytest.raises(AnalysisError, match="neither an audio file nor a folder"):
        analysis.audio_files([tmp_path / "missing.wav"])
    with pytest.raises(AnalysisError, match="No audio files"):
        analysis.audio_files([tmp_path])
    with pytest.raises(AnalysisError, match="Unknown analysis"):
        analysis.run_analysis("nope", tmp_path, tmp_path, [tmp_path], tmp_path)


def test_attention_maps_from_an_sdpa_model_switch_to_eager_and_back():
    from transformers import AutoConfig, Wav2Vec2Model

    torch.manual_seed(0)
    config = AutoConfig.for_model(**tiny_encoder_config("wav2vec2", group_norm=True, num_hidden_layers=2))
    model = Wav2Vec2Model._from_config(config, attn_implementation="sdpa")
    maps = collect_attentions(model, tone(0.5))
    assert len(maps) == 2 and maps[0].shape[0] == 2
    np.testing.assert_allclose(maps[1].sum(-1), 1.0, atol=1e-5)
    assert model.config._attn_implementation == "sdpa"  # restored


def test_cli_analyze_reports_bad_input_in_one_line(tmp_path, capsys):
    code = cli_main(
        [
            "analyze",
            "cka",
            "--model-a",
            str(tmp_path),
            "--model-b",
            str(tmp_path),
            "--audio",
            str(tmp_path / "nope"),
            "--output-dir",
            str(tmp_path / "out"),
        ]
    )
    assert code == 2
    error = capsys.readouterr().err.strip()
    assert "neither an audio file nor a folder" in error and "Traceback" not in error and "\n" not in error
