"""Catalog tests."""
