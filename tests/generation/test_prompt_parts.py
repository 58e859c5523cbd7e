"""Memory, lore and the author's note in the prompt, counted with the tiny test tokenizer."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.generation.prompt_parts import (
    LoreText,
    StoryParts,
    assemble,
    last_mention,
    lore_for,
    split_keys,
)
from app.generation.window import PARAGRAPH_BREAK

EN_TURNS = [
    "Once upon a time there was a lighthouse keeper who wrote letters to the sea.",
    "The waves answered in salt and foam, and nobody believed him.",
    'She said: "Come in, it\'s cold!" He laughed.',
] * 4


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir: Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model_dir)


def _parts(turns: list[str], **extra) -> StoryParts:
    numbered = [(n, text) for n, text in enumerate(turns, start=1)]
    return StoryParts(opening="A lighthouse.", turns=numbered, **extra)


def test_memory_is_pinned_and_the_start_stays_the_same(tokenizer):
    """Does the memory follow the opening, and is the prompt's start the same at every turn?"""
    memory = "Mira keeps the light."
    pinned = "A lighthouse." + PARAGRAPH_BREAK + memory + PARAGRAPH_BREAK
    prompts = [
        assemble(tokenizer, _parts(EN_TURNS[:n], memory=memory), 128, 16) for n in range(1, 12)
    ]
    for prompt in prompts:
        assert prompt.window.text.startswith(pinned)
        assert len(prompt.window.ids) <= 112
        head = tokenizer.encode(pinned, add_special_tokens=False)
        assert prompt.window.ids[: len(head)] == head  # the same tokens: the cache's prefix
    assert prompts[-1].cut_positions  # the later prompts did trim turns


def test_long_memory_loses_its_tail(tokenizer):
    """Does a memory that would pass half the budget keep its head, leaving room for turns?"""
    memory = " ".join(EN_TURNS)
    prompt = assemble(tokenizer, _parts(["The end is near."], memory=memory), 96, 16)
    window = prompt.window
    assert len(window.ids) <= 80
    assert memory.startswith(window.memory) and window.memory != memory
    opening_and_memory = "A lighthouse." + PARAGRAPH_BREAK + window.memory + PARAGRAPH_BREAK
    assert len(tokenizer.encode(opening_and_memory, add_special_tokens=False)) <= 40
    assert window.text.endswith("The end is near.\n\n")


@pytest.mark.parametrize("depth", [0, 1, 2, 3, 10])
def test_authors_note_sits_depth_paragraphs_above_the_end(tokenizer, depth):
    """Is the author's note put `note_depth` paragraphs above the end (at the top of the
    turns when there are fewer)?"""
    turns = ["One.", "Two.", "Three.", "Four."]
    prompt = assemble(
        tokenizer, _parts(turns, authors_note="Keep it grim.", note_depth=depth), 128, 16
    )
    paragraphs = prompt.window.text.split(PARAGRAPH_BREAK)[1:-1]  # after the opening
    index = paragraphs.index("[Keep it grim.]")
    assert len(paragraphs) - 1 - index == min(depth, len(turns))
    assert prompt.note == "[Keep it grim.]"


def test_keys_match_whole_words_and_korean_names_with_particles():
    """Is a Latin key a whole word in any case, and a Korean name a match with a particle?"""
    assert last_mention("Mira", "Then MIRA spoke.") >= 0
    assert last_mention("Mira", "The admiral spoke.") == -1
    assert last_mention("Mira", "Miracles happen.") == -1
    assert last_mention("민수", "민수는 바다를 보았다.") >= 0
    assert last_mention("민수", "민수에게 편지가 왔다.") >= 0
    assert last_mention("민수", "영희는 웃었다.") == -1
    assert last_mention("Mira", "Mira는 웃었다.") >= 0  # a Latin name with a Korean particle
    assert split_keys(" Mira, the keeper ,, mira ,") == ["Mira", "the keeper"]


def test_lore_enters_only_when_mentioned_newest_first(tokenizer):
    """Does an entry come in only when a key is in the latest turns, the newest mention first?"""
    lamp = LoreText(1, ("lamp",), "The lamp is brass and old.")
    mira = LoreText(2, ("Mira",), "Mira keeps the light.")
    ship = LoreText(3, ("ship",), "A ship passes every night.")
    turns = ["Mira lit the lamp.", "Nothing moved.", "The lamp flickered."]
    assert lore_for([lamp, mira, ship], turns, scan=4) == [lamp, mira]
    assert lore_for([lamp, mira, ship], turns, scan=1) == [lamp]
    prompt = assemble(tokenizer, _parts(turns, lore=[lamp, mira, ship]), 400, 16)
    text = prompt.window.text
    assert [entry.id for entry in prompt.lore_used] == [1, 2]
    assert "ship passes" not in text
    assert text.index(lamp.text) < text.index(mira.text) < text.index("Mira lit the lamp.")
    assert text.startswith("A lighthouse." + PARAGRAPH_BREAK + lamp.text)  # under the pinned start


def test_korean_lore_key_with_a_particle_enters(tokenizer):
    """Does a Korean name followed by a particle bring its entry into the prompt?"""
    minsu = LoreText(7, ("민수",), "민수는 등대지기의 아들이다.")
    parts = StoryParts(opening="등대.", turns=[(1, "민수에게 편지가 왔다.")], lore=[minsu])
    prompt = assemble(tokenizer, parts, 400, 16)  # Hangul is many tokens to the tiny BPE
    assert prompt.lore_used == [minsu]
    assert minsu.text in prompt.window.text


def test_lore_stays_within_its_share_of_the_budget(tokenizer):
    """Do the lore entries together stay within a quarter of the budget, skipping what
    does not fit, while the whole prompt fits too?"""
    entries = [LoreText(n, ("sea",), f"Entry {n}: " + EN_TURNS[n % 3]) for n in range(1, 9)]
    turns = EN_TURNS[:6] + ["The sea was calm."]
    prompt = assemble(tokenizer, _parts(turns, lore=entries), 300, 16)
    budget = 300 - 16
    used = prompt.lore_used
    assert used and len(used) < len(entries)
    lore_tokens = sum(
        len(tokenizer.encode(e.text + PARAGRAPH_BREAK, add_special_tokens=False)) for e in used
    )
    assert lore_tokens <= budget // 4
    assert len(prompt.window.ids) <= budget
    assert prompt.window.text.endswith("The sea was calm.\n\n")


def test_sections_map_the_prompt(tokenizer):
    """Do the sections cover the opening, memory, lore, note and turns where they are?"""
    lamp = LoreText(1, ("lamp",), "The lamp is brass.")
    turns = EN_TURNS[:8] + ["The lamp flickered."]
    parts = _parts(turns, memory="Mira keeps it.", authors_note="Grim.", note_depth=1, lore=[lamp])
    prompt = assemble(tokenizer, parts, 128, 16)
    text = prompt.window.text
    kinds = [s.kind for s in prompt.sections]
    assert kinds[:3] == ["opening", "memory", "lore"] and kinds[-2:] == ["note", "turn"]
    by_kind = {s.kind: text[s.start : s.end] for s in prompt.sections}
    assert by_kind["opening"] == "A lighthouse." and by_kind["memory"] == "Mira keeps it."
    assert by_kind["lore"] == lamp.text and by_kind["note"] == "[Grim.]"
    turns_in = [s for s in prompt.sections if s.kind == "turn"]
    assert text[turns_in[-1].start : turns_in[-1].end] == "The lamp flickered."
    assert prompt.cut_positions == list(range(1, turns_in[0].position + (turns_in[0].partial)))
    for section in turns_in[1:]:
        assert text[section.start : section.end] == turns[section.position - 1]
