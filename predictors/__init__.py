"""Predictor plugins: one module per framework, plus the pre/post-processing steps they all share.

Frameworks are found through the `carml.predictors` entry-point group (see `registry`), so a
third-party package adds one by declaring an entry point; nothing here imports a framework until
a model is loaded.
"""
