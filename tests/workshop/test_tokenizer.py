"""Tokenizers: exact round trips and loading through AutoTokenizer."""

from __future__ import annotations

import pytest
from transformers import AutoTokenizer

from app.workshop.tokenizer import EOT, save_tokenizer, train_tokenizer

SAMPLES = [
    "Hello, world!  Two spaces,\ttab,\u00a0nbsp and trailing space \n\n\nend",
    "장인님! 인제 저…. 점순이의 키는 언제 자라나? 😀🎉 emoji 👩‍👩‍👧 family",
    "   leading spaces\r\nwindows line\u3000ideographic space 한국어English섞어",
]


@pytest.mark.parametrize("kind", ["bpe", "char"])
def test_round_trip_korean_english(kind, tmp_path):
    """Does decode(encode(x)) give back x exactly, after save and AutoTokenizer load?"""
    tok = train_tokenizer(SAMPLES * 5, kind, vocab_size=400)
    save_tokenizer(tok, tmp_path)
    loaded = AutoTokenizer.from_pretrained(tmp_path)
    for text in SAMPLES:
        assert loaded.decode(loaded.encode(text)) == text


def test_bpe_round_trips_unseen_text(tmp_path):
    """Does byte-level BPE round-trip characters it never saw in training?"""
    tok = train_tokenizer(["plain english only"] * 10, "bpe", vocab_size=300)
    text = "처음 보는 글자 🦜 and ǅ\u200b\tmixed"
    assert tok.decode(tok.encode(text)) == text


def test_special_tokens_set(tmp_path):
    """Are bos/eos/pad GPT-2's <|endoftext|> and clean-up of spaces off?"""
    save_tokenizer(train_tokenizer(SAMPLES, "bpe", vocab_size=300), tmp_path)
    loaded = AutoTokenizer.from_pretrained(tmp_path)
    assert loaded.eos_token == loaded.bos_token == loaded.pad_token == EOT
    assert loaded.eos_token_id is not None
    assert loaded.clean_up_tokenization_spaces is False
