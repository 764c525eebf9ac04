"""Shim for tools that still look for setup.py; all metadata is in pyproject.toml."""

from setuptools import setup

if __name__ == "__main__":
    setup()
