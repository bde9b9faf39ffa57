# mypy: disable-error-code="no-untyped-call,call-arg"
"""Tiny diffusion pipelines with random weights, built from configs (as diffusers tests
itself): for the tests, the benchmark and a first try of the farm without real weights.

Nothing is downloaded: the CLIP and T5 tokenizers get a small vocabulary written here.
`build(kind, folder)` writes a folder that `DiffusionPipeline.from_pretrained` loads back.
Kinds: "sd" (StableDiffusionPipeline, text/image → image), "svd"
(StableVideoDiffusionPipeline, image → video), "wan" (WanPipeline, text → video).
"""

from __future__ import annotations

import json
import string
from pathlib import Path
from typing import Any

KINDS = ("sd", "svd", "wan")


def _clip_tokenizer(folder: Path) -> Any:
    """A CLIP BPE tokenizer over letters (no merges): each letter is a token."""
    from transformers import CLIPTokenizer

    folder.mkdir(parents=True, exist_ok=True)
    vocab: dict[str, int] = {"<|startoftext|>": 0, "!": 1, "<|endoftext|>": 2}
    for ch in string.ascii_lowercase + string.digits:
        vocab.setdefault(ch, len(vocab))
        vocab.setdefault(ch + "</w>", len(vocab))
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    return CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"),
                         model_max_length=77, pad_token="!")


def _word_tokenizer() -> Any:
    """A T5-style fast tokenizer: a word-level vocabulary of letters and a few words."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {"<pad>": 0, "</s>": 1, "<unk>": 2}
    for ch in string.ascii_lowercase + string.digits:
        vocab[ch] = len(vocab)
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Split("", "isolated")
    tok.post_processor = processors.TemplateProcessing(
        single="$A </s>", special_tokens=[("</s>", 1)]
    )
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="</s>",
                                   unk_token="<unk>", model_max_length=512)


def build_sd() -> Any:
    import torch
    from diffusers import (
        AutoencoderKL,
        DDIMScheduler,
        StableDiffusionPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        block_out_channels=(32, 64), layers_per_block=1, sample_size=32, in_channels=4,
        out_channels=4, down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), cross_attention_dim=32,
        norm_num_groups=32,
    )
    scheduler = DDIMScheduler(beta_start=0.00085, beta_end=0.012,
                              beta_schedule="scaled_linear", clip_sample=False,
                              set_alpha_to_one=False, steps_offset=1)
    torch.manual_seed(0)
    vae = AutoencoderKL(
        block_out_channels=[32, 64], in_channels=3, out_channels=3,
        down_block_types=["DownEncoderBlock2D", "DownEncoderBlock2D"],
        up_block_types=["UpDecoderBlock2D", "UpDecoderBlock2D"], latent_channels=4,
        norm_num_groups=32,
    )
    torch.manual_seed(0)
    text_encoder = CLIPTextModel(CLIPTextConfig(
        bos_token_id=0, eos_token_id=2, hidden_size=32, intermediate_size=37,
        layer_norm_eps=1e-05, num_attention_heads=4, num_hidden_layers=2, pad_token_id=1,
        vocab_size=100,
    ))
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        tokenizer = _clip_tokenizer(Path(tmp))
    return StableDiffusionPipeline(
        unet=unet, scheduler=scheduler, vae=vae, text_encoder=text_encoder,
        tokenizer=tokenizer, safety_checker=None, feature_extractor=None,
        requires_safety_checker=False,
    )


def build_svd() -> Any:
    import torch
    from diffusers import (
        AutoencoderKLTemporalDecoder,
        EulerDiscreteScheduler,
        StableVideoDiffusionPipeline,
        UNetSpatioTemporalConditionModel,
    )
    from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModelWithProjection

    torch.manual_seed(0)
    unet = UNetSpatioTemporalConditionModel(
        block_out_channels=(32, 64), layers_per_block=1, sample_size=32, in_channels=8,
        out_channels=4,
        down_block_types=("CrossAttnDownBlockSpatioTemporal", "DownBlockSpatioTemporal"),
        up_block_types=("UpBlockSpatioTemporal", "CrossAttnUpBlockSpatioTemporal"),
        cross_attention_dim=32, num_attention_heads=8,
        projection_class_embeddings_input_dim=96, addition_time_embed_dim=32,
    )
    scheduler = EulerDiscreteScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
        interpolation_type="linear", num_train_timesteps=1000, prediction_type="v_prediction",
        sigma_max=700.0, sigma_min=0.002, steps_offset=1, timestep_spacing="leading",
        timestep_type="continuous", use_karras_sigmas=True,
    )
    torch.manual_seed(0)
    vae = AutoencoderKLTemporalDecoder(
        block_out_channels=[32, 64], in_channels=3, out_channels=3,
        down_block_types=["DownEncoderBlock2D", "DownEncoderBlock2D"], latent_channels=4,
    )
    torch.manual_seed(0)
    image_encoder = CLIPVisionModelWithProjection(CLIPVisionConfig(
        hidden_size=32, projection_dim=32, num_hidden_layers=2, num_attention_heads=4,
        image_size=224, intermediate_size=37, patch_size=32,
    ))
    feature_extractor = CLIPImageProcessor(crop_size=32, size=32)
    return StableVideoDiffusionPipeline(
        unet=unet, image_encoder=image_encoder, scheduler=scheduler, vae=vae,
        feature_extractor=feature_extractor,
    )


def build_wan() -> Any:
    import torch
    from diffusers import (
        AutoencoderKLWan,
        FlowMatchEulerDiscreteScheduler,
        WanPipeline,
        WanTransformer3DModel,
    )
    from transformers import T5Config, T5EncoderModel

    torch.manual_seed(0)
    vae = AutoencoderKLWan(base_dim=3, z_dim=16, dim_mult=[1, 1, 1, 1], num_res_blocks=1,
                           temperal_downsample=[False, True, True])
    scheduler = FlowMatchEulerDiscreteScheduler(shift=7.0)
    torch.manual_seed(0)
    text_encoder = T5EncoderModel(T5Config(
        vocab_size=64, d_model=32, d_kv=8, d_ff=37, num_layers=2, num_heads=4,
        decoder_start_token_id=0, pad_token_id=0, eos_token_id=1,
    ))
    torch.manual_seed(0)
    transformer = WanTransformer3DModel(
        patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=12, in_channels=16,
        out_channels=16, text_dim=32, freq_dim=256, ffn_dim=32, num_layers=2,
        cross_attn_norm=True, qk_norm="rms_norm_across_heads", rope_max_seq_len=32,
    )
    return WanPipeline(transformer=transformer, vae=vae, scheduler=scheduler,
                       text_encoder=text_encoder, tokenizer=_word_tokenizer())


def build(kind: str, folder: Path) -> Path:
    """Write a tiny pipeline of `kind` to `folder` (save_pretrained); return the folder."""
    builders = {"sd": build_sd, "svd": build_svd, "wan": build_wan}
    if kind not in builders:
        raise ValueError(f"unknown tiny pipeline {kind!r}: one of {', '.join(KINDS)}")
    pipe = builders[kind]()
    pipe.save_pretrained(str(folder))
    return folder
