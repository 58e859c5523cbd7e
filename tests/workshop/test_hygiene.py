"""Corpus hygiene, rule by rule: each rule removes its markup, counts it, and leaves prose."""

from __future__ import annotations

import pytest

from app.workshop.data import load_corpus
from app.workshop.hygiene import RULES, HygieneReport, clean_corpus_text, is_hard_wrapped

PROSE = (
    "It was a dark evening when the coach stopped at the inn, and the\n"
    "driver climbed down to water the horses before the long road over\n"
    "the hills, where no lamp had burned for many years and no traveller\n"
    "had ever come back the same.\n"
)


def wrapped(*blocks: str) -> str:
    """A Gutenberg-style file: the given blocks between paragraphs of wrapped prose."""
    parts = [PROSE] * 3
    for block in blocks:
        parts += [block, PROSE, PROSE]
    return "\n\n".join(part.strip("\n") for part in parts) + "\n"


def clean(text: str) -> tuple[str, HygieneReport]:
    report = HygieneReport()
    return clean_corpus_text(text, report), report


@pytest.mark.parametrize(
    ("rule", "markup"),
    [
        ("tags", "[Illustration: THE COACH AT THE INN.]"),
        ("tags", "[Footnote 3: The inn was pulled down in 1850,\nand its sign sold.]"),
        ("transcriber_notes", "Transcriber's Note: obvious printer's errors\nhave been corrected."),
        ("separators", "                        *       *       *       *       *"),
        ("separators", "-----"),
        ("headings", "CHAPTER XIV.\nThe Road over the Hills"),
        ("headings", "Chapter the Second"),
        ("headings", "BOOK II"),
        ("headings", "CHAPTER I. The Inn\nCHAPTER II. The Road\nCHAPTER III. The Hills"),
        ("headings", "THE END"),
        ("numerals", "XIV."),
        ("numerals", "12"),
        ("caps_lines", "PRIDE AND PREJUDICE"),
        ("caps_lines", "PRINTED IN THE UNITED STATES AT THE COUNTRY LIFE PRESS."),
    ],
)
def test_block_rule_removes_its_markup_and_keeps_the_prose(rule: str, markup: str) -> None:
    text, report = clean(wrapped(markup))
    assert report.matches[rule] >= 1
    assert report.removed[rule] >= len(markup.replace("\n", "").replace(" ", "")) // 2
    for word in ("Illustration", "Footnote", "Transcriber", "CHAPTER", "XIV", "PREJUDICE", "***"):
        assert word not in text
    assert "* *" not in text and "-----" not in text
    assert text.count("no traveller had ever come back the same.") == 3 + 2


def test_inline_tags_and_footnote_anchors_go() -> None:
    text, report = clean(wrapped("He smiled.[12] She wept [A] and\n[Illustration] left."))
    assert "He smiled. She wept and left." in text
    assert report.matches["tags"] == 3


def test_underscore_italics_become_plain_words() -> None:
    text, report = clean(
        wrapped("I _never_ said that, and _you\nknow_ it; snake_case_ stays gone.")
    )
    assert "I never said that, and you know it; snakecase stays gone." in text
    assert "_" not in text
    assert report.matches["underscores"] >= 3


def test_hard_wrapped_paragraphs_are_joined_and_paragraph_breaks_kept() -> None:
    raw = "\n".join([PROSE] * 8)
    assert is_hard_wrapped(raw)
    text, report = clean(raw)
    paragraphs = text.split("\n\n")
    assert all("\n" not in p for p in paragraphs)
    assert paragraphs[0].startswith(
        "It was a dark evening when the coach stopped at the inn, and the driver"
    )
    assert report.matches["hard_wraps"] == 3 * raw.count(PROSE)


def test_one_paragraph_per_line_files_get_a_blank_line_after_each_line() -> None:
    lines = [
        f"그는 {i}번째 문장을 길게 이어서 말했다, 그리고 한참 동안 아무 말도 하지 않았다."
        for i in range(40)
    ]
    raw = "\n".join(lines) + "\n1\n" + "\n".join(lines)
    assert not is_hard_wrapped(raw)
    text, report = clean(raw)
    assert text.split("\n\n") == lines + lines  # the bare section number "1" is gone
    assert report.matches["numerals"] == 1
    assert report.matches["hard_wraps"] == 0


def test_korean_headings_go() -> None:
    lines = ["제3장 새벽", *["그녀는 창문을 열고 멀리 산을 바라보며 오래도록 서 있었다."] * 30]
    text, report = clean("\n".join(lines))
    assert "제3장" not in text and report.matches["headings"] == 1


def test_quotes_and_dashes_have_one_style() -> None:
    text, report = clean(
        wrapped(
            "\u201cCome in,\u201d she said\u2014then, \u2018Wait--no.\u2019 He said -- nothing ―"
        )
    )
    assert "\"Come in,\" she said\u2014then, 'Wait\u2014no.' He said\u2014nothing \u2014" in text
    assert report.matches["quotes_dashes"] == 4 + 3


def test_plain_prose_is_untouched_apart_from_wraps() -> None:
    text, report = clean(
        wrapped("Part of the house was dark. Chapter and verse, he said; 12 men came.")
    )
    assert "Part of the house was dark. Chapter and verse, he said; 12 men came." in text
    assert sum(report.matches[r] for r in RULES if r != "hard_wraps") == 0


def test_report_counts_characters_and_adds_up() -> None:
    total = HygieneReport()
    for _ in range(2):
        clean_corpus_text(wrapped("CHAPTER I.", "THE END"), total)
    assert total.matches["headings"] == 4
    assert total.chars_in > total.chars_out > 0
    assert "headings" in "\n".join(total.lines())
    assert total.to_dict()["rules"]["headings"]["matches"] == 4


def test_load_corpus_cleans_before_the_split_and_no_clean_keeps_raw(tmp_path) -> None:
    (tmp_path / "book.txt").write_text(wrapped("CHAPTER I.", "[Illustration]"), encoding="utf-8")
    cleaned = load_corpus(tmp_path)
    raw = load_corpus(tmp_path, clean=False)
    assert "CHAPTER" not in "".join(cleaned.train_texts + cleaned.val_texts)
    assert "CHAPTER" in "".join(raw.train_texts + raw.val_texts)
    assert cleaned.hygiene.matches["headings"] == 1 and raw.hygiene is None
    assert cleaned.fingerprint != raw.fingerprint


def test_extra_corpus_joins_training_only(tmp_path) -> None:
    main, extra = tmp_path / "main", tmp_path / "extra"
    main.mkdir()
    extra.mkdir()
    (main / "a.txt").write_text(wrapped(), encoding="utf-8")
    (extra / "b.txt").write_text("The whole extra book.\n" * 50, encoding="utf-8")
    split = load_corpus(main, extra=[extra])
    alone = load_corpus(main)
    assert split.val_texts == alone.val_texts
    assert len(split.train_texts) == 2 and "The whole extra book." in split.train_texts[1]
    assert split.extra_files == [extra / "b.txt"]
    assert split.fingerprint != alone.fingerprint
