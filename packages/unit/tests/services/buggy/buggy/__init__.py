"""A service with seeded bugs, for macaron-unit's tests."""
