"""A correct service for macaron-unit's tests."""
