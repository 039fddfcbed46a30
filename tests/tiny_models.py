"""A tiny BERT model directory built offline, for tests and the offline demo.

No hub access exists on test machines, so code paths that need a checkpoint use a model built
here: a WordPiece vocabulary trained on the given texts plus a randomly initialised 2-layer BERT,
saved with ``save_pretrained`` so that ``AutoTokenizer`` / ``AutoModel*`` load it like any
checkpoint. Its weights are random: it exercises the code, it is not a good text model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

import torch
from tokenizers import BertWordPieceTokenizer
from transformers import BertConfig, BertModel, BertTokenizerFast

from hal.data.tokenization import quiet_transformers

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def build_tiny_model(out_dir: str | Path, texts: Iterable[str], seed: int = 0,
                     vocab_size: int = 2000, hidden_size: int = 32, num_layers: int = 2,
                     num_heads: int = 2, max_position_embeddings: int = 512) -> Path:
    """Write a tiny BERT (tokenizer + config + weights) to ``out_dir`` and return its path.

    The WordPiece vocabulary (at most ``vocab_size`` entries, lower-cased) is trained on ``texts``;
    the weights are a seeded random ``BertModel``, so the same inputs give the same directory.
    ``AutoModelForSequenceClassification.from_pretrained(out_dir)`` adds a fresh head, as it does
    for a real pretrained body.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)

    wordpiece = BertWordPieceTokenizer(lowercase=True)
    wordpiece.train_from_iterator(list(texts), vocab_size=vocab_size, min_frequency=1,
                                  special_tokens=SPECIAL_TOKENS, show_progress=False)
    wordpiece.save_model(str(out))  # vocab.txt
    # Wrap the vocabulary as a standard HF fast tokenizer so tokenizer.json/tokenizer_config.json
    # are written and AutoTokenizer resolves the class without model-specific code.
    # (from_pretrained on the vocab.txt directory works across transformers 4 and 5, whose
    # constructors differ.)
    tokenizer = BertTokenizerFast.from_pretrained(out, do_lower_case=True,
                                                  model_max_length=max_position_embeddings)
    tokenizer.save_pretrained(out)

    config = BertConfig(vocab_size=len(tokenizer), hidden_size=hidden_size,
                        num_hidden_layers=num_layers, num_attention_heads=num_heads,
                        intermediate_size=4 * hidden_size,
                        max_position_embeddings=max_position_embeddings,
                        pad_token_id=tokenizer.pad_token_id)
    # fork_rng: seed the weights without disturbing the caller's global RNG stream.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = BertModel(config)
    with quiet_transformers():
        model.save_pretrained(out)
    return out
