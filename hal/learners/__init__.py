"""Model backends behind the core's ``Learner`` interface (reset, warm-start, fit on indices,
predict probabilities): heads over fixed features and fully fine-tuned transformers."""
