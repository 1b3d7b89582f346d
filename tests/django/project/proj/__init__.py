"""A small Django project for reclaim's tests; everything that differs per run comes from the environment."""
