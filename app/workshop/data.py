"""Corpus loading, validation and the train/validation split.

A corpus is a folder of UTF-8 text files, cleaned of e-text markup first
(`app.workshop.hygiene`; `clean=False` keeps the bytes as they are, as the
char-level Shakespeare benchmark needs). The last 10% (by characters) of
every cleaned file is validation and is never trained on (nanoGPT's split for
tinyshakespeare). Extra corpora (pre-training text) add whole files to the
training split only: validation stays the main corpus's tail. Token streams
join the files with an end-of-text token so a window that crosses a file
boundary still sees a document break.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from app.workshop.hygiene import HygieneReport, clean_corpus_text

VAL_FRACTION = 0.1
IGNORE_INDEX = -100


class WorkshopError(Exception):
    """Bad input or state the user can fix; the CLI turns it into a clear message and exit 1."""


@dataclass
class CorpusSplit:
    """The texts of a corpus folder, each file cut into a training head and a validation tail."""

    files: list[Path]
    train_texts: list[str]
    val_texts: list[str]
    fingerprint: str = ""
    sizes: dict[str, int] = field(default_factory=dict)
    hygiene: HygieneReport | None = None  # what the cleaning removed (None: not cleaned)
    extra_files: list[Path] = field(default_factory=list)

    @property
    def val_chars(self) -> int:
        return sum(len(t) for t in self.val_texts)

    @property
    def train_chars(self) -> int:
        return sum(len(t) for t in self.train_texts)


def corpus_files(corpus_dir: Path) -> list[Path]:
    """The visible regular files of a corpus folder, sorted by name (raises if there are none)."""
    corpus_dir = Path(corpus_dir)
    if not corpus_dir.is_dir():
        raise WorkshopError(f"corpus folder not found: {corpus_dir}")
    files = sorted(p for p in corpus_dir.iterdir() if p.is_file() and not p.name.startswith("."))
    files = [p for p in files if p.name != "SOURCES.md"]
    if not files:
        raise WorkshopError(f"corpus folder {corpus_dir} has no text files")
    return files


def read_text_file(path: Path) -> str:
    """Read one corpus file as UTF-8, rejecting empty, binary and non-UTF-8 files."""
    raw = path.read_bytes()
    if b"\x00" in raw:
        raise WorkshopError(f"{path} looks binary (it contains NUL bytes); only UTF-8 text works")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise WorkshopError(
            f"{path} is not UTF-8 text (bad byte at offset {exc.start}); convert it to UTF-8"
        ) from exc
    text = text.removeprefix("\ufeff").replace("\r\n", "\n")
    if not text.strip():
        raise WorkshopError(f"{path} is empty")
    return text


def load_corpus(
    corpus_dir: Path,
    val_fraction: float = VAL_FRACTION,
    clean: bool = True,
    extra: Sequence[Path] = (),
) -> CorpusSplit:
    """Read, clean and split every file of a corpus folder (the last `val_fraction` is
    validation); every file of the `extra` folders joins the training split whole."""
    files = corpus_files(corpus_dir)
    digest = hashlib.sha256(b"clean" if clean else b"raw")
    report = HygieneReport() if clean else None
    train, val, sizes = [], [], {}
    for path in files:
        text = read_text_file(path)
        if report is not None:
            text = clean_corpus_text(text, report)
        cut = int(len(text) * (1 - val_fraction))
        if cut == 0 or cut == len(text):
            raise WorkshopError(f"{path} is too short to split into training and validation")
        train.append(text[:cut])
        val.append(text[cut:])
        sizes[path.name] = len(text)
        digest.update(path.name.encode() + b"\0" + hashlib.sha256(text.encode()).digest())
    extra_files = [p for folder in extra for p in corpus_files(folder)]
    for path in extra_files:
        text = read_text_file(path)
        train.append(clean_corpus_text(text, report) if report is not None else text)
        digest.update(b"extra\0" + path.name.encode() + hashlib.sha256(text.encode()).digest())
    split = CorpusSplit(files, train, val, digest.hexdigest()[:16], sizes, report, extra_files)
    return split


def encode_texts(tokenizer, texts: Sequence[str]) -> list[list[int]]:
    """Token ids of each text, without special tokens (fast path through the Rust backend)."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        return [enc.ids for enc in backend.encode_batch(list(texts), add_special_tokens=False)]
    return [tokenizer.encode(t, add_special_tokens=False) for t in texts]


def join_with_separator(pieces: Sequence[Sequence[int]], sep_id: int) -> list[int]:
    """One stream: each document preceded by the end-of-text separator."""
    stream: list[int] = []
    for ids in pieces:
        stream.append(sep_id)
        stream.extend(ids)
    return stream


def check_big_enough(n_train: int, n_val: int, context: int) -> None:
    """Raise unless both splits hold at least one full training window."""
    need = context + 1
    if n_train < need or n_val < 2:
        raise WorkshopError(
            f"corpus too small for a context of {context} tokens: the training split has "
            f"{n_train} tokens (need at least {need}) and validation has {n_val}; "
            "add text or lower --context"
        )


def eval_windows(stream: Sequence[int], context: int, sep_id: int) -> list[tuple[list, list]]:
    """Non-overlapping (inputs, labels) windows that predict every text token exactly once.

    Consecutive windows share one token so that each target appears once; separators
    are never targets (labels = -100), so only the text itself is scored.
    """
    windows = []
    for start in range(0, max(len(stream) - 1, 1), context):
        chunk = list(stream[start : start + context + 1])
        if len(chunk) < 2:
            break
        labels = [IGNORE_INDEX if t == sep_id else t for t in chunk[1:]]
        windows.append((chunk[:-1], labels))
    return windows
