"""The engine behind the runner's generator interface."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
import torch

from app.generation.engine.adapter import EngineGenerator, build_generator, engine_for
from app.generation.generator import Generator
from app.generation.registry import ModelRegistry
from app.generation.sampling import SamplingParams

GREEDY = SamplingParams(temperature=0, max_new_tokens=20)


@pytest.fixture(scope="module")
def registry(tiny_model_dir: Path) -> ModelRegistry:
    return ModelRegistry({"tiny": str(tiny_model_dir)}, device="cpu")


def test_engine_generator_writes_what_hf_generator_writes(registry):
    """Does the batched generator give the HF generator's greedy text, streamed in whole pieces?"""
    deltas: list[str] = []
    ours = EngineGenerator(registry).run("tiny", "Once upon a time", GREEDY, on_delta=deltas.append)
    theirs = Generator(registry).run("tiny", "Once upon a time", GREEDY)
    assert ours.token_ids == theirs.token_ids
    assert ours.text == theirs.text == "".join(deltas)
    assert ours.stop_reason in ("eos", "length")


def test_concurrent_jobs_share_the_engine(registry):
    """Do jobs from several runner threads finish with their own text when batched together?"""
    generator = EngineGenerator(registry)
    prompts = ["Once upon a time", "옛날 옛적에", "The waves answered", "She said:"]
    alone = [generator.run("tiny", p, GREEDY).text for p in prompts]
    together: dict[int, str] = {}

    def job(i: int) -> None:
        together[i] = generator.generate("tiny", prompts[i], GREEDY)

    threads = [threading.Thread(target=job, args=(i,)) for i in range(len(prompts))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert [together[i] for i in range(len(prompts))] == alone


def test_should_stop_cancels_the_request(registry, monkeypatch):
    """When the runner says stop, does the job end as "cancelled" and free its slot?

    The engine's (real) step is held until the request is withdrawn, so a fast machine
    cannot finish the whole budget before the runner's first poll.
    """
    generator = EngineGenerator(registry)
    engine = engine_for(registry.get("tiny"))
    real_step = engine.step

    def step_once_withdrawn() -> int:
        deadline = time.monotonic() + 30
        while not any(h.cancelled for h in list(engine._waiting)) and engine._waiting:
            if time.monotonic() > deadline:
                break
            time.sleep(0.001)
        return real_step()

    monkeypatch.setattr(engine, "step", step_once_withdrawn)
    polls = {"n": 0}

    def should_stop() -> bool:
        polls["n"] += 1
        return True

    long = SamplingParams(temperature=0, max_new_tokens=60)
    result = generator.run("tiny", "Once upon a time", long, should_stop=should_stop)
    assert result.stop_reason == "cancelled"
    assert polls["n"] == 1
    assert len(result.token_ids) < 60
    assert engine.load == 0
    monkeypatch.undo()
    after = generator.run("tiny", "Once upon a time", long)  # the engine serves on
    assert after.stop_reason in ("eos", "length") and after.token_ids


def test_config_selects_engine_and_precision(registry):
    """Do RELAY_ENGINE and RELAY_PRECISION pick the generator, and bad values fail loudly?"""
    assert type(build_generator({"RELAY_ENGINE": "hf"}, registry)) is Generator
    chosen = build_generator({"RELAY_ENGINE": "batched", "RELAY_PRECISION": "int8"}, registry)
    assert isinstance(chosen, EngineGenerator) and chosen.precision == "int8"
    assert isinstance(build_generator({}, registry), EngineGenerator)
    with pytest.raises(ValueError):
        build_generator({"RELAY_PRECISION": "fp8"}, registry)
    with pytest.raises(ValueError):
        build_generator({"RELAY_ENGINE": "turbo"}, registry)
    with pytest.raises(ValueError, match="RELAY_KV_CACHE"):
        build_generator({"RELAY_KV_CACHE": "int4"}, registry)
    bf16_kv = build_generator({"RELAY_PRECISION": "fp32", "RELAY_KV_CACHE": "bf16"}, registry)
    assert bf16_kv.generate("tiny", "Once upon a time", GREEDY)
    assert engine_for(registry.get("tiny"), "fp32", 16, "bf16").cache.k.dtype == torch.bfloat16
    text = chosen.generate("tiny", "Once upon a time", GREEDY)
    assert isinstance(text, str)


def test_app_runner_uses_the_configured_engine(tiny_model_dir: Path, tmp_path: Path):
    """Does the app's job code get the batched engine by default, and HF with RELAY_ENGINE=hf?"""
    from app.runners.execute import get_generator
    from tests.conftest import make_app

    for engine, expected in (("batched", EngineGenerator), ("hf", Generator)):
        app = make_app(
            f"sqlite:///{tmp_path / engine}.sqlite3", tiny_model_dir, RELAY_ENGINE=engine
        )
        with app.app_context():
            generator = get_generator()
            assert type(generator) is expected
            assert generator.generate("tiny", "Once upon a time", GREEDY)
        app.extensions["relay.shutdown"]()


def test_int8_becomes_fp16_on_a_gpu():
    """Is the CPU-only int8 path swapped for fp16 when the model sits on a GPU?"""
    from app.generation.engine.adapter import effective_precision

    assert effective_precision("int8", "cpu") == "int8"
    assert effective_precision("int8", "cuda:0") == "fp16"
    assert effective_precision("fp32", "cuda") == "fp32"
