"""A real llama.cpp `llama-server` for the remote-backend tests, built by .ci/build-llama-server
(cached outside the clone) and serving a GGUF converted from a test-session GPT-2.

The served model has the session tokenizer (tiny_model_dir's), but is wider, deeper and
with a longer context than the tiny one, so a turn streams for about a second: long
enough to kill the server in the middle of one. It writes whole words and never
end-of-text, so every turn survives the cleanup.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.scaled.stack import free_port, start_server

ROOT = Path(__file__).resolve().parents[2]
API_KEY_ENV = "RELAY_TEST_LLAMA_KEY"
API_KEY = "test-only-secret-9f2c"  # the server demands it; no listing may show it
CONTEXT = 512


@pytest.fixture(scope="session")
def llama_cache() -> Path:
    """The cache folder with bin/llama-server and the converter (built on first use)."""
    done = subprocess.run(
        [str(ROOT / ".ci" / "build-llama-server")], capture_output=True, text=True
    )  # fmt: skip
    if done.returncode == 3 and not os.environ.get("CI"):  # no cmake or no C++ compiler
        pytest.skip(f"llama-server cannot be built here: {done.stderr.strip()}")
    assert done.returncode == 0, done.stderr[-4000:]
    return Path(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="session")
def served_model_dir(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A GPT-2 (6 layers, 384 wide, 512 positions) with the session tokenizer, its head
    rewired as tests/scaled/stack.py's word model: it writes whole English words only."""
    import torch
    from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel

    out = tmp_path_factory.mktemp("served-gpt2")
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    tokenizer.save_pretrained(out)
    torch.manual_seed(1)
    config = GPT2Config(
        vocab_size=len(tokenizer), n_positions=CONTEXT, n_embd=384, n_layer=6, n_head=6,
        bos_token_id=tokenizer.eos_token_id, eos_token_id=tokenizer.eos_token_id,
        tie_word_embeddings=False,
    )  # fmt: skip
    model = GPT2LMHeadModel(config)
    vocab = config.vocab_size
    words = [i for i in range(vocab) if re.fullmatch(r" [A-Za-z]{2,}", tokenizer.decode([i]))]
    with torch.no_grad():  # the final norm gives a constant vector; the head maps it to words
        fixed = torch.zeros(config.n_embd)
        fixed[0] = 1.0
        model.transformer.ln_f.weight.zero_()
        model.transformer.ln_f.bias.copy_(fixed)
        logits = torch.full((vocab,), -20.0)
        logits[words] = torch.linspace(2.0, 4.0, len(words))
        model.lm_head.weight.zero_()
        model.lm_head.weight[:, 0] = logits
    model.save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def served_gguf(llama_cache: Path, served_model_dir: Path, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("gguf") / "served.gguf"
    convert = [sys.executable, str(ROOT / ".ci" / "convert-gguf"), str(llama_cache)]
    done = subprocess.run(
        [*convert, str(served_model_dir), str(out), "--outtype", "f32"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-4000:]
    return out


class LlamaServer:
    """One llama-server process on a loopback port; kill() and start() again on the same port."""

    def __init__(self, binary: Path, gguf: Path, parallel: int = 4) -> None:
        self.binary, self.gguf, self.parallel = binary, gguf, parallel
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None

    def start(self) -> LlamaServer:
        command = [
            str(self.binary), "-m", str(self.gguf), "--host", "127.0.0.1",
            "--port", str(self.port), "-c", str(CONTEXT * self.parallel),
            "-np", str(self.parallel), "-t", "1", "--api-key", API_KEY,
        ]  # fmt: skip
        self.process = start_server(command, f"{self.url}/health", 60)
        return self

    @contextlib.contextmanager
    def frozen(self) -> Iterator[None]:
        """The server stopped (SIGSTOP) for the block, then let go on (SIGCONT)."""
        os.kill(self.process.pid, signal.SIGSTOP)
        try:
            yield
        finally:
            os.kill(self.process.pid, signal.SIGCONT)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def spec(self, key: str, **fields: object) -> dict:
        """A RELAY_REMOTE_MODELS entry pointing at this server."""
        entry = {
            "base_url": self.url, "model": "served", "api_key_env": API_KEY_ENV,
            "name": "Served GPT-2", "language": "en", "context": CONTEXT,
            "max_concurrent": 4, "retry_backoff": 0.2,
        }  # fmt: skip
        return {key: entry | fields}


@pytest.fixture(scope="session")
def llama_binary(llama_cache: Path) -> Path:
    os.environ[API_KEY_ENV] = API_KEY
    binary = llama_cache / "bin" / "llama-server"
    assert shutil.which(str(binary)), binary
    return binary


@pytest.fixture(scope="session")
def llama_server(llama_binary: Path, served_gguf: Path) -> Iterator[LlamaServer]:
    """The session's server: 4 slots, for the tests that leave it running."""
    server = LlamaServer(llama_binary, served_gguf).start()
    yield server
    server.kill()


@pytest.fixture
def own_llama_server(llama_binary: Path, served_gguf: Path) -> Iterator[LlamaServer]:
    """A server of this test's own, for tests that kill it."""
    server = LlamaServer(llama_binary, served_gguf).start()
    yield server
    server.kill()
