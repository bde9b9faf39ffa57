"""wanhe (万核): an open render and AI-production farm."""

__version__ = "0.1.0"
