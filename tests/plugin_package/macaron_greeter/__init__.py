"""macaron-greeter: an example third-party macaron plugin (see ``macaron_greeter.plugin``)."""
