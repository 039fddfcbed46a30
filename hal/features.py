"""Fixed text features for the fast heads: TF-IDF computed once per corpus."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer

from hal.corpus import Corpus


def tfidf_features(corpus: Corpus, max_features: int) -> sp.csr_matrix:
    """TF-IDF rows (unigrams + bigrams, sublinear tf) for every text of ``corpus``, float32 CSR.

    The vocabulary and IDF are fitted on the pool only: unlabeled data the learner may see, while
    validation and test texts stay unseen.
    """
    vectorizer = TfidfVectorizer(max_features=max_features, sublinear_tf=True, ngram_range=(1, 2),
                                 min_df=2, dtype=np.float32)
    vectorizer.fit([corpus.texts[i] for i in corpus.pool])
    return vectorizer.transform(corpus.texts).tocsr()
