"""Getting text to the loop: datasets loaded into a ``Corpus`` (named, synthetic, any CSV/Parquet
folder) and the fixed inputs learners read (TF-IDF rows, frozen-encoder embeddings, token ids),
computed once per dataset and cached."""
