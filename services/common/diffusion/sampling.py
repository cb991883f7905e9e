"""Reverse-diffusion sampling loop shared by every service (evaluation, quantization calibration, demos)."""
from __future__ import annotations

import hashlib
from typing import Callable

import torch
from diffusers import DDIMScheduler, DDPMScheduler, DPMSolverMultistepScheduler, EulerDiscreteScheduler

SAMPLERS = {
    "ddim": DDIMScheduler,
    "ddpm": DDPMScheduler,
    "dpm": DPMSolverMultistepScheduler,
    "euler": EulerDiscreteScheduler,
}


def make_sampling_scheduler(bundle, name: str = "ddim"):
    """A fresh sampler with the bundle's training noise schedule (so never shares state with the bundle)."""
    if name not in SAMPLERS:
        raise ValueError(f"unknown scheduler {name!r}; expected one of {sorted(SAMPLERS)}")
    return SAMPLERS[name].from_config(bundle.scheduler.config)


def initial_noise(bundle, seeds: list[int], *, device=None, dtype=torch.float32) -> torch.Tensor:
    """One independently seeded N(0, I) latent per seed, so a sample does not depend on its batch-mates."""
    shape = (bundle.in_channels, bundle.sample_size, bundle.sample_size)
    noise = [torch.randn(shape, generator=torch.Generator().manual_seed(int(s))) for s in seeds]
    return torch.stack(noise).to(device=device or bundle.device, dtype=dtype)


def _batch_size(noise, seeds, prompts, cond) -> int:
    sizes = {name: n for name, n in (("noise", None if noise is None else noise.shape[0]),
                                     ("seeds", None if seeds is None else len(seeds)),
                                     ("prompts", None if prompts is None else len(prompts)),
                                     ("cond", None if cond is None else cond.shape[0])) if n is not None}
    if not sizes:
        raise ValueError("sample() needs at least one of noise, seeds, prompts or cond to fix the batch size")
    if len(set(sizes.values())) != 1:
        raise ValueError(f"inconsistent batch sizes: {sizes}")
    return next(iter(sizes.values()))


@torch.no_grad()
def sample(bundle, *, noise: torch.Tensor | None = None, seeds: list[int] | None = None,
           prompts: list[str] | None = None, cond: torch.Tensor | None = None, num_inference_steps: int = 20,
           scheduler: str = "ddim", step_callback: Callable[[int, int, torch.Tensor], None] | None = None,
           guidance_scale: float = 1.0) -> torch.Tensor:
    """Generate images in [-1, 1], shape (B, C, H, W) (latent bundles are decoded by their VAE).

    Deterministic for fixed seeds (or fixed noise). `step_callback(step_index, timestep, x_t)` runs before
    each denoiser call. guidance_scale > 1 enables classifier-free guidance for conditional bundles.
    """
    if num_inference_steps < 1:
        raise ValueError("num_inference_steps must be >= 1")
    batch = _batch_size(noise, seeds, prompts, cond)
    if seeds is None:
        seeds = list(range(batch))
    device = bundle.device
    sampler = make_sampling_scheduler(bundle, scheduler)
    sampler.set_timesteps(num_inference_steps, device=device)

    if noise is None:
        noise = initial_noise(bundle, seeds, device=device)
    x = noise.to(device=device, dtype=torch.float32) * sampler.init_noise_sigma

    use_cfg = bundle.conditional and guidance_scale != 1.0
    if bundle.conditional:
        if cond is None:
            cond = bundle.encode_prompts(list(prompts) if prompts is not None else [""] * batch)
        if use_cfg:
            cond = torch.cat([bundle.encode_prompts([""] * batch).to(cond), cond])
    elif prompts is not None or cond is not None:
        raise ValueError(f"{bundle.kind} bundle is unconditional: prompts/cond are not accepted")

    # Stochastic samplers (DDPM, Euler with churn) draw from a generator tied to the seeds.
    digest = hashlib.sha256(",".join(map(str, seeds)).encode()).digest()
    step_generator = torch.Generator(device="cpu").manual_seed(int.from_bytes(digest[:8], "little") >> 1)
    step_kwargs = {"generator": step_generator} if scheduler in ("ddpm", "euler") else {}

    for i, t in enumerate(sampler.timesteps):
        if step_callback is not None:
            step_callback(i, int(t), x)
        model_in = sampler.scale_model_input(x, t)
        if use_cfg:
            uncond_eps, cond_eps = bundle.predict_noise(torch.cat([model_in, model_in]), t, cond).float().chunk(2)
            eps = uncond_eps + guidance_scale * (cond_eps - uncond_eps)
        else:
            eps = bundle.predict_noise(model_in, t, cond).float()
        x = sampler.step(eps, t, x, **step_kwargs).prev_sample
    return bundle.decode_images(x)
