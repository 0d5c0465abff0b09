"""pyjaild: the Tornado daemon serving the Docker Engine API on top of the pyjail engine."""

__all__: list[str] = []
