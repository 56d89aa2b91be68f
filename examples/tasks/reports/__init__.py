"""The reports example: endpoints that hand slow work to a macaron worker."""
