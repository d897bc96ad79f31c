"""voxgate: self-hosted speech-to-text."""

__version__ = "0.1.0"
