"""Sample media and the demo, for people trying the tool and for its tests and benchmarks.

Not part of the installed tool (`pyproject.toml` packages only `mmml`,
`pipelines`, `training` and `annotate`): run from a checkout, e.g.
`python -m samples.demo`.
"""
