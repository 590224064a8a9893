"""Reference models CarML builds itself, reproducibly: `carml zoo build` (see `carml.zoo.build`).

Importing this package imports no ML framework; training and export import them when they run.
"""
