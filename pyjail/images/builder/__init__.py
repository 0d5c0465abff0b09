"""``docker build`` (the legacy builder's behaviour): Dockerfile parser, context, cache, executor."""

from pyjail.images.builder.executor import Builder, BuildError, BuildOptions, for_engine

__all__ = ["BuildError", "BuildOptions", "Builder", "for_engine"]
