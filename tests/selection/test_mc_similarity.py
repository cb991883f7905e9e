import json

import numpy as np
from PIL import Image

from services.selection.mc.profile import profile_imagefolder, unpack_profile
from services.selection.mc.similarity import frechet_distance, profile_distance


def test_frechet_identical_is_zero_and_grows_with_shift():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 5))
    mu, cov = x.mean(0), np.cov(x, rowvar=False)
    assert abs(frechet_distance(mu, cov, mu, cov)) < 1e-6
    d1 = frechet_distance(mu, cov, mu + 0.5, cov)
    d2 = frechet_distance(mu, cov, mu + 2.0, cov)
    assert 0 < d1 < d2
    assert abs(d2 - 5 * 2.0**2) < 1e-6  # mean term ||shift||^2, covariance term 0
    assert frechet_distance(mu, cov, mu, 4 * cov) > 0  # spread matters too
    assert abs(frechet_distance(mu, cov, mu + 1, 2 * cov) - frechet_distance(mu + 1, 2 * cov, mu, cov)) < 1e-6


def _folder(path, colour, n=12, seed=0):
    rng = np.random.default_rng(seed)
    path.mkdir()
    with open(path / "metadata.jsonl", "w") as f:
        for i in range(n):
            arr = np.clip(np.array(colour)[None, None, :] + rng.normal(0, 20, size=(16, 16, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(arr).save(path / f"{i}.png")
            f.write(json.dumps({"file_name": f"{i}.png", "text": f"a {'red' if colour[0] > 128 else 'blue'} square number {i}"}) + "\n")
    return path


def test_profiles_of_imagefolders(tmp_path):
    red = profile_imagefolder(_folder(tmp_path / "red", (220, 30, 30)), resolution=16)
    red2 = profile_imagefolder(_folder(tmp_path / "red2", (220, 30, 30)), resolution=16)  # same seed: same images
    pink = profile_imagefolder(_folder(tmp_path / "pink", (200, 40, 40), seed=1), resolution=16)
    blue = profile_imagefolder(_folder(tmp_path / "blue", (30, 30, 220), seed=2), resolution=16)
    assert red.num_items == 12 and red.caption_stats["mean_words"] > 3
    mu, cov = unpack_profile(red.embedding)
    assert cov.shape == (mu.size, mu.size)
    assert profile_distance(red.embedding, red2.embedding) < 1e-6
    assert 0 < profile_distance(red.embedding, pink.embedding) < profile_distance(red.embedding, blue.embedding)
