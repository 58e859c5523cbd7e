"""The story cache: its mixture, the engine and HF paths agreeing on it, its switch, its fit."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import pytest
import torch

from app.generation.engine.batch import Engine, Request
from app.generation.story_cache import HFStoryCache, StoryCache, mix, sequence_log_probs
from tests.engine.test_engine import GREEDY, hf_greedy, prompts, run_all, tiny  # noqa: F401

CACHE = StoryCache(theta=20.0, lam=0.6)  # strong, so that it changes greedy choices


def test_mixture_moves_mass_to_what_followed_similar_states():
    """Does the cache add λ of probability to the ids that followed similar states, leave a
    row without earlier positions as the model's, and stay a distribution?"""
    logits = torch.zeros(2, 5)  # uniform model: 0.2 each
    query = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    keys = torch.tensor([[[1.0, 0.0], [0.0, 1.0]], [[1.0, 0.0], [0.0, 1.0]]])
    next_ids = torch.tensor([[3, 1], [3, 1]])
    valid = torch.tensor([[True, True], [False, False]])
    out = mix(
        logits, query, keys, next_ids, valid, torch.tensor([50.0, 50.0]), torch.tensor([0.5, 0.5])
    )
    probs = out.exp()
    assert torch.allclose(probs.sum(-1), torch.ones(2), atol=1e-5)
    assert probs[0, 3] == pytest.approx(0.5 * 0.2 + 0.5, abs=1e-4)  # the similar key's next id
    assert torch.allclose(probs[1], torch.full((5,), 0.2), atol=1e-6)  # nothing cached yet


def test_sequence_scoring_matches_the_step_mixture():
    """Does the fitting's whole-sequence scorer give, at each position, what `mix` gives?"""
    torch.manual_seed(0)
    T, C, V = 7, 4, 11
    logits, hidden = torch.randn(T, V), torch.randn(T, C)
    ids = torch.tensor([1, 4, 2, 4, 2, 9, 4, 2])  # inputs ids[:-1], targets ids[1:]
    scored = sequence_log_probs(logits, hidden, ids[1:], theta=3.0, lam=0.3)
    h = torch.nn.functional.normalize(hidden, dim=-1)
    for t in range(1, T):
        step = mix(
            logits[t : t + 1], h[t : t + 1], h[None, :t], ids[None, 1 : t + 1],
            torch.ones(1, t, dtype=torch.bool), torch.tensor([3.0]), torch.tensor([0.3]),
        )  # fmt: skip
        assert float(step[0, ids[t + 1]]) == pytest.approx(float(scored[t]), abs=1e-5)


def test_engine_and_hf_paths_write_the_same_cached_text(tiny, prompts):  # noqa: F811
    """With the cache on, does the batching engine (rows mixed in one step) write HF
    generate's greedy tokens (mixed by hooks), and do both differ from the cache off?"""
    model, tokenizer = tiny
    params = replace(GREEDY, repetition_penalty=1.0, no_repeat_ngram_size=0)
    engine = Engine(model, tokenizer, start=False, story_cache=CACHE)
    plain = Engine(model, tokenizer, start=False)
    requests = [Request(p, params, stop_on_eos=False) for p in prompts]
    cached = run_all(engine, requests)  # all four in one batch
    changed = 0
    for prompt, result in zip(prompts, cached, strict=True):
        hooks = HFStoryCache(model, CACHE)
        try:
            assert result.token_ids == hf_greedy(model, prompt, params)
        finally:
            hooks.close()
        (off,) = run_all(plain, [Request(prompt, params, stop_on_eos=False)])
        changed += off.token_ids != result.token_ids
    assert changed >= 1
    assert hf_greedy(model, prompts[0], params) == run_all(plain, [requests[0]])[0].token_ids


def test_switch_lives_in_the_model_folder(tmp_path):
    """Is the cache on only when generation_config.json says so with usable values?"""
    config = tmp_path / "generation_config.json"
    assert StoryCache.for_model(tmp_path) is None  # no file
    for entry, expected in (
        ({"enabled": True, "theta": 10, "lambda": 0.1}, StoryCache(10.0, 0.1)),
        ({"enabled": False, "theta": 10, "lambda": 0.1}, None),
        ({"enabled": True, "theta": 10, "lambda": 1.5}, None),
    ):
        config.write_text(json.dumps({"relay_story_cache": entry}))
        assert StoryCache.for_model(tmp_path) == expected
    assert StoryCache.for_model("gpt2") is None  # a hub id: nothing to read


def test_fit_writes_figures_and_the_switch(tiny, tmp_path):  # noqa: F811
    """Does the fit pick θ and λ from its grid on the tuning half and record the held-out
    bits/char with the switch in generation_config.json?"""
    from app.workshop.story_cache_fit import LAMBDAS, MIN_GAIN, THETAS, fit, write_switch

    model, tokenizer = tiny
    texts = ["The keeper Mirelle wrote to the sea. Mirelle waited. " * 12] * 2
    result = fit(model, tokenizer, texts, context=64, limit=4)
    assert result.theta in THETAS and result.lam in LAMBDAS
    assert math.isfinite(result.heldout_on) and math.isfinite(result.heldout_off)
    (tmp_path / "generation_config.json").write_text('{"eos_token_id": 0}')
    entry = write_switch(tmp_path, result, "tiny")
    saved = json.loads((tmp_path / "generation_config.json").read_text())
    assert saved["eos_token_id"] == 0 and saved["relay_story_cache"] == entry
    assert entry["enabled"] == (result.heldout_on <= result.heldout_off * (1 - MIN_GAIN))
