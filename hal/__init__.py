"""HAL: hybrid active learning — study the training cost of pool-based active learning."""

__version__ = "0.1.0"
