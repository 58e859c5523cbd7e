"""`model eval`, `model sample` and `model search` end to end on a tiny model."""

from __future__ import annotations

import json

from click.testing import CliRunner

from app.workshop.cli import model_cli
from app.workshop.evaluate import distinct_n, repeated_ngram_rate
from app.workshop.trainer import train


def test_eval_with_baselines_updates_card(tiny_config, corpus):
    """Does eval print the table, write eval.json/png and fill the card's measured section?"""
    out = train(tiny_config)
    args = [
        "eval",
        "--model",
        str(out),
        "--corpus",
        str(corpus),
        "--baselines",
        "--lstm-minutes",
        "0.01",
        "--samples",
        "2",
        "--threads",
        "1",
    ]
    result = CliRunner().invoke(model_cli, args)
    assert result.exit_code == 0, result.output
    assert "bigram (char)" in result.output and "LSTM (token)" in result.output
    report = json.loads((out / "eval.json").read_text())
    names = [row["name"] for row in report["rows"]]
    assert names == ["model", "bigram (char)", "bigram (token)", "LSTM (token)"]
    assert all(row["bits_per_char"] > 0 for row in report["rows"])
    assert (out / "eval.png").is_file()
    card = (out / "MODEL_CARD.md").read_text()
    assert "| model |" in card and "flask model eval --model" in card


def test_eval_without_card_update_leaves_the_model_folder_alone(tiny_config, corpus, tmp_path):
    """Does --no-update-card write nothing into the model folder, and the report where asked?"""
    out = train(tiny_config)
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    common = ["eval", "--model", str(out), "--corpus", str(corpus), "--samples", "1"]
    result = CliRunner().invoke(model_cli, [*common, "--no-update-card", "--threads", "1"])
    assert result.exit_code == 0, result.output
    assert "bits/char" in result.output
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before
    report = tmp_path / "report"
    args = [*common, "--no-update-card", "--report-dir", str(report)]
    assert CliRunner().invoke(model_cli, args).exit_code == 0
    assert json.loads((report / "eval.json").read_text())["rows"][0]["name"] == "model"
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before


def test_sample_command(tiny_config):
    """Does `model sample` continue a prompt with the default settings?"""
    out = train(tiny_config)
    args = ["sample", "--model", str(out), "--prompt", "the keeper", "--max-new-tokens", "8"]
    result = CliRunner().invoke(model_cli, args)
    assert result.exit_code == 0, result.output
    assert "the keeper" in result.output


def test_search_saves_best_config(tiny_config, corpus, tmp_path):
    """Does a two-trial search save its best config?"""
    report = tmp_path / "search.json"
    args = [
        "search",
        "--corpus",
        str(corpus),
        "--out",
        str(report),
        "--trials",
        "2",
        "--max-steps",
        "3",
        "--context",
        "16",
        "--vocab-size",
        "300",
        "--threads",
        "1",
    ]
    result = CliRunner().invoke(model_cli, args)
    assert result.exit_code == 0, result.output
    saved = json.loads(report.read_text())
    assert len(saved["trials"]) == 2
    assert saved["best_config"]["lr"] == saved["best_params"]["lr"]


def test_repetition_statistics():
    """Are distinct-2 and the repeated-4-gram rate what hand counting gives?"""
    text = "a b c d a b c d"
    assert repeated_ngram_rate(text, 4) == 1 / 5  # the 4-grams: abcd bcda cdab dabc abcd
    assert distinct_n(text, 2) == 4 / 7
    assert repeated_ngram_rate("one two three four five", 4) == 0.0
