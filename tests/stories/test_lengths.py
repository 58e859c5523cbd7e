"""A model turn's length in words, the model folders' own figures and names, and the
new-story form that shows them."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest

from app.generation.model_info import model_info
from app.stories import lengths

ROOT = Path(__file__).resolve().parent.parent.parent


@pytest.mark.parametrize("language", ["en", "ko"])
def test_shipped_models_have_a_card_name_and_a_measured_figure(language):
    """Does each shipped model give its card's name and eval.json's characters per token?"""
    info = model_info(str(ROOT / "models" / f"default-{language}"))
    assert info.card_name == f"default-{language}"
    row = json.loads((ROOT / "models" / f"default-{language}" / "eval.json").read_text())["rows"][0]
    expected = math.log2(row["token_perplexity"]) / row["bits_per_char"]
    assert info.chars_per_token == pytest.approx(expected)
    assert 1.0 < info.chars_per_token < 6.0


def test_a_folder_without_card_or_eval_says_nothing(tiny_model_dir, tmp_path):
    """Do a bare folder and a hub id give no name and no figure (callers fall back)?"""
    assert model_info(str(tiny_model_dir)) == model_info("gpt2")
    assert model_info("gpt2").card_name is None and model_info("gpt2").chars_per_token is None
    (tmp_path / "eval.json").write_text('{"rows": [{"name": "model", "bits_per_char": 0}]}')
    assert model_info(str(tmp_path)).chars_per_token is None  # broken report: no figure


def test_words_and_tokens_with_the_measured_figure(app):
    """Are words turned into tokens with the model's measured characters per token?"""
    shipped = str(ROOT / "models" / "default-ko")
    with app.app_context():
        app.config["RELAY_MODELS"] = {**app.config["RELAY_MODELS"], "ko": shipped}
        per = model_info(shipped).chars_per_token / lengths.CHARS_PER_WORD["ko"]
        assert lengths.words_per_token("ko") == pytest.approx(per)
        assert lengths.tokens_for_words(35, "ko") == round(35 / per)
        low, default, high = lengths.word_bounds("ko")
        assert lengths.tokens_for_words(low, "ko") >= app.config["AI_TOKENS_MIN"]
        assert lengths.tokens_for_words(high, "ko") <= app.config["AI_TOKENS_MAX"]
        assert low <= default <= high


def test_models_named_by_card_else_registry_name_else_key(app, tiny_model_dir):
    """Does the form name a model by its card, else by the registry's name, else its key?"""
    with app.app_context():
        app.config["RELAY_MODELS"] = {
            "en": str(ROOT / "models" / "default-en"),
            "tiny": str(tiny_model_dir),
            "hub": "some-org/some-model",
        }
        names = {choice.key: choice.name for choice in lengths.model_choices()}
    assert names == {"en": "default-en", "tiny": tiny_model_dir.name, "hub": "some-org/some-model"}


def test_new_story_form_speaks_a_writers_words(client, factory):
    """Does the form offer other models by name, explain presets and turns, and ask for words?"""
    factory.user("alice")
    client.post("/login", data={"username": "alice", "password": "password123"})
    page = client.get("/stories/new").get_data(as_text=True)
    assert "Length of the model's turns, in words" in page
    assert "stays close to what came before" in page and "takes risks" in page
    assert "the model answers each paragraph with one of its own" in page
    assert '<option value="tiny">' in page  # a non-default model, by its (registry) name
    assert 'name="max_new_tokens"' not in page


def test_new_story_form_hides_the_model_when_only_the_defaults_exist(app, client, factory):
    """With only the languages' own models configured, does the language alone choose?"""
    app.config["RELAY_MODELS"] = {
        k: v for k, v in app.config["RELAY_MODELS"].items() if k != "tiny"
    }
    factory.user("alice")
    client.post("/login", data={"username": "alice", "password": "password123"})
    page = client.get("/stories/new").get_data(as_text=True)
    assert 'name="model"' not in page


def test_new_story_form_in_korean(client, factory):
    """For a Korean reader, is the form Korean, the story Korean by default, the hint in words?"""
    factory.user("alice")
    client.post("/login", data={"username": "alice", "password": "password123"})
    page = client.get("/stories/new", headers={"Accept-Language": "ko"}).get_data(as_text=True)
    assert "모델 차례의 길이 (단어 수)" in page
    assert re.search(r'<option selected value="ko">', page)
    assert "한국어 이야기는 약" in page
