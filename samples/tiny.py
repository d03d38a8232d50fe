"""Tiny random backbones, built offline in a second, for the tests and the benchmarks.

They are real Hugging Face models (RoBERTa with a byte-level BPE tokenizer
trained on the spot, Data2Vec-audio with a Wav2Vec2 feature extractor, or a
Whisper encoder with Whisper's log-mel feature extractor) saved
to disk and reloaded through `from_pretrained`, so everything downstream
exercises the same code path a hub id does. Their scores mean nothing.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import torch
from tokenizers import ByteLevelBPETokenizer
from transformers import (
    AutoModel,
    Data2VecAudioConfig,
    HubertConfig,
    RobertaConfig,
    RobertaTokenizerFast,
    Wav2Vec2FeatureExtractor,
    WhisperConfig,
    WhisperFeatureExtractor,
)
from transformers.models.whisper.modeling_whisper import WhisperEncoder

from mmml.config import SAMPLE_RATE, AudioEncoderConfig, FusionConfig, FusionVariant, ModelConfig, TextEncoderConfig

HIDDEN = 32
_SPECIALS = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
_CORPUS = [
    "I really loved this movie, the acting was great and the story was moving.",
    "That was the worst film I have seen, boring and far too long.",
    "It was okay, nothing special, some parts were good and some were bad.",
    "The music is wonderful but the plot makes no sense at all.",
    "Honestly I would not recommend it to anyone, what a waste of time.",
    "what a fantastic performance, I laughed and cried, absolutely brilliant!",
]


def build_tiny_text_encoder(directory: Path, seed: int = 0) -> Path:
    """A 2-layer, 32-wide RoBERTa and its tokenizer, saved in `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(_CORPUS * 4, vocab_size=400, min_frequency=1, special_tokens=_SPECIALS)
    bpe.save_model(str(directory))
    tokenizer = RobertaTokenizerFast.from_pretrained(str(directory), model_max_length=128)
    tokenizer.save_pretrained(str(directory))
    config = RobertaConfig(
        vocab_size=len(tokenizer),
        hidden_size=HIDDEN,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=130,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    _save_random(config, directory, seed)
    return directory


def build_tiny_audio_encoder(directory: Path, seed: int = 0, kind: str = "data2vec-audio") -> Path:
    """A 2-layer, 32-wide Data2Vec-audio, HuBERT (real 320x conv downsampling) or Whisper encoder.

    Saved with its feature extractor, as a hub model is.
    """
    directory.mkdir(parents=True, exist_ok=True)
    if kind == "whisper":
        return _build_tiny_whisper(directory, seed)
    # Data2Vec-audio stacks `num_conv_pos_embeddings` positional conv layers; HuBERT uses it as a kernel width.
    config_class, positional = {
        "data2vec-audio": (Data2VecAudioConfig, {"num_conv_pos_embeddings": 2, "conv_pos_kernel_size": 5}),
        "hubert": (HubertConfig, {"num_conv_pos_embeddings": 16}),
    }[kind]
    config = config_class(
        **positional,
        hidden_size=HIDDEN,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        conv_dim=(32,) * 7,
        mask_time_prob=0.0,  # no SpecAugment: keeps the tiny model deterministic in tests
        layerdrop=0.0,
    )
    _save_random(config, directory, seed)
    Wav2Vec2FeatureExtractor(
        feature_size=1, sampling_rate=SAMPLE_RATE, padding_value=0.0, do_normalize=True, return_attention_mask=True
    ).save_pretrained(str(directory))
    return directory


def _build_tiny_whisper(directory: Path, seed: int) -> Path:
    """Whisper's real front end (80 log-mel bins, 10 ms hop, stride-2 conv) under a 2-layer, 32-wide encoder."""
    # Only the encoder is saved: the decoder's shape in the config is never built.
    config = WhisperConfig(
        d_model=HIDDEN, encoder_layers=2, encoder_attention_heads=4, encoder_ffn_dim=64, max_source_positions=1500
    )
    torch.manual_seed(seed)
    WhisperEncoder(config).save_pretrained(str(directory))
    WhisperFeatureExtractor().save_pretrained(str(directory))
    return directory


def _save_random(config, directory: Path, seed: int) -> None:
    torch.manual_seed(seed)
    AutoModel.from_config(config).save_pretrained(str(directory))


def tiny_model_config(directory: Path, variant: FusionVariant = "fused", seed: int = 0) -> ModelConfig:
    """A `ModelConfig` whose encoders are tiny random models under `directory` (built if absent)."""
    directory = Path(directory)
    text, audio = directory / "text", directory / "audio"
    if not (text / "config.json").is_file():
        build_tiny_text_encoder(text, seed)
    if not (audio / "config.json").is_file():
        build_tiny_audio_encoder(audio, seed)
    return ModelConfig(
        text=TextEncoderConfig(str(text), max_tokens=32),
        audio=AudioEncoderConfig(str(audio), max_seconds=4.0),
        fusion=FusionConfig(variant=variant, layers=2, dropout=0.1),
    )


def build_tiny_checkpoint(directory: Path, variant: FusionVariant = "fused", seed: int = 0) -> Path:
    """A complete random MMML checkpoint in `directory`, loadable with `load_checkpoint`."""
    from mmml.checkpoint import save_checkpoint
    from mmml.model import MMML
    from mmml.preprocessing import Preprocessor

    with tempfile.TemporaryDirectory() as backbones:
        config = tiny_model_config(Path(backbones), variant, seed)
        torch.manual_seed(seed)
        model = MMML.from_config(config)
        preprocessor = Preprocessor.from_config(config)
        # The backbones live inside the checkpoint; name them for provenance, not by a temp path.
        config.text.name_or_path, config.audio.name_or_path = "tiny-random-roberta", "tiny-random-data2vec-audio"
        save_checkpoint(directory, model, preprocessor, metadata={"note": "tiny random model: scores mean nothing"})
    return Path(directory)
