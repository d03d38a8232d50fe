"""`python -m annotate.report` is `mmml-report`."""

from .cli import main

main()
