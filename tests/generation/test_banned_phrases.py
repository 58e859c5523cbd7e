"""Banned phrases: the token sequences both samplers never complete, and the text check.

On the tiny GPT-2 with a fixed seed: a phrase the unconstrained model writes never
appears as any of its token sequences once it is banned, in the batching engine and on
the Hugging Face path; the engine's masks are HF's NoBadWordsLogitsProcessor's, token for
token; the vectorised engine check equals a plain per-row loop; and what slips through
as other tokens is cut from the finished turn (the job runner, on both databases).
"""

from __future__ import annotations

import random
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from app.generation.banned import (
    cut_before_banned,
    find_banned,
    parse_phrases,
    phrase_token_ids,
    phrase_variants,
)
from app.generation.engine.batch import Engine, Request
from app.generation.engine.sampler import BatchContext, RowSettings, _bad_words
from app.generation.registry import ModelRegistry
from app.generation.sampling import SamplingParams

PROMPT = "Once upon a time there was a lighthouse keeper"
SAMPLED = SamplingParams(
    temperature=0.9, top_p=0.95, top_k=0, repetition_penalty=1.0, no_repeat_ngram_size=0
)
GREEDY = SamplingParams(temperature=0)  # the anti-loop processors on: HF applies them too
SEED = 7


@pytest.fixture(scope="module")
def tiny(tiny_model_dir: Path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    return model, tokenizer


@pytest.fixture(scope="module")
def registry(tiny_model_dir: Path) -> ModelRegistry:
    return ModelRegistry({"tiny": str(tiny_model_dir)}, device="cpu", torch_threads=1)


def _engine_run(tiny, params: SamplingParams, phrases: tuple[str, ...] = ()) -> list[int]:
    model, tokenizer = tiny
    engine = Engine(model, tokenizer, start=False)
    bans = phrase_token_ids(tokenizer, phrases)
    request = Request(
        tokenizer.encode(PROMPT), params, seed=SEED, stop_on_eos=False, bad_words_ids=bans
    )
    return engine.generate(request).token_ids


def _phrase_in(tokenizer, ids: list[int], width: int) -> tuple[str, list[int]]:
    """A phrase of `width` tokens the model wrote: one that starts a word, is plain text
    and is spelt with exactly those tokens when tokenized on its own."""
    for start in range(len(ids) - width + 1):
        window = ids[start : start + width]
        text = tokenizer.decode(window)
        if (
            text.startswith(" ")
            and text[1:].isprintable()
            and text.strip()
            and "\ufffd" not in text
            and tokenizer.encode(text) == window
        ):
            return text.strip(), window
    pytest.skip(f"the tiny model wrote no plain {width}-token phrase")


def _contains(ids: list[int], seq: list[int]) -> bool:
    return any(ids[i : i + len(seq)] == seq for i in range(len(ids) - len(seq) + 1))


def _never_completed(tokenizer, ids: list[int], phrase: str) -> None:
    sequences = phrase_token_ids(tokenizer, [phrase])
    assert sequences
    for seq in sequences:
        assert not _contains(ids, seq), (phrase, seq, ids)


# --- the phrase list and the text check -------------------------------------------------


def test_stored_list_and_variants():
    """Is a stored list read one phrase a line, and each phrase banned in its usual cases,
    with and without the space before it?"""
    assert parse_phrases("old man\n\n  the sea \nold man") == ("old man", "the sea")
    assert parse_phrases("") == ()
    assert phrase_variants("the Sea") == [
        "the Sea",
        " the Sea",
        "the sea",
        " the sea",
        "The Sea",
        " The Sea",
    ]


def test_text_check_finds_whole_phrases_in_any_case():
    """Is a phrase found at a word start, in any case and line wrapping, but not inside a
    longer word; and a Korean phrase also with its particle?"""
    assert find_banned("He saw the Old\nMan there.", ["old man"]) == (11, "old man")
    assert find_banned("The boldness of manners.", ["old man"]) is None
    assert find_banned("A cat sat.", ["cat"]) == (2, "cat")
    assert find_banned("A caterpillar sat.", ["cat"]) is None
    assert find_banned("그녀는 웃었다.", ["그녀"]) == (0, "그녀")
    assert find_banned("Nothing here.", []) is None


def test_text_check_cuts_the_turn_before_the_phrase():
    """Is the turn cut at the last sentence end before the phrase, and emptied when the
    phrase is in its first sentence?"""
    text = "The lamp went out. Then the old man laughed. He left."
    assert cut_before_banned(text, ["old man"]) == "The lamp went out."
    assert cut_before_banned(text, ["lamp"]) == ""
    assert cut_before_banned(text, ["whale"]) == text
    assert cut_before_banned("비가 왔다. 그녀는 웃었다.", ["그녀"]) == "비가 왔다."


# --- the samplers ---------------------------------------------------------------------------


def test_engine_never_completes_a_banned_phrase_at_the_same_seed(tiny):
    """Is a two-token phrase the engine writes at a fixed seed absent, as every one of its
    token sequences, when it is banned (same seed)?"""
    _, tokenizer = tiny
    params = replace(SAMPLED, max_new_tokens=60)
    free = _engine_run(tiny, params)
    phrase, window = _phrase_in(tokenizer, free, 2)
    assert _contains(free, window)
    banned = _engine_run(tiny, params, (phrase,))
    assert banned != free
    _never_completed(tokenizer, banned, phrase)


def test_engine_single_token_ban(tiny):
    """Is a one-token phrase never written, wherever it would have been?"""
    _, tokenizer = tiny
    params = replace(SAMPLED, max_new_tokens=60)
    free = _engine_run(tiny, params)
    phrase, window = _phrase_in(tokenizer, free, 1)
    banned = _engine_run(tiny, params, (phrase,))
    assert window[0] not in banned
    _never_completed(tokenizer, banned, phrase)


def test_hf_path_never_completes_a_banned_phrase_at_the_same_seed(registry):
    """On the Hugging Face path (NoBadWordsLogitsProcessor), is a phrase the model writes
    at a fixed seed absent once banned, with the same seed?"""
    from app.generation.generator import Generator

    generator = Generator(registry)
    tokenizer = registry.get("tiny").tokenizer
    params = replace(SAMPLED, max_new_tokens=60)
    torch.manual_seed(SEED)
    free = generator.run("tiny", PROMPT, params).token_ids
    phrase, window = _phrase_in(tokenizer, free, 2)
    torch.manual_seed(SEED)
    banned = generator.run("tiny", PROMPT, replace(params, bad_words=(phrase,))).token_ids
    assert banned != free
    _never_completed(tokenizer, banned, phrase)


def test_engine_bans_match_hf_generate_token_for_token(tiny):
    """With greedy decoding and banned phrases the model writes (one of two tokens, one of
    one), does the engine write exactly what HF generate with bad_words_ids writes?"""
    model, tokenizer = tiny
    params = replace(GREEDY, max_new_tokens=40)
    free = _engine_run(tiny, params)
    phrases = (_phrase_in(tokenizer, free, 2)[0], _phrase_in(tokenizer, free, 1)[0])
    ids = torch.tensor([tokenizer.encode(PROMPT)])
    out = model.generate(
        ids,
        attention_mask=torch.ones_like(ids),
        pad_token_id=0,
        eos_token_id=None,
        bad_words_ids=phrase_token_ids(tokenizer, phrases),
        **params.generate_kwargs(),
    )
    expected = out[0, ids.shape[1] :].tolist()
    assert expected != free
    assert _engine_run(tiny, params, phrases) == expected


def _loop_reference(logits: torch.Tensor, rows: list[RowSettings], ctx: BatchContext) -> None:
    """The plain per-row, per-sequence check the vectorised one replaces."""
    for row, settings in enumerate(rows):
        length = int(ctx.lengths[row])
        for seq in settings.bad_words_ids:
            prefix = seq[:-1]
            if len(prefix) > length:
                continue
            if prefix and ctx.history[row, length - len(prefix) : length].tolist() != prefix:
                continue
            logits[row, seq[-1]] = float("-inf")


def test_vectorised_check_equals_the_per_row_loop():
    """Over random histories and phrase tables, does the engine mask exactly the tokens a
    per-row loop over the sequences masks (rows without bans untouched)?"""
    rng = random.Random(3)
    V, T = 12, 20
    for trial in range(200):
        B = rng.randint(1, 5)
        history = torch.randint(0, 4, (B + 1, T))  # a small alphabet: tails often match
        lengths = torch.tensor([rng.randint(0, T - 1) for _ in range(B)])
        rows = [
            RowSettings(
                1.0,
                0,
                1.0,
                1.0,
                0,
                bad_words_ids=[
                    [rng.randrange(4) for _ in range(rng.randint(1, 4))]
                    for _ in range(rng.randint(0, 3))
                ],
            )  # fmt: skip
            for _ in range(B)
        ]
        logits = torch.randn(B, V)
        expected = logits.clone()
        _loop_reference(expected, rows, BatchContext(history, lengths))
        _bad_words(logits, rows, BatchContext(history, lengths))
        assert torch.equal(logits, expected), trial


# --- the job runner's text check ---------------------------------------------------------


def test_a_phrase_spelt_with_other_tokens_is_cut_from_the_turn(app, factory):
    """When the model's text holds a banned phrase anyway (other tokens), is the stored turn
    cut before it, and are the phrases handed to the sampler?"""
    from app.extensions import db
    from app.generation.decoding import StopReason
    from app.generation.generator import Generation, Generator
    from app.stories.models import Turn
    from tests.generation.test_jobs import ai_turns, append, wait_job

    seen: list[tuple[str, ...]] = []

    class Glued(Generator):
        def run(self, model_key, prompt, params, on_delta=None, should_stop=None):
            seen.append(params.bad_words)
            text = "The tide rose. Then the Old Man spoke. He left."
            return Generation(text=text, token_ids=[], stop_reason=StopReason.EOS)

    alice = factory.user()
    story_id = factory.story(alice, banned_phrases=["old man", "whale"])
    app.extensions["relay.generator"] = Glued(app.extensions["relay.registry"])
    _, job_id = append(app, story_id, alice, "The door opened.")
    assert wait_job(app, job_id) == "done"
    assert seen == [("old man", "whale")]
    (turn,) = ai_turns(app, story_id)
    assert turn.text == "The tide rose."
    with app.app_context():
        assert db.session.get(Turn, turn.id).flag is None


# --- remote models --------------------------------------------------------------------------


def test_remote_single_token_bans_go_as_logit_bias(tiny_model_dir):
    """With an exact tokenizer, are a phrase's one-token spellings sent as logit_bias -100
    (multi-token ones not), and nothing without one ("estimate")?"""
    from transformers import AutoTokenizer

    from app.generation.remote import completion_payload, single_token_bans
    from app.generation.remote_config import RemoteModel

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    one = next(
        word
        for word in ("upon", "who", "the", "a")
        if len(tokenizer.encode(" " + word, add_special_tokens=False)) == 1
    )
    spec = RemoteModel(key="r", base_url="http://127.0.0.1:9", tokenizer=str(tiny_model_dir))
    bias = single_token_bans(spec, (one, "lighthouse keeper letters"))
    (token,) = tokenizer.encode(" " + one, add_special_tokens=False)
    assert bias[str(token)] == -100 and set(bias.values()) == {-100}
    for key in bias:
        assert len(tokenizer.decode([int(key)]).strip()) <= len(one)
    body = completion_payload(spec, "Once", SAMPLED, logit_bias=bias)
    assert body["logit_bias"] == bias
    assert "logit_bias" not in completion_payload(spec, "Once", SAMPLED)
    estimate = RemoteModel(key="e", base_url="http://127.0.0.1:9", tokenizer="estimate")
    assert single_token_bans(estimate, (one,)) == {}
