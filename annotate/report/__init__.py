"""`mmml-report`: an annotation as a page a person reads, and two annotations compared.

runs.py      the annotation, its errors file and configuration, read as Arrow columns
figures.py   corpus summary, per-head spread, agreement, extremes, videos (columnar)
compare.py   two runs matched utterance by utterance
plots.py     the pictures (matplotlib, inlined as PNG)
page.py      the HTML page (Jinja, templates/report.html)
cli.py       the command
"""
