"""Docs true by construction: the generated blocks of README.md and docs/ (`make docs`)."""
