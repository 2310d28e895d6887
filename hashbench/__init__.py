"""hashbench: a benchmark suite for learning-to-hash image retrieval with exact, reproducible MAP."""

__version__ = "0.1.0"
