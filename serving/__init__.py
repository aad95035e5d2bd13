"""Shared serving code: Triton launcher, model specifications and config rendering."""
