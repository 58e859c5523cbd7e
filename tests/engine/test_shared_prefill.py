"""Candidates on the engine: N rows of one prompt, prefilled once (Engine._prefill copies
the first row's keys/values to its twins), each with its own sampling."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.generation.engine.adapter import EngineGenerator, engine_for
from app.generation.registry import ModelRegistry
from app.generation.sampling import SamplingParams

GREEDY = SamplingParams(temperature=0, max_new_tokens=12)
SAMPLED = SamplingParams(temperature=1.0, top_k=0, top_p=1.0, max_new_tokens=12)


@pytest.fixture(scope="module")
def registry(tiny_model_dir: Path) -> ModelRegistry:
    return ModelRegistry({"tiny": str(tiny_model_dir)}, device="cpu")


def test_twins_write_what_one_row_writes(registry):
    """Greedy: do three rows sharing one prefill each write the single row's text?"""
    generator = EngineGenerator(registry)
    alone = generator.run("tiny", "Once upon a time", GREEDY)
    engine = engine_for(registry.get("tiny"), generator.precision, generator.max_batch)
    copied = engine.twin_prefills
    streamed: dict[int, list[str]] = {}
    rows = generator.run_many(
        "tiny", "Once upon a time", GREEDY, 3,
        on_delta=lambda row, delta: streamed.setdefault(row, []).append(delta),
    )  # fmt: skip
    assert [r.token_ids for r in rows] == [alone.token_ids] * 3
    assert ["".join(streamed.get(i, [])) for i in range(3)] == [r.text for r in rows]
    assert engine.twin_prefills - copied == 2  # one prefill, two copies


def test_sampled_twins_differ(registry):
    """Sampled with their own seeds, do the rows write different continuations?"""
    rows = EngineGenerator(registry).run_many("tiny", "The waves answered", SAMPLED, 3, seed=7)
    assert len({tuple(r.token_ids) for r in rows}) > 1
