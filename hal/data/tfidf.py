"""Fixed text features for the fast heads: TF-IDF computed once per corpus."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer

from hal.core.corpus import Corpus
from hal.core.errors import HalError

# A term must occur in this many pool texts to become a feature (drops typos and ids).
MIN_DF = 2


def tfidf_features(corpus: Corpus, max_features: int) -> sp.csr_matrix:
    """TF-IDF rows (unigrams + bigrams, sublinear tf) for every text of ``corpus``, float32 CSR.

    The vocabulary and IDF are fitted on the pool only: unlabeled data the learner may see, while
    validation and test texts stay unseen.
    """
    vectorizer = TfidfVectorizer(max_features=max_features, sublinear_tf=True, ngram_range=(1, 2),
                                 min_df=MIN_DF, dtype=np.float32)
    pool = [corpus.texts[i] for i in corpus.pool]
    try:
        vectorizer.fit(pool)
    except ValueError:  # "empty vocabulary" / "no terms remain" / too few documents for min_df
        raise no_features_error(corpus.name, len(pool)) from None
    return vectorizer.transform(corpus.texts).tocsr()


def no_features_error(name: str, pool_size: int) -> HalError:
    """The one-line error for a pool in which no term occurs often enough to become a feature."""
    return HalError(f"{name}: the TF-IDF learner found no feature in the {pool_size} pool texts "
                    f"(no word of 2+ letters or digits occurs in at least {MIN_DF} of them, e.g. "
                    "punctuation-only texts or too few rows): use texts with words, more rows, "
                    "or --learner embedding / transformer")
