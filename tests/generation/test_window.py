"""The prompt window: opening pinned, latest turns kept, never a broken character."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.generation.window import PARAGRAPH_BREAK, trim_to_window

KO_TURNS = [
    "옛날 옛적에 바다에 편지를 쓰는 등대지기가 살았습니다.",
    "파도는 소금과 거품으로 대답했습니다. 아무도 그를 믿지 않았습니다.",
    '그녀가 말했다: "들어와요, 추워요!" 🙂 그는 웃었다.',
    "밤이 깊어지자 등대의 불빛이 바다 위로 길게 뻗어 나갔습니다.",
] * 3
EN_TURNS = [
    "Once upon a time there was a lighthouse keeper who wrote letters to the sea.",
    "The waves answered in salt and foam, and nobody believed him.",
    'She said: "Come in, it\'s cold!" He laughed.',
] * 4


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir: Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model_dir)


def _body(turns: list[str]) -> str:
    return "".join(t + PARAGRAPH_BREAK for t in turns)


@pytest.mark.parametrize("turns", [KO_TURNS, EN_TURNS], ids=["korean", "english"])
@pytest.mark.parametrize("max_context", range(40, 140, 7))
def test_trimmed_window_is_a_clean_suffix(tokenizer, turns, max_context):
    """Does trimming keep the opening, fit the budget and keep an exact suffix of the turns?"""
    opening = "등대." if turns is KO_TURNS else "A lighthouse."
    window = trim_to_window(tokenizer, opening, turns, max_context, max_new_tokens=16)
    assert len(window.ids) <= max_context - 16
    assert window.text.startswith(opening + PARAGRAPH_BREAK)
    kept = window.text[len(opening + PARAGRAPH_BREAK) :]
    assert "\ufffd" not in tokenizer.decode(window.ids)
    assert _body(turns).endswith(kept)
    assert kept.endswith(turns[-1] + PARAGRAPH_BREAK) or len(kept) < len(turns[-1]) + 2
    assert window.dropped_turn_chars == len(_body(turns)) - len(kept)


def test_korean_cuts_would_break_characters_without_alignment(tokenizer):
    """Is the Korean test real: does a naive front cut land inside a Hangul syllable?"""
    ids = tokenizer.encode(_body(KO_TURNS), add_special_tokens=False)
    broken = [n for n in range(1, len(ids)) if "\ufffd" in tokenizer.decode(ids[n:])[:2]]
    assert broken, "the tiny tokenizer should split some syllables across tokens"
    for keep in (len(ids) - n for n in broken[:10]):
        window = trim_to_window(tokenizer, "", KO_TURNS, keep + 5, max_new_tokens=5)
        text = tokenizer.decode(window.ids)
        assert "\ufffd" not in text
        assert _body(KO_TURNS).endswith(text)


def test_everything_fits_untrimmed(tokenizer):
    """When the story is short, is the prompt the whole opening and every turn?"""
    window = trim_to_window(tokenizer, "Opening.", ["One.", "Two."], 128, 16)
    assert window.text == "Opening.\n\nOne.\n\nTwo.\n\n"
    assert window.dropped_turn_chars == 0
    assert tokenizer.decode(window.ids) == window.text


def test_long_opening_keeps_its_head_and_leaves_room_for_turns(tokenizer):
    """Does an opening longer than half the budget keep its beginning and let the latest turn in?"""
    opening = " ".join(EN_TURNS)
    window = trim_to_window(tokenizer, opening, ["The end is near."], 64, 16)
    assert len(window.ids) <= 48
    assert window.text.endswith("The end is near.\n\n")
    assert opening.startswith(window.text.split(PARAGRAPH_BREAK)[0])


def test_no_room_for_a_prompt_is_an_error(tokenizer):
    """Is asking for more new tokens than the context holds refused?"""
    with pytest.raises(ValueError):
        trim_to_window(tokenizer, "x", ["y"], 32, 32)
