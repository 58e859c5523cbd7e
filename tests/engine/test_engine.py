"""The batched engine against HF generate, and per-sequence rules inside a shared batch."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch

from app.generation.engine.batch import Engine, Request
from app.generation.sampling import SamplingParams

GREEDY = SamplingParams(temperature=0, max_new_tokens=24)
SAMPLED = SamplingParams(temperature=0.9, top_p=0.9, top_k=40, max_new_tokens=24)
WILD = SamplingParams(
    temperature=1.3,
    top_p=0.97,
    top_k=0,
    repetition_penalty=1.1,
    no_repeat_ngram_size=4,
    max_new_tokens=24,
)


@pytest.fixture(scope="module")
def tiny(tiny_model_dir: Path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    return model, tokenizer


@pytest.fixture(scope="module")
def prompts(tiny) -> list[list[int]]:
    _, tokenizer = tiny
    texts = [
        "Once upon a time",
        "The waves answered in salt and foam, and nobody believed him. She said:",
        "옛날 옛적에",
        "He laughed.\n\nThe lighthouse keeper wrote letters to the sea and the waves",
    ]
    return [tokenizer.encode(t) for t in texts]


def hf_greedy(model, prompt: list[int], params: SamplingParams) -> list[int]:
    ids = torch.tensor([prompt])
    out = model.generate(
        ids,
        attention_mask=torch.ones_like(ids),
        pad_token_id=0,
        eos_token_id=None,
        **params.generate_kwargs(),
    )
    return out[0, len(prompt) :].tolist()


def run_all(engine: Engine, requests: list[Request]) -> list:
    handles = [engine.submit(r) for r in requests]
    while not all(h.done for h in handles):
        engine.step()
    return [h.result for h in handles]


def test_greedy_alone_matches_hf_generate(tiny, prompts):
    """Does the engine alone write HF generate's greedy tokens (with the anti-loop processors)?"""
    model, tokenizer = tiny
    engine = Engine(model, tokenizer, start=False)
    for params in (GREEDY, replace(GREEDY, repetition_penalty=1.0, no_repeat_ngram_size=0)):
        for prompt in prompts:
            (result,) = run_all(engine, [Request(prompt, params, stop_on_eos=False)])
            assert result.token_ids == hf_greedy(model, prompt, params)


def test_greedy_in_mixed_batch_matches_hf_generate(tiny, prompts):
    """In a batch of different prompt lengths, with a late joiner, is each greedy output HF's?"""
    model, tokenizer = tiny
    engine = Engine(model, tokenizer, start=False)
    lengths = [24, 10, 17, 24]
    handles = [
        engine.submit(Request(p, replace(GREEDY, max_new_tokens=n), stop_on_eos=False))
        for p, n in zip(prompts[:3], lengths, strict=False)
    ]
    for _ in range(4):
        engine.step()
    assert engine.load == 3
    handles.append(engine.submit(Request(prompts[3], GREEDY, stop_on_eos=False)))  # joins mid-run
    while not all(h.done for h in handles):
        engine.step()
    for handle, prompt, n in zip(handles, prompts, lengths, strict=True):
        assert handle.result.token_ids == hf_greedy(
            model, prompt, replace(GREEDY, max_new_tokens=n)
        )


def test_sampled_output_does_not_depend_on_the_batch(tiny, prompts):
    """With a fixed seed, is a sampled sequence the same alone and among others?"""
    model, tokenizer = tiny
    engine = Engine(model, tokenizer, start=False)
    target = Request(prompts[1], SAMPLED, seed=1234, stop_on_eos=False)
    (alone,) = run_all(engine, [target])
    others = [
        Request(prompts[0], WILD, seed=7, stop_on_eos=False),
        Request(prompts[2], GREEDY, stop_on_eos=False),
        Request(prompts[3], replace(SAMPLED, max_new_tokens=5), seed=9, stop_on_eos=False),
    ]
    mixed = run_all(engine, [others[0], target, *others[1:]])
    assert mixed[1].token_ids == alone.token_ids
    assert len(alone.token_ids) == SAMPLED.max_new_tokens
    assert mixed[0].token_ids != alone.token_ids


def test_each_sequence_keeps_its_own_budget_and_stop_rules(tiny, prompts):
    """Do budgets, stop strings and eos end each sequence on its own, leaving the others running?"""
    model, tokenizer = tiny
    engine = Engine(model, tokenizer, start=False)
    (free,) = run_all(engine, [Request(prompts[0], GREEDY, stop_on_eos=False)])
    stop = free.text[len(free.text) // 2 :][:3]
    eos_token = free.token_ids[5]
    results = run_all(
        engine,
        [
            Request(prompts[0], replace(GREEDY, max_new_tokens=3), stop_on_eos=False),
            Request(prompts[0], GREEDY, stop_strings=(stop,), stop_on_eos=False),
            Request(prompts[1], replace(GREEDY, max_new_tokens=11), stop_on_eos=False),
        ],
    )
    assert [r.stop_reason for r in results] == ["length", "stop", "length"]
    assert results[0].token_ids == free.token_ids[:3]
    assert len(results[2].token_ids) == 11
    assert results[1].text == free.text[: free.text.find(stop)]
    engine.eos_ids = {eos_token}
    (ended,) = run_all(engine, [Request(prompts[0], GREEDY)])
    first = free.token_ids.index(eos_token)
    assert ended.stop_reason == "eos" and ended.token_ids == free.token_ids[:first]


def test_budget_is_clamped_to_the_context(tiny):
    """Does a prompt near the context end stop at the last position instead of failing?"""
    model, tokenizer = tiny
    engine = Engine(model, tokenizer, start=False)
    prompt = [5] * (model.config.n_positions - 4)
    (result,) = run_all(engine, [Request(prompt, GREEDY, stop_on_eos=False)])
    assert result.stop_reason == "length" and len(result.token_ids) == 4
    with pytest.raises(ValueError):
        engine.submit(Request([5] * model.config.n_positions, GREEDY))


def test_cancellation_frees_the_slot(tiny, prompts):
    """Does a cancelled sequence leave at the next step, letting a waiting one in, others intact?"""
    model, tokenizer = tiny
    engine = Engine(model, tokenizer, max_batch=2, start=False)
    params = replace(GREEDY, max_new_tokens=30)
    first = engine.submit(Request(prompts[0], params, stop_on_eos=False))
    second = engine.submit(Request(prompts[1], params, stop_on_eos=False))
    third = engine.submit(Request(prompts[2], params, stop_on_eos=False))
    for _ in range(3):
        engine.step()
    assert len(engine.active) == 2 and engine.load == 3
    first.cancel()
    engine.step()
    assert first.done and first.result.stop_reason == "cancelled"
    assert [s.handle for s in engine.active] == [second, third]
    fourth = engine.submit(Request(prompts[3], params, stop_on_eos=False))
    fourth.cancel()  # withdrawn while waiting for a slot: resolved at the next step
    engine.step()
    assert fourth.done and fourth.result.stop_reason == "cancelled"
    while not (second.done and third.done):
        engine.step()
    assert second.result.token_ids == hf_greedy(model, prompts[1], params)
    assert third.result.token_ids == hf_greedy(model, prompts[2], params)
    assert engine.active == [] and engine.load == 0


def test_background_thread_serves_concurrent_requests(tiny, prompts):
    """With the step loop running, do requests from several threads all finish, streaming deltas?"""
    import threading

    model, tokenizer = tiny
    engine = Engine(model, tokenizer, max_batch=4)
    try:
        results: dict[int, object] = {}
        deltas: dict[int, list[str]] = {i: [] for i in range(6)}

        def writer(i: int) -> None:
            req = Request(
                prompts[i % 4], SAMPLED, seed=i, stop_on_eos=False, on_delta=deltas[i].append
            )
            results[i] = engine.generate(req, timeout=60)

        threads = [threading.Thread(target=writer, args=(i,)) for i in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert len(results) == 6
        for i, result in results.items():
            assert "".join(deltas[i]) == result.text
            assert len(result.token_ids) == SAMPLED.max_new_tokens
    finally:
        engine.close()


def test_streaming_never_splits_a_character(tiny):
    """Does the one incremental decoder hand Korean characters split across byte tokens on
    whole, and hold back a possible stop string until it is one?"""
    from app.generation.decoding import IncrementalDecoder

    _model, tokenizer = tiny
    text = "한국어 파도"
    ids = tokenizer.encode(text)
    assert any(tokenizer.decode(ids[:i]).endswith("\ufffd") for i in range(1, len(ids)))
    decoder = IncrementalDecoder(tokenizer)
    deltas = [decoder.push([token]) for token in ids] + [decoder.finish()]
    assert "".join(deltas) == text
    assert all("\ufffd" not in d for d in deltas)

    stopping = IncrementalDecoder(tokenizer, stop_strings=("파도",))
    shown = "".join(stopping.push([token]) for token in ids) + stopping.finish()
    assert shown == stopping.text == "한국어 " and stopping.stopped


def test_next_turn_reuses_the_previous_prompt(tiny, prompts):
    """Does a prompt extending a finished one start from its cache and still match HF generate?"""
    model, tokenizer = tiny
    engine = Engine(model, tokenizer, start=False)
    story = prompts[3] + prompts[1]  # long enough to be worth keeping
    (first,) = run_all(engine, [Request(story, GREEDY, stop_on_eos=False)])
    next_prompt = story + first.token_ids + prompts[0]
    (second,) = run_all(engine, [Request(next_prompt, GREEDY, stop_on_eos=False)])
    assert engine.prefix.hits == 1
    assert engine.prefix.reused_tokens == len(story) + len(first.token_ids) - 1
    assert second.token_ids == hf_greedy(model, next_prompt, GREEDY)
    unrelated = list(reversed(next_prompt))
    (third,) = run_all(engine, [Request(unrelated, GREEDY, stop_on_eos=False)])
    assert engine.prefix.hits == 1
    assert third.token_ids == hf_greedy(model, unrelated, GREEDY)


@pytest.mark.parametrize("precision", ["bf16", "int8"])
def test_each_precision_writes_a_full_turn(tiny, prompts, precision):
    """Does the bf16/int8 engine write each sequence's budget in a mixed batch?"""
    model, tokenizer = tiny
    engine = Engine(model, tokenizer, precision, start=False)
    results = run_all(
        engine,
        [
            Request(prompts[0], SAMPLED, seed=1, stop_on_eos=False),
            Request(prompts[3], replace(GREEDY, max_new_tokens=9), stop_on_eos=False),
        ],
    )
    assert [len(r.token_ids) for r in results] == [SAMPLED.max_new_tokens, 9]
    assert engine.net.dtype == (torch.bfloat16 if precision == "bf16" else torch.float32)
