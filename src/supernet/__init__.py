"""Weight-sharing super-net training and ranking evaluation (Yu, Ranftl, Salzmann)."""

__version__ = "0.1.0"
