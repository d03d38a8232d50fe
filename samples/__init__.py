"""What a checkout makes on the spot for trying, testing and developing the tool.

`media` (espeak-ng speech muxed into video), `tiny` (tiny random backbones
and checkpoints), `devsets` (the fusion development sets) and `demo`.
Not part of the installed tool (`pyproject.toml` packages only `mmml`,
`pipelines`, `training` and `annotate`, and none of them imports this
package): run from a checkout, e.g. `python -m samples.demo`.
"""
