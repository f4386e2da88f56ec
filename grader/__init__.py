"""Autograder for PyTorch gradient exercises."""

__version__ = "0.1.0"
