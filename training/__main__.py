"""`python -m training` is `mmml-train`."""

from .cli import main

main()
