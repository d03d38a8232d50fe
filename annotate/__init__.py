"""The `mmml-annotate` command (`cli`), its run management (`run`: resume, failures, merge) and configuration."""
