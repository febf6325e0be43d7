"""Registers spotscribe's plugins and fixture modules for every suite and test."""

pytest_plugins = [
    "pytester",
    "plugins.options",
    "plugins.markers",
    "plugins.reporting",
    "fixtures.aws",
    "fixtures.docker",
    "fixtures.audio",
    "fixtures.worker",
    "fixtures.registry",
    "fixtures.images",
    "fixtures.hosts",
]
