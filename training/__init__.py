"""Training and evaluation of MMML on MMSA-layout corpora: the `mmml-train` command.

dataset      label.csv reading and validation (splits, per-modality labels)
audio_cache  each media file decoded once (ffmpeg, 16 kHz mono) into .npy
examples     clips -> media -> batches for the model
batching     length-aware batches
trainer      one optimiser per seed, early stopping, resume, evaluation
resume       the run's own resume point (safetensors + JSON, no pickle)
report       mean ± std over seeds, paper-style Markdown tables
experiments  the paper's ablation groups (Tables 3-6)
cli          `mmml-train fit | evaluate | experiment`
"""
