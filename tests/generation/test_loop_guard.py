"""The loop guard: the overlap measure (pure), and the runner's regenerate-once-then-flag
(a deterministic model output drives the runner; the jobs run on SQLite and PostgreSQL)."""

from __future__ import annotations

import pytest

from app.generation.loops import LOOP_FLAG, repeated_share, repeats_earlier, words
from tests.generation.test_jobs import ai_turns, append, drain, wait_job

OPENING = "The lamp went out at midnight and the keeper climbed the stairs in the dark."
FRESH = "Far below, a ship rang its bell twice, and nobody on the rocks answered it."


def test_words_are_lower_case_without_punctuation():
    """Are words compared in lower case without punctuation, Korean split on spaces?"""
    assert words("It's the LAMP, said he.") == ["it's", "the", "lamp", "said", "he"]
    assert words("등대지기가 편지를 썼다.") == ["등대지기가", "편지를", "썼다"]


def test_repeated_share_counts_the_turns_ngrams_seen_before():
    """Is a copy 1.0, a fresh text 0.0, half of each in between, and a short text 0.0?"""
    assert repeated_share(OPENING.upper(), [OPENING]) == 1.0
    assert repeated_share(FRESH, [OPENING]) == 0.0
    half = repeated_share(OPENING + " " + FRESH, [OPENING])
    assert 0.4 < half < 0.6
    assert repeated_share("The lamp went", [OPENING]) == 0.0
    assert repeated_share(OPENING, ["the lamp", "went out at midnight and the keeper"]) > 0
    korean = "바다에 편지를 쓰는 등대지기가 살았습니다"
    assert repeated_share(korean, ["옛날 옛적에 " + korean + "."]) == 1.0


def test_threshold_and_off_switch():
    """Does the guard fire above the threshold only, and never with a threshold of 0?"""
    text = OPENING + " " + FRESH  # about half repeated
    assert repeats_earlier(text, [OPENING], 0.3)
    assert not repeats_earlier(text, [OPENING], 0.7)
    assert not repeats_earlier(OPENING, [OPENING], 0.0)


class _Scripted:
    """A model whose answers are given in advance (the last one repeats)."""

    def __init__(self, *texts: str) -> None:
        self.texts, self.calls = list(texts), 0

    def run(self, model_key, prompt, params, on_delta=None, should_stop=None):
        from app.generation.decoding import StopReason
        from app.generation.generator import Generation

        text = self.texts[min(self.calls, len(self.texts) - 1)]
        self.calls += 1
        if on_delta is not None:
            on_delta(text)
        return Generation(text=text, token_ids=[], stop_reason=StopReason.EOS)


@pytest.mark.parametrize(
    ("answers", "calls", "kept", "flag"),
    [
        ((OPENING, FRESH), 2, FRESH, None),  # the second try is fresh: kept, unflagged
        ((OPENING, OPENING), 2, OPENING, LOOP_FLAG),  # loops twice: kept, flagged
        ((FRESH,), 1, FRESH, None),  # no loop: one try
    ],
)
def test_a_looping_turn_is_regenerated_once_then_flagged(app, factory, answers, calls, kept, flag):
    """Is a turn that repeats the story's opening asked for again once, and kept with the
    flag "loop" when the second try repeats it too; readers told to drop the first try?"""
    generator = _Scripted(*answers)
    app.extensions["relay.generator"] = generator
    alice = factory.user()
    story_id = factory.story(alice, opening=OPENING)
    subscription = app.extensions["relay.events"].subscribe(story_id)
    _, job_id = append(app, story_id, alice, "He stopped on the last step.")
    assert wait_job(app, job_id) == "done"
    assert generator.calls == calls
    (turn,) = ai_turns(app, story_id)
    assert (turn.text, turn.flag) == (kept, flag)
    events = drain(subscription)
    resets = [e for e in events if e["type"] == "generation_reset"]
    assert len(resets) == calls - 1
    created = [e for e in events if e["type"] == "turn_created"]
    assert created[-1]["turn"]["flag"] == flag


def test_the_guard_compares_with_earlier_turns_and_can_be_turned_off(app, factory):
    """Does a copy of an earlier paragraph count as a loop, and LOOP_GUARD_OVERLAP=0 turn
    the guard off (one try, no flag)?"""
    paragraph = "The keeper wrote a letter to the sea and sealed it with wax and salt."
    alice, bob = factory.user(), factory.user()
    story_id = factory.story(alice)
    generator = _Scripted(paragraph)
    app.extensions["relay.generator"] = generator
    _, job_id = append(app, story_id, alice, paragraph)
    assert wait_job(app, job_id) == "done"
    assert generator.calls == 2 and ai_turns(app, story_id)[-1].flag == LOOP_FLAG
    app.config["LOOP_GUARD_OVERLAP"] = 0.0
    generator.calls = 0
    _, job_id = append(app, story_id, bob, paragraph)
    assert wait_job(app, job_id) == "done"
    assert generator.calls == 1 and ai_turns(app, story_id)[-1].flag is None
