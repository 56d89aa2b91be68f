"""The helloworld example service: handlers in api.py, a model mixin in models.py."""
