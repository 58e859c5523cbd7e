"""Workshop fixtures: tiny corpora written into tmp_path and a tiny training config."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from app.workshop.model import TrainConfig

WORDS_EN = [
    "the",
    "keeper",
    "wrote",
    "letters",
    "to",
    "a",
    "quiet",
    "sea",
    "and",
    "waves",
    "answered",
    "him",
    "with",
    "salt",
    "foam",
]
WORDS_KO = ["등대지기는", "바다에", "편지를", "썼고", "파도는", "소금과", "거품으로", "대답했다"]


def story_text(seed: int, lines: int = 150) -> str:
    """Repetitive two-language prose: learnable in a few dozen steps."""
    rng = random.Random(seed)
    out = []
    for _ in range(lines):
        words = WORDS_EN if rng.random() < 0.6 else WORDS_KO
        start = rng.randrange(len(words))
        out.append(" ".join(words[start:] + words[:start]) + ".")
    return "\n".join(out) + "\n"


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    """A two-file corpus folder."""
    folder = tmp_path / "corpus"
    folder.mkdir()
    (folder / "a.txt").write_text(story_text(1), encoding="utf-8")
    (folder / "b.txt").write_text(story_text(2), encoding="utf-8")
    return folder


@pytest.fixture
def tiny_config(corpus: Path, tmp_path: Path) -> TrainConfig:
    """A config that trains a 2-layer, 32-wide GPT-2 for 24 steps in a second or two."""
    return TrainConfig(
        corpus=str(corpus),
        out=str(tmp_path / "model"),
        vocab_size=300,
        n_layer=2,
        n_embd=32,
        n_head=2,
        context=32,
        dropout=0.0,
        batch_size=8,
        lr=3e-3,
        warmup_steps=4,
        max_steps=24,
        eval_every=8,
        eval_windows=8,
        threads=1,
        bf16="off",  # "auto" may time its way to either; a clean and a resumed run must agree
    )
