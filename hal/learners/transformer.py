"""Full fine-tuning of a Hugging Face ``AutoModelForSequenceClassification``.

Speed comes from the input pipeline, not from the model: token ids are computed once per
dataset (``hal.data.tokenization``), every batch is padded only to its own longest text, training
batches group texts of similar length (little padding, still shuffled), evaluation runs over
length-sorted batches, and on CUDA the forward pass runs under bf16 autocast.
"""

from __future__ import annotations

from typing import Any, Iterator

import numpy as np
import torch

from hal.core.config import RunConfig
from hal.core.corpus import Corpus
from hal.core.device import resolve_device
from hal.data.tokenization import (
    TokenizedCorpus,
    model_load_error,
    quiet_transformers,
    resolve_model,
    tokenize_corpus,
)
from hal.learners.base import TorchLearner

# A mega-batch holds at most this many batches; it is sorted by length and cut into batches.
MEGA_BATCHES = 50


def length_grouped_batches(lengths: np.ndarray, batch_size: int,
                           generator: torch.Generator) -> list[np.ndarray]:
    """Positions ``0..len(lengths)-1`` cut into shuffled batches of similar length.

    Shuffle, cut into mega-batches of up to ``MEGA_BATCHES`` batches, sort each mega-batch by
    length, split it into batches, shuffle the batch order. As in HF's ``LengthGroupedSampler`` a
    mega-batch is at most a quarter of the data, so small labeled sets still get different batch
    compositions from epoch to epoch.
    """
    n = len(lengths)
    perm = torch.randperm(n, generator=generator).numpy()
    per_mega = max(1, min(MEGA_BATCHES, n // (batch_size * 4)))
    mega = per_mega * batch_size
    batches: list[np.ndarray] = []
    for start in range(0, n, mega):
        chunk = perm[start:start + mega]
        chunk = chunk[np.argsort(-lengths[chunk], kind="stable")]
        batches.extend(chunk[i:i + batch_size] for i in range(0, len(chunk), batch_size))
    order = torch.randperm(len(batches), generator=generator).tolist()
    return [batches[i] for i in order]


def load_classifier(model_name: str, num_labels: int, multilabel: bool, seed: int,
                    label_names: list[str] | None = None, pad_id: int | None = None):
    """``AutoModelForSequenceClassification`` from ``model_name`` in float32 whose new head is
    initialised from ``seed`` (same seed, same weights). ``HalError`` if it cannot be loaded."""
    from transformers import AutoModelForSequenceClassification

    kwargs: dict[str, Any] = {"num_labels": num_labels}
    if label_names and len(label_names) == num_labels:
        kwargs["id2label"] = dict(enumerate(label_names))
        kwargs["label2id"] = {name: i for i, name in enumerate(label_names)}
    if multilabel:
        kwargs["problem_type"] = "multi_label_classification"
    try:
        # fork_rng: the head is seeded without moving the caller's global RNG stream.
        with torch.random.fork_rng(devices=[]), quiet_transformers():
            torch.manual_seed(seed)
            model = AutoModelForSequenceClassification.from_pretrained(
                resolve_model(model_name), dtype=torch.float32,
                # a checkpoint fine-tuned on other labels: replace its head instead of failing
                ignore_mismatched_sizes=True, **kwargs)
    except Exception as exc:  # OSError, ValueError, hub errors, safetensors errors, ...
        raise model_load_error(model_name, exc) from None
    if model.config.pad_token_id is None and pad_id is not None:
        model.config.pad_token_id = pad_id  # decoder-style models locate the last real token by it
    return model


class TransformerLearner(TorchLearner):
    """A fully fine-tuned sequence classifier over a cached tokenisation of the corpus.

    ``reset`` returns to the pretrained body + the head seeded from ``cfg.seed``; ``fit``
    continues from the current weights (see ``TorchLearner``).
    """

    def __init__(self, cfg: RunConfig, corpus: Corpus, tokens: TokenizedCorpus | None = None):
        if cfg.model is None or cfg.cache_dir is None:
            cfg = cfg.resolved()
        self.cfg = cfg
        self.multilabel = corpus.multilabel
        self.device = resolve_device(cfg.device)
        self.batch_size = cfg.batch_size
        self.weight_decay = cfg.weight_decay
        # Eval batches are length-sorted, so a larger batch costs little padding.
        self.eval_batch_size = max(64, 4 * cfg.batch_size)
        self._num_labels = corpus.num_classes
        if tokens is None:
            tokens = tokenize_corpus(corpus, cfg.model, cfg.max_length, cfg.cache_dir)
        if len(tokens) != len(corpus.texts):
            raise ValueError(f"tokenization has {len(tokens)} texts, corpus {corpus.name!r} has "
                             f"{len(corpus.texts)}: tokenize this corpus with tokenize_corpus")
        self.tokens = tokens
        self._lengths = tokens.lengths
        self.model = load_classifier(cfg.model, self._num_labels, self.multilabel, cfg.seed,
                                     corpus.label_names, tokens.pad_id).to(self.device)
        # bf16 autocast on GPUs that support it: faster matmuls, no loss scaling needed.
        self._autocast = self.device.type == "cuda" and torch.cuda.is_bf16_supported()
        self._remember_initial_weights()

    @property
    def num_outputs(self) -> int:
        return self._num_labels

    def batches(self, idx: np.ndarray, y: np.ndarray | None, batch_size: int,
                generator: torch.Generator | None) -> Iterator[tuple[Any, torch.Tensor | None]]:
        """Dynamically padded batches of ``idx`` (and the matching rows of ``y``): length-grouped
        and shuffled with ``generator``, in the given order without it."""
        idx = np.asarray(idx, dtype=np.int64)
        if generator is None:
            groups = [np.arange(start, min(start + batch_size, len(idx)))
                      for start in range(0, len(idx), batch_size)]
        else:
            groups = length_grouped_batches(self._lengths[idx], batch_size, generator)
        labels = None if y is None else np.asarray(y)
        label_dtype = torch.float32 if self.multilabel else torch.long
        for positions in groups:
            input_ids, mask = self.tokens.pad(idx[positions])
            inputs = {"input_ids": torch.from_numpy(input_ids).to(self.device),
                      "attention_mask": torch.from_numpy(mask).to(self.device)}
            targets = None
            if labels is not None:
                targets = torch.as_tensor(labels[positions], dtype=label_dtype).to(self.device)
            yield inputs, targets

    def logits(self, inputs: Any) -> torch.Tensor:
        """Forward pass; float32 logits (computed under bf16 autocast on CUDA)."""
        if self._autocast:
            with torch.autocast("cuda", dtype=torch.bfloat16):
                out = self.model(**inputs).logits
        else:
            out = self.model(**inputs).logits
        return out.float()

    def outputs(self, idx: np.ndarray, embed: bool, dropout_seed: int | None = None):
        """As ``TorchLearner.outputs``, computed over length-sorted batches, returned in the
        order given."""
        idx = np.asarray(idx, dtype=np.int64)
        order = np.argsort(self._lengths[idx], kind="stable")
        probs, embedding = super().outputs(idx[order], embed, dropout_seed)
        back = np.empty_like(order)
        back[order] = np.arange(len(order))  # position of each caller's row in the sorted order
        return probs[back], (embedding[back] if embedding is not None and len(embedding) else embedding)

    def fresh_state(self, seed: int) -> dict[str, torch.Tensor]:
        """Weights of a randomly initialised model of the same config (shrink-and-perturb noise)."""
        from transformers import AutoModelForSequenceClassification

        with torch.random.fork_rng(devices=[]), quiet_transformers():
            torch.manual_seed(seed)
            fresh = AutoModelForSequenceClassification.from_config(self.model.config,
                                                                   dtype=torch.float32)
        return {k: v.detach() for k, v in fresh.state_dict().items()}
