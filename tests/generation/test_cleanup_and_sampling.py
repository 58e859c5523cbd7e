"""Cleaning model output into a turn, and the sampling presets."""

from __future__ import annotations

import pytest

from app.generation.cleanup import clean_generation
from app.generation.sampling import PRESET_NAMES, params_for, presets
from app.stories.validation import PRESETS as STORY_PRESETS


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("He left. Then she sa", "He left."),
        ("He left! Did she? She wa", "He left! Did she?"),
        ('She said, "Go home." And th', 'She said, "Go home."'),
        ("It ended…  and yet", "It ended…"),
        ("그는 집으로 갔다. 그리고 그녀는", "그는 집으로 갔다."),
        ("비가 와요. 우산을 챙기", "비가 와요."),
        ("그는 떠났다\n그리고 그녀", "그는 떠났다"),
        ("「行きます。」と彼は", "「行きます。」"),
        ("The cost was 3.5 dollars. He pa", "The cost was 3.5 dollars."),
        ("Too    many     spaces. Fine.", "Too many spaces. Fine."),
        ("One.\n\n\n\n\nTwo. Thr", "One.\n\nTwo."),
        (". and so he went home. Then", "and so he went home."),
        ('" ,He went home. The', "He went home."),
        ("no sentence end here at al", "no sentence end here at"),
        ("word", ""),
        ("   \n\n  ", ""),
        ("\ufffd\ufffd", ""),
        ("Broken \ufffdbyte. Then", "Broken byte."),
        ("CHAPTER XV\n\nThen it was dark. He", "Then it was dark."),
        ("He slept.\n\nCHAPTER 3. The Storm\nRain fell. It", "He slept.\n\nRain fell."),
        ("Chapter IV\nShe woke. Sh", "She woke."),
        ("Part of me knew. The", "Part of me knew."),
        ("Part I think was true. The", "Part I think was true."),
        ("제3장\n그는 떠났다. 그", "그는 떠났다."),
    ],
)
def test_clean_generation(raw, expected):
    """Is the output cut at the last sentence end, with whitespace and fragments cleaned?"""
    assert clean_generation(raw) == expected


def test_corpus_markup_the_model_copies_is_removed():
    """Gutenberg italics, star separators and bracket tags never reach a reader."""
    raw = "_1 August._ Mina said _nothing_ at all.\n\n* * * * *\n\n"
    raw += "[Illustration: A ship] It rained."
    assert clean_generation(raw) == "1 August. Mina said nothing at all.\n\nIt rained."


def test_finished_output_keeps_its_last_sentence():
    """When the model ended on its own, is an unpunctuated last sentence kept whole?"""
    assert clean_generation("He went home. And slept", finished=True) == "He went home."
    assert clean_generation("And slept", finished=True) == "And slept"


def test_presets_match_the_story_choices():
    """Is there a preset for every choice a story can make?"""
    assert set(PRESET_NAMES) == set(STORY_PRESETS) == set(presets())


@pytest.mark.parametrize("name", PRESET_NAMES)
def test_every_preset_fights_degeneration(name):
    """Does every preset sample with a repetition penalty and no repeated n-grams?"""
    params = presets()[name]
    assert not params.greedy
    assert params.repetition_penalty > 1.0
    assert params.no_repeat_ngram_size >= 3
    assert 0 < params.top_p < 1


def test_presets_are_ordered_by_adventure():
    """Is careful cooler than balanced, and wild hotter?"""
    table = presets()
    assert table["careful"].temperature < table["balanced"].temperature
    assert table["balanced"].temperature < table["wild"].temperature


def test_params_for_clamps_length_and_falls_back():
    """Are the story's token counts kept within bounds, and an unknown preset balanced?"""
    assert params_for("careful", 500, min_tokens=16, max_tokens=200).max_new_tokens == 200
    assert params_for("wild", 2, min_tokens=16, max_tokens=200).max_new_tokens == 16
    assert params_for("nonsense", 50) == params_for("balanced", 50)


def test_greedy_kwargs_carry_no_sampling_settings():
    """Does temperature 0 mean plain greedy decoding for generate()?"""
    from dataclasses import replace

    kwargs = replace(params_for("balanced", 20), temperature=0).generate_kwargs()
    assert kwargs["do_sample"] is False
    assert "top_p" not in kwargs and "temperature" not in kwargs


def test_balanced_is_the_workshop_default():
    """Does the app's balanced preset sample the way the workshop evaluated the models?"""
    from app.workshop.sampling import EVAL_NEW_TOKENS, eval_settings

    assert eval_settings().max_new_tokens == EVAL_NEW_TOKENS
    workshop = eval_settings().generate_kwargs()
    ours = presets()["balanced"].generate_kwargs()
    assert {k: v for k, v in ours.items() if k != "max_new_tokens"} == {
        k: v for k, v in workshop.items() if k != "max_new_tokens"
    }


def test_hard_wrapped_lines_are_joined_but_paragraphs_kept():
    """Are Gutenberg-style mid-sentence line breaks joined, sentence lines and paragraphs kept?"""
    raw = "the morning had taken his own\nfor the wind was up.\nHe said no.\n\nA new\nparagraph."
    assert clean_generation(raw, finished=True) == (
        "the morning had taken his own for the wind was up.\nHe said no.\n\nA new paragraph."
    )
    korean = "“그래요.”\n그는 웃었다\n그리고 떠났다."
    assert clean_generation(korean, finished=True) == korean  # line-final 다 ends a sentence
