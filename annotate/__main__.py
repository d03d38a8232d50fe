"""`python -m annotate` is `mmml-annotate`."""

from .cli import main

main()
