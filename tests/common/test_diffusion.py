"""Behaviour of the shared diffusion toolkit (services.common.diffusion)."""
import hashlib
import json
import shutil

import pytest
import torch

from services.common.diffusion import (
    SAMPLERS,
    SYNTHETIC_DOMAINS,
    TINY_KINDS,
    DatasetError,
    ModelRefError,
    OfflineImageFeatureExtractor,
    build_offline_tokenizer,
    build_tiny,
    inspect_model,
    generate_synthetic_dataset,
    image_quality,
    load_bundle,
    load_feature_extractor,
    load_imagefolder,
    paired_quality,
    render_synthetic,
    sample,
    tiny_config,
)

torch.set_num_threads(1)
PROMPTS = ["a red circle on a blue background", "3 vertical green and white stripes"]


def _images(domain: str, n: int, seed: int, resolution: int = 16) -> torch.Tensor:
    arr, _ = render_synthetic(domain, n=n, seed=seed, resolution=resolution)
    return torch.from_numpy(arr).permute(0, 3, 1, 2).float() / 127.5 - 1.0


def _assert_same_weights(a: torch.nn.Module, b: torch.nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)


def _cond(bundle):
    return bundle.encode_prompts(PROMPTS) if bundle.conditional else None


# ------------------------------------------------------------------------------------------- bundles
@pytest.mark.parametrize("kind", TINY_KINDS)
def test_tiny_bundle_predicts_noise_with_input_shape(kind):
    bundle = build_tiny(kind)
    assert bundle.kind == kind and bundle.sample_size == 16 and bundle.in_channels == 3
    assert bundle.conditional == (kind != "unet2d")
    assert 100_000 <= bundle.num_parameters() <= 2_000_000
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        eps = bundle.predict_noise(x, torch.tensor([10, 500]), _cond(bundle))
        eps_scalar_t = bundle.predict_noise(x, 10, _cond(bundle))
    assert eps.shape == x.shape and torch.isfinite(eps).all()
    assert eps_scalar_t.shape == x.shape


@pytest.mark.parametrize("kind", TINY_KINDS)
def test_build_tiny_is_deterministic_by_seed_and_keeps_global_rng(kind):
    torch.manual_seed(123)
    expected_next = torch.rand(1)
    torch.manual_seed(123)
    a, b, c = build_tiny(kind, seed=0), build_tiny(kind, seed=0), build_tiny(kind, seed=1)
    assert torch.equal(torch.rand(1), expected_next)
    pa, pb, pc = (torch.cat([p.flatten() for p in m.denoiser.parameters()]) for m in (a, b, c))
    assert torch.equal(pa, pb) and not torch.equal(pa, pc)


def test_conditional_output_depends_on_prompt():
    bundle = build_tiny("unet2d-condition")
    x = torch.randn(1, 3, 16, 16)
    with torch.no_grad():
        a = bundle.predict_noise(x, 100, bundle.encode_prompts(["a red circle"]))
        b = bundle.predict_noise(x, 100, bundle.encode_prompts(["blue stripes"]))
    assert not torch.allclose(a, b)


def test_tiny_config_overrides_and_rejects_unknown_keys():
    cfg = tiny_config("unet2d-condition", sample_size=32, text_encoder={"hidden_size": 48})
    assert cfg["denoiser"]["sample_size"] == 32
    assert cfg["denoiser"]["cross_attention_dim"] == 48  # follows the text encoder
    bundle = build_tiny("dit", sample_size=32)
    with torch.no_grad():
        assert bundle.predict_noise(torch.randn(1, 3, 32, 32), 5, None).shape == (1, 3, 32, 32)
    with pytest.raises(ValueError):
        tiny_config("unet2d", not_a_real_option=1)
    with pytest.raises(ValueError):
        tiny_config("vae")


@pytest.mark.parametrize("kind", TINY_KINDS)
def test_save_and_load_bundle_round_trip_gives_identical_outputs(kind, tmp_path):
    bundle = build_tiny(kind, seed=3)
    bundle.save(tmp_path / "m")
    meta = json.loads((tmp_path / "m" / "atelier.json").read_text())
    assert meta["kind"] == kind
    loaded = load_bundle(str(tmp_path / "m"))
    assert loaded.kind == kind and loaded.conditional == bundle.conditional
    _assert_same_weights(loaded.denoiser, bundle.denoiser)
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        expected = bundle.predict_noise(x, 7, _cond(bundle))
        actual = loaded.predict_noise(x, 7, _cond(loaded))
    torch.testing.assert_close(actual, expected, rtol=0, atol=1e-5)  # CPU kernels are not bitwise reproducible across model instances
    assert loaded.scheduler.config.beta_schedule == bundle.scheduler.config.beta_schedule


def test_load_bundle_tiny_refs_and_errors(tmp_path):
    assert load_bundle("tiny:dit").kind == "dit"
    (tmp_path / "empty").mkdir()
    (tmp_path / "file.txt").write_text("x")
    broken = tmp_path / "broken" / "unet"
    broken.mkdir(parents=True)
    (broken / "config.json").write_text("{not json")
    for ref in ["tiny:nope", "", str(tmp_path / "missing"), str(tmp_path / "empty"), str(tmp_path / "file.txt"),
                str(tmp_path / "broken"), "someone/not-in-local-cache-xyz"]:
        with pytest.raises(ModelRefError):
            load_bundle(ref)


@pytest.mark.parametrize("kind", TINY_KINDS)
def test_latent_bundle_encodes_decodes_and_round_trips(kind, tmp_path):
    bundle = build_tiny(kind, latent=True)
    assert bundle.vae is not None and bundle.in_channels == 4
    assert bundle.sample_size == 8 and bundle.image_size == 16
    images = _images("shapes", 2, 0)
    latents = bundle.encode_images(images)
    assert latents.shape == (2, 4, 8, 8)
    assert bundle.decode_images(latents).shape == (2, 3, 16, 16)
    prompts = PROMPTS if bundle.conditional else None
    generated = sample(bundle, seeds=[0, 1], prompts=prompts, num_inference_steps=2)
    assert generated.shape == (2, 3, 16, 16) and generated.abs().max() <= 1
    bundle.save(tmp_path / "latent")
    loaded = load_bundle(str(tmp_path / "latent"))
    assert loaded.vae is not None
    assert torch.equal(generated, sample(loaded, seeds=[0, 1], prompts=prompts, num_inference_steps=2))


@pytest.mark.parametrize("kind, latent", [(k, False) for k in TINY_KINDS] + [("unet2d-condition", True)])
def test_inspect_model_declares_what_loading_gives_from_configs_alone(kind, latent, tmp_path):
    bundle = build_tiny(kind, latent=latent)
    bundle.save(tmp_path / "m")
    loaded = load_bundle(str(tmp_path / "m"))
    for info in (inspect_model(str(tmp_path / "m")),) + (() if latent else (inspect_model(f"tiny:{kind}"),)):
        assert (info.kind, info.sample_size, info.in_channels, info.image_size, info.image_channels, info.conditional) == (
            loaded.kind, loaded.sample_size, loaded.in_channels, loaded.image_size, loaded.image_channels,
            loaded.conditional)
    # no weights are read: a corrupt weight file passes the inspection and fails the load
    (weights,) = (tmp_path / "m" / ("transformer" if kind == "dit" else "unet")).glob("diffusion_pytorch_model*")
    weights.write_bytes(b"not weights")
    inspect_model(str(tmp_path / "m"))
    with pytest.raises(ModelRefError):
        load_bundle(str(tmp_path / "m"))


def test_inspect_model_names_the_missing_part(tmp_path):
    build_tiny("unet2d-condition", latent=True).save(tmp_path / "m")
    for path, message in [("vae/diffusion_pytorch_model.safetensors", "no weights in vae/"),
                          ("text_encoder/model.safetensors", "no weights in text_encoder/"),
                          ("tokenizer", "without tokenizer/"),
                          ("unet/diffusion_pytorch_model.safetensors", "no weights in unet/")]:
        target = tmp_path / "m" / path
        assert target.exists(), target
        shutil.rmtree(target) if target.is_dir() else target.unlink()
        with pytest.raises(ModelRefError, match=message):
            inspect_model(str(tmp_path / "m"))
        build_tiny("unet2d-condition", latent=True).save(tmp_path / "m")  # whole again
    for ref in ["tiny:nope", "", str(tmp_path / "missing"), "someone/not-in-local-cache-xyz"]:
        with pytest.raises(ModelRefError):
            inspect_model(ref)


def test_load_plain_diffusers_pipeline_dir_converts_scheduler_to_ddpm(tmp_path):
    from diffusers import DDPMScheduler, PNDMScheduler

    bundle = build_tiny("unet2d-condition", seed=1)
    bundle.save(tmp_path / "pipe")
    (tmp_path / "pipe" / "atelier.json").unlink()  # as written by a diffusers pipeline, not by Atelier
    PNDMScheduler.from_config(bundle.scheduler.config).save_pretrained(tmp_path / "pipe" / "scheduler")
    loaded = load_bundle(str(tmp_path / "pipe"))
    assert isinstance(loaded.scheduler, DDPMScheduler) and loaded.kind == "unet2d-condition"
    assert torch.equal(loaded.scheduler.betas, bundle.scheduler.betas)


def test_load_single_model_repo_layout(tmp_path):
    bundle = build_tiny("unet2d", seed=2)  # like google/ddpm-cifar10-32: model and scheduler at the root
    bundle.denoiser.save_pretrained(tmp_path / "repo")
    bundle.scheduler.save_pretrained(tmp_path / "repo")
    loaded = load_bundle(str(tmp_path / "repo"))
    _assert_same_weights(loaded.denoiser, bundle.denoiser)
    x = torch.randn(1, 3, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(loaded.predict_noise(x, 3), bundle.predict_noise(x, 3), rtol=0, atol=1e-5)


# ------------------------------------------------------------------------------------------ sampling
@pytest.mark.parametrize("kind", TINY_KINDS)
def test_sampling_is_deterministic_and_callback_sees_every_step(kind):
    bundle = build_tiny(kind)
    prompts = PROMPTS if bundle.conditional else None
    seen = []
    a = sample(bundle, seeds=[1, 2], prompts=prompts, num_inference_steps=4,
               step_callback=lambda i, t, x: seen.append((i, t, tuple(x.shape))))
    b = sample(bundle, seeds=[1, 2], prompts=prompts, num_inference_steps=4)
    c = sample(bundle, seeds=[1, 3], prompts=prompts, num_inference_steps=4)
    assert a.shape == (2, 3, 16, 16) and a.min() >= -1 and a.max() <= 1
    assert torch.equal(a, b)
    assert torch.equal(a[0], c[0]) and not torch.equal(a[1], c[1])  # each seed is its own stream
    assert [i for i, _, _ in seen] == [0, 1, 2, 3]
    assert len({t for _, t, _ in seen}) == 4 and all(s == (2, 3, 16, 16) for _, _, s in seen)


@pytest.mark.parametrize("scheduler", sorted(SAMPLERS))
def test_every_sampler_is_deterministic(scheduler):
    bundle = build_tiny("unet2d")
    a = sample(bundle, seeds=[0, 1], num_inference_steps=3, scheduler=scheduler)
    b = sample(bundle, seeds=[0, 1], num_inference_steps=3, scheduler=scheduler)
    assert torch.equal(a, b) and torch.isfinite(a).all()


def test_sampling_with_explicit_noise_cond_and_guidance():
    bundle = build_tiny("unet2d-condition")
    noise = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    cond = bundle.encode_prompts(PROMPTS)
    plain = sample(bundle, noise=noise, cond=cond, num_inference_steps=3)
    assert torch.equal(plain, sample(bundle, noise=noise, prompts=PROMPTS, num_inference_steps=3))
    guided = sample(bundle, noise=noise, cond=cond, num_inference_steps=3, guidance_scale=4.0)
    assert not torch.equal(plain, guided)
    with pytest.raises(ValueError):
        sample(bundle, noise=noise, prompts=PROMPTS[:1])
    with pytest.raises(ValueError):
        sample(build_tiny("unet2d"), seeds=[0], prompts=["x"])
    with pytest.raises(ValueError):
        sample(bundle, seeds=[0], prompts=["x"], scheduler="not-a-sampler")


# ----------------------------------------------------------------------------------------- tokenizer
def test_offline_tokenizer_round_trips_and_saves(tmp_path):
    from transformers import CLIPTokenizer

    tok = build_offline_tokenizer(tmp_path / "tok")
    text = "a small red circle on a white background"
    ids = tok(text)["input_ids"]
    assert ids[0] == tok.bos_token_id and ids[-1] == tok.eos_token_id
    assert len(ids) == len(text.split()) + 2  # caption words are whole tokens
    assert tok.decode(ids, skip_special_tokens=True) == text
    odd = "zebra-crossing über 42!"
    assert tok.decode(tok(odd)["input_ids"], skip_special_tokens=True).replace(" ", "") == odd.replace(" ", "")
    reloaded = CLIPTokenizer.from_pretrained(str(tmp_path / "tok"))
    assert reloaded(text)["input_ids"] == ids
    batch = tok([text, "x"], padding="max_length", max_length=tok.model_max_length, return_tensors="pt")
    assert batch.input_ids.shape == (2, tok.model_max_length)


# ---------------------------------------------------------------------------------------------- data
def _file_hashes(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def test_synthetic_dataset_is_byte_identical_for_same_arguments(tmp_path):
    a = generate_synthetic_dataset(tmp_path / "a", domain="digits", n=6, seed=4)
    b = generate_synthetic_dataset(tmp_path / "b", domain="digits", n=6, seed=4)
    c = generate_synthetic_dataset(tmp_path / "c", domain="digits", n=6, seed=5)
    assert _file_hashes(a) == _file_hashes(b)
    assert _file_hashes(a) != _file_hashes(c)
    assert len(_file_hashes(a)) == 7  # 6 PNGs + metadata.jsonl
    with pytest.raises(FileExistsError):
        generate_synthetic_dataset(a, domain="digits", n=6, seed=4)
    generate_synthetic_dataset(a, domain="digits", n=3, seed=4, overwrite=True)
    assert len(load_imagefolder(a, resolution=16)) == 3


def test_synthetic_domains_are_distinct_and_captioned():
    assert len(SYNTHETIC_DOMAINS) >= 8
    firsts = {}
    for name in SYNTHETIC_DOMAINS:
        images, captions = render_synthetic(name, n=3, seed=0, resolution=16)
        assert images.shape == (3, 16, 16, 3) and images.dtype.name == "uint8"
        assert all(isinstance(c, str) and len(c.split()) >= 3 for c in captions)
        assert images.std() > 5  # not a blank canvas
        firsts[name] = images.tobytes()
    assert len(set(firsts.values())) == len(firsts)
    prefix, _ = render_synthetic("shapes", n=2, seed=9)
    longer, _ = render_synthetic("shapes", n=5, seed=9)
    assert (prefix == longer[:2]).all()  # image i does not depend on n


def test_load_imagefolder_reads_generated_dataset(tmp_path):
    folder = generate_synthetic_dataset(tmp_path / "d", domain="shapes", n=5, seed=0, resolution=16)
    ds = load_imagefolder(folder, resolution=8)
    item = ds[0]
    assert item["pixel_values"].shape == (3, 8, 8)
    assert -1.0 <= item["pixel_values"].min() and item["pixel_values"].max() <= 1.0
    assert "background" in item["text"]
    assert ds.images().shape == (5, 3, 8, 8)
    assert load_imagefolder(folder, resolution=16, channels=1)[0]["pixel_values"].shape == (1, 16, 16)


def _good_folder(tmp_path):
    return generate_synthetic_dataset(tmp_path / "ds", domain="stripes", n=2, seed=0)


def _write_meta(folder, rows):
    (folder / "metadata.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")


def test_load_imagefolder_accepts_csv_metadata(tmp_path):
    folder = _good_folder(tmp_path)
    (folder / "metadata.jsonl").unlink()
    (folder / "metadata.csv").write_text('file_name,text\n00000.png,"stripes, one"\n00001.png,two\n')
    assert load_imagefolder(folder, resolution=16).texts == ["stripes, one", "two"]
    # as a spreadsheet saves it ("CSV UTF-8" begins with a byte-order mark)
    (folder / "metadata.csv").write_text('\ufefffile_name,text\n00000.png,one\n00001.png,two\n', encoding="utf-8")
    assert load_imagefolder(folder, resolution=16).texts == ["one", "two"]


@pytest.mark.parametrize("problem", ["missing_folder", "no_images", "no_metadata", "missing_text", "csv_no_text",
                                     "traversal", "absolute", "missing_file", "non_image", "bad_json", "empty"])
def test_load_imagefolder_rejects_bad_layouts(tmp_path, problem):
    folder = _good_folder(tmp_path)
    if problem == "missing_folder":
        folder = tmp_path / "nope"
    elif problem == "no_images":
        for png in folder.glob("*.png"):
            png.unlink()
    elif problem == "no_metadata":
        (folder / "metadata.jsonl").unlink()
    elif problem == "missing_text":
        _write_meta(folder, [{"file_name": "00000.png"}])
    elif problem == "csv_no_text":
        (folder / "metadata.jsonl").unlink()
        (folder / "metadata.csv").write_text("file_name,caption\n00000.png,x\n")
    elif problem == "traversal":
        (tmp_path / "outside.png").write_bytes((folder / "00000.png").read_bytes())
        _write_meta(folder, [{"file_name": "../outside.png", "text": "x"}])
    elif problem == "absolute":
        _write_meta(folder, [{"file_name": str((folder / "00000.png").resolve()), "text": "x"}])
    elif problem == "missing_file":
        _write_meta(folder, [{"file_name": "99999.png", "text": "x"}])
    elif problem == "non_image":
        (folder / "fake.png").write_text("this is not an image")
        _write_meta(folder, [{"file_name": "fake.png", "text": "x"}])
    elif problem == "bad_json":
        (folder / "metadata.jsonl").write_text('{"file_name": "00000.png", "text": \n')
    elif problem == "empty":
        (folder / "metadata.jsonl").write_text("\n")
    with pytest.raises(DatasetError):
        load_imagefolder(folder, resolution=16)


# ------------------------------------------------------------------------------------------ features
def test_offline_feature_extractor_is_deterministic_and_informative():
    extractor = load_feature_extractor()
    assert isinstance(extractor, OfflineImageFeatureExtractor) and extractor.name
    images = _images("shapes", 4, 0)
    uint8 = ((images + 1) * 127.5).round().to(torch.uint8)
    a = extractor(uint8)
    assert a.shape == (4, extractor.num_features)
    assert torch.equal(a, OfflineImageFeatureExtractor()(uint8))
    assert torch.allclose(a, extractor(uint8.float() / 255.0), atol=1e-5)
    assert not torch.allclose(a[0], a[1])  # different images, different features
    with pytest.raises(FileNotFoundError):
        load_feature_extractor("/nonexistent/inception.pth")


def test_fid_is_zero_for_identical_sets_and_large_across_domains():
    base = _images("shapes", 48, 0)
    same = image_quality(base, base)
    assert same["fid"] == pytest.approx(0.0, abs=1e-3)
    assert same["feature_extractor"] == "atelier-offline-v1"
    same_domain = image_quality(base, _images("shapes", 48, 1))["fid"]
    for other in ("digits", "blobs", "checkerboard"):
        cross = image_quality(base, _images(other, 48, 1))
        assert cross["fid"] > 2 * same_domain
        assert cross["kid_mean"] > 0
    small = image_quality(base[:3], _images("digits", 3, 0))  # KID subset size adapts to tiny sets
    assert small["fid"] > 0


def test_paired_quality():
    ref = _images("gradients", 4, 0)
    identical = paired_quality(ref, ref)
    assert identical["mse"] == 0 and identical["psnr"] == float("inf") and identical["ssim"] == pytest.approx(1.0, abs=1e-3)
    noisy = (ref + 0.1 * torch.randn(ref.shape, generator=torch.Generator().manual_seed(0))).clamp(-1, 1)
    worse = paired_quality(ref, noisy)
    assert worse["mse"] > 0 and 10 < worse["psnr"] < 60 and worse["ssim"] < identical["ssim"]
    with pytest.raises(ValueError):
        paired_quality(ref, ref[:2])
