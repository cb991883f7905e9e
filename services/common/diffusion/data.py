"""Image-caption datasets: Hugging Face `imagefolder` loading with validation, and synthetic domains.

Synthetic domains are a family (a renderer) plus parameters (palettes, shape sets, ...), so new domains
for the model zoo are one `register_domain(...)` call. Every image is drawn from its own RNG stream
seeded by (seed, domain, index): output is byte-identical for the same arguments and image i does not
depend on n.
"""
from __future__ import annotations

import csv
import io
import json
import zlib
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Callable

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError


class DatasetError(ValueError):
    """An image folder that cannot be used as a dataset (the message says why)."""


IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")
METADATA_FILES = ("metadata.jsonl", "metadata.csv")


# --------------------------------------------------------------------------------------------- loading
class ImageCaptionDataset(torch.utils.data.Dataset):
    """Items: {"pixel_values": float (C, H, W) in [-1, 1], "text": str}. Images are read lazily."""

    def __init__(self, root: Path, records: list[tuple[Path, str]], *, resolution: int, channels: int = 3):
        self.root = Path(root)
        self.records = list(records)
        self.resolution = int(resolution)
        self.channels = int(channels)

    def __len__(self) -> int:
        return len(self.records)

    @property
    def texts(self) -> list[str]:
        return [text for _, text in self.records]

    def load_image(self, path: Path) -> torch.Tensor:
        with Image.open(path) as img:
            img = img.convert("RGB" if self.channels == 3 else "L")
            side = min(img.size)
            left, top = (img.width - side) // 2, (img.height - side) // 2
            img = img.crop((left, top, left + side, top + side))  # centre crop keeps aspect ratio
            if side != self.resolution:
                img = img.resize((self.resolution, self.resolution), Image.Resampling.BICUBIC)
            array = np.asarray(img, dtype=np.uint8)
        if array.ndim == 2:
            array = array[:, :, None]
        return torch.from_numpy(array.copy()).permute(2, 0, 1).float() / 127.5 - 1.0

    def __getitem__(self, index: int) -> dict:
        path, text = self.records[index]
        return {"pixel_values": self.load_image(path), "text": text}

    def images(self, limit: int | None = None) -> torch.Tensor:
        """All (or the first `limit`) images stacked: (N, C, H, W) in [-1, 1]."""
        records = self.records if limit is None else self.records[:limit]
        return torch.stack([self.load_image(p) for p, _ in records]) if records else torch.empty(
            0, self.channels, self.resolution, self.resolution)


def _read_metadata(folder: Path) -> tuple[str, list[dict]]:
    for name in METADATA_FILES:
        meta = folder / name
        if not meta.is_file():
            continue
        try:
            text = meta.read_text(encoding="utf-8-sig")  # a spreadsheet's byte-order mark is not a column
        except (OSError, UnicodeDecodeError) as exc:
            raise DatasetError(f"{name} is not readable UTF-8 text: {exc}") from exc
        if name.endswith(".jsonl"):
            rows = []
            for lineno, line in enumerate(text.splitlines(), 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except ValueError as exc:
                    raise DatasetError(f"{name} line {lineno} is not valid JSON: {exc}") from exc
                if not isinstance(row, dict):
                    raise DatasetError(f"{name} line {lineno} is not a JSON object")
                rows.append(row)
            return name, rows
        try:
            reader = csv.DictReader(io.StringIO(text))
            rows = list(reader)
        except csv.Error as exc:
            raise DatasetError(f"{name} is not valid CSV: {exc}") from exc
        for column in ("file_name", "text"):
            if reader.fieldnames is None or column not in reader.fieldnames:
                raise DatasetError(f"{name} has no '{column}' column (columns: {reader.fieldnames})")
        return name, rows
    raise DatasetError(f"no metadata file: expected one of {', '.join(METADATA_FILES)} next to the images")


def _safe_member(folder: Path, file_name: str, where: str) -> Path:
    if not file_name or "\x00" in file_name:
        raise DatasetError(f"{where}: empty or invalid file_name")
    for pure in (PurePosixPath(file_name), PureWindowsPath(file_name)):
        if pure.is_absolute() or pure.anchor or ".." in pure.parts:
            raise DatasetError(f"{where}: file_name {file_name!r} must be a relative path inside the dataset folder")
    path = (folder / file_name).resolve()
    if not path.is_relative_to(folder.resolve()):  # e.g. a symlink pointing outside
        raise DatasetError(f"{where}: file_name {file_name!r} resolves outside the dataset folder")
    return path


def load_imagefolder(path, *, resolution: int, channels: int = 3) -> ImageCaptionDataset:
    """Load an HF imagefolder (images + metadata.jsonl/metadata.csv with `file_name` and `text`).

    Validates everything up front and raises DatasetError naming the first problem found.
    """
    if not isinstance(resolution, int) or resolution < 1:
        raise DatasetError(f"resolution must be a positive int, got {resolution!r}")
    if channels not in (1, 3):
        raise DatasetError(f"channels must be 1 or 3, got {channels!r}")
    folder = Path(path)
    if not folder.is_dir():
        raise DatasetError(f"dataset folder {str(path)!r} does not exist or is not a directory")
    if not any(p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS for p in folder.rglob("*")):
        raise DatasetError(f"dataset folder {str(path)!r} contains no images ({', '.join(IMAGE_EXTENSIONS)})")
    meta_name, rows = _read_metadata(folder)
    if not rows:
        raise DatasetError(f"{meta_name} has no rows")
    records: list[tuple[Path, str]] = []
    for index, row in enumerate(rows, 1):
        where = f"{meta_name} row {index}"
        for column in ("file_name", "text"):
            if column not in row:
                raise DatasetError(f"{where} has no '{column}' field")
        file_name, text = row["file_name"], row["text"]
        if not isinstance(file_name, str):
            raise DatasetError(f"{where}: file_name must be a string")
        if not isinstance(text, str):
            raise DatasetError(f"{where}: text must be a string, got {type(text).__name__}")
        image_path = _safe_member(folder, file_name, where)
        if not image_path.is_file():
            raise DatasetError(f"{where}: image {file_name!r} does not exist")
        try:
            with Image.open(image_path) as img:
                img.verify()
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
            raise DatasetError(f"{where}: {file_name!r} is not a readable image ({exc})") from exc
        records.append((image_path, text))
    return ImageCaptionDataset(folder, records, resolution=resolution, channels=channels)


# ------------------------------------------------------------------------------------ synthetic domains
COLORS: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40), "green": (40, 170, 60), "blue": (40, 80, 220), "yellow": (240, 210, 40),
    "orange": (245, 140, 30), "purple": (140, 60, 190), "pink": (240, 130, 180), "brown": (130, 80, 40),
    "black": (15, 15, 15), "white": (240, 240, 240), "gray": (128, 128, 128), "cyan": (40, 200, 210),
    "teal": (20, 120, 120), "navy": (20, 30, 100), "olive": (120, 130, 30), "lime": (160, 230, 60),
}
BRIGHT = ("red", "green", "blue", "yellow", "orange", "purple", "pink", "cyan")
WARM = ("red", "orange", "yellow", "pink", "brown")
COOL = ("blue", "cyan", "teal", "navy", "purple", "green")
NEUTRAL = ("black", "white", "gray")
_SUPERSAMPLE = 4  # render at 4x then box-filter: anti-aliased, still pure numpy (deterministic)


def _rgb(name: str) -> np.ndarray:
    return np.asarray(COLORS[name], dtype=np.float64)


def _two_colors(rng: np.random.Generator, first: tuple[str, ...], second: tuple[str, ...]) -> tuple[str, str]:
    a = str(rng.choice(first))
    b = str(rng.choice([c for c in second if c != a]))
    return a, b


def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    coords = (np.arange(size) + 0.5) / size
    return np.meshgrid(coords, coords, indexing="xy")  # x, y in (0, 1)


def _compose(mask: np.ndarray, fg: np.ndarray, bg: np.ndarray) -> np.ndarray:
    return mask[..., None] * fg + (1.0 - mask[..., None]) * bg


def _render_shapes(rng, size, *, colors, backgrounds, shapes=("circle", "square", "triangle")):
    fg_name, bg_name = _two_colors(rng, colors, backgrounds)
    shape = str(rng.choice(shapes))
    big = bool(rng.random() < 0.5)
    r = rng.uniform(0.28, 0.38) if big else rng.uniform(0.13, 0.2)
    cx, cy = rng.uniform(r, 1 - r, size=2)
    x, y = _grid(size)
    if shape == "circle":
        mask = (x - cx) ** 2 + (y - cy) ** 2 <= r ** 2
    elif shape == "square":
        mask = (np.abs(x - cx) <= r * 0.85) & (np.abs(y - cy) <= r * 0.85)
    else:  # upright triangle
        top, bottom = cy - r, cy + r
        half_width = (y - top) / (2 * r) * r
        mask = (y >= top) & (y <= bottom) & (np.abs(x - cx) <= half_width)
    img = _compose(mask.astype(np.float64), _rgb(fg_name), _rgb(bg_name))
    return img, f"a {'large' if big else 'small'} {fg_name} {shape} on a {bg_name} background"


def _render_stripes(rng, size, *, colors, orientations=("horizontal", "vertical", "diagonal")):
    a, b = _two_colors(rng, colors, colors)
    orientation = str(rng.choice(orientations))
    count = int(rng.integers(2, 6))
    phase = rng.random()
    x, y = _grid(size)
    coord = {"horizontal": y, "vertical": x, "diagonal": (x + y) / 2}[orientation]
    mask = (np.floor(coord * count * 2 + phase * 2) % 2 == 0).astype(np.float64)
    return _compose(mask, _rgb(a), _rgb(b)), f"{count} {orientation} {a} and {b} stripes"


def _render_checkerboard(rng, size, *, colors, cells=(2, 3, 4, 6)):
    a, b = _two_colors(rng, colors, colors)
    n = int(rng.choice(cells))
    x, y = _grid(size)
    mask = ((np.floor(x * n) + np.floor(y * n)) % 2 == 0).astype(np.float64)
    return _compose(mask, _rgb(a), _rgb(b)), f"a {a} and {b} checkerboard with {n} squares per side"


def _render_gradient(rng, size, *, colors, directions=("left to right", "top to bottom", "diagonal", "radial")):
    a, b = _two_colors(rng, colors, colors)
    direction = str(rng.choice(directions))
    x, y = _grid(size)
    if direction == "left to right":
        t = x
    elif direction == "top to bottom":
        t = y
    elif direction == "diagonal":
        t = (x + y) / 2
    else:
        t = np.clip(np.hypot(x - 0.5, y - 0.5) / 0.7071, 0, 1)
    return _compose(1.0 - t, _rgb(a), _rgb(b)), f"a smooth gradient from {a} to {b}, {direction}"


def _render_blobs(rng, size, *, colors, backgrounds=("black",), max_blobs=4):
    bg_name = str(rng.choice(backgrounds))
    color = str(rng.choice([c for c in colors if c != bg_name]))
    k = int(rng.integers(1, max_blobs + 1))
    x, y = _grid(size)
    density = np.zeros_like(x)
    for _ in range(k):
        cx, cy = rng.uniform(0.2, 0.8, size=2)
        sigma = rng.uniform(0.07, 0.16)
        density = np.maximum(density, np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * sigma ** 2)))
    noun = "blob" if k == 1 else "blobs"
    return _compose(density, _rgb(color), _rgb(bg_name)), f"{k} soft {color} {noun} on a {bg_name} background"


@lru_cache(maxsize=1)
def _digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits  # shipped inside scikit-learn: no download

    data = load_digits()
    return data.images / 16.0, data.target


def _render_digits(rng, size, *, colors, backgrounds):
    images, targets = _digits()
    index = int(rng.integers(len(images)))
    fg_name, bg_name = _two_colors(rng, colors, backgrounds)
    glyph = Image.fromarray(np.uint8(np.round(images[index] * 255)))
    # 8x8 glyph centred with a 1-px margin, smoothly upscaled
    glyph = glyph.resize((size - 2 * _SUPERSAMPLE, size - 2 * _SUPERSAMPLE), Image.Resampling.BILINEAR)
    mask = np.zeros((size, size))
    mask[_SUPERSAMPLE:-_SUPERSAMPLE, _SUPERSAMPLE:-_SUPERSAMPLE] = np.asarray(glyph, dtype=np.float64) / 255.0
    return (_compose(mask, _rgb(fg_name), _rgb(bg_name)),
            f"a handwritten digit {int(targets[index])} in {fg_name} on a {bg_name} background")


def _render_noise(rng, size, *, colors, scales=("fine", "coarse")):
    a, b = _two_colors(rng, colors, colors)
    scale = str(rng.choice(scales))
    cells = {"fine": 8, "coarse": 3}[scale]
    lattice = rng.random((cells + 1, cells + 1))
    field = Image.fromarray(np.uint8(np.round(lattice * 255))).resize((size, size), Image.Resampling.BICUBIC)
    t = np.asarray(field, dtype=np.float64) / 255.0
    return _compose(t, _rgb(a), _rgb(b)), f"a {scale} cloudy noise texture in {a} and {b}"


def _render_rings(rng, size, *, colors, backgrounds):
    fg_name, bg_name = _two_colors(rng, colors, backgrounds)
    count = int(rng.integers(2, 6))
    cx, cy = rng.uniform(0.4, 0.6, size=2)
    x, y = _grid(size)
    radius = np.hypot(x - cx, y - cy)
    band = 0.5 / count
    mask = ((np.floor(radius / band * 2) % 2 == 0) & (radius <= 0.5)).astype(np.float64)
    return _compose(mask, _rgb(fg_name), _rgb(bg_name)), f"{count} concentric {fg_name} rings on a {bg_name} background"


FAMILIES: dict[str, Callable] = {
    "shapes": _render_shapes, "stripes": _render_stripes, "checkerboard": _render_checkerboard,
    "gradient": _render_gradient, "blobs": _render_blobs, "digits": _render_digits,
    "noise": _render_noise, "rings": _render_rings,
}


@dataclass(frozen=True)
class SyntheticDomain:
    name: str
    family: str
    description: str
    params: dict = field(default_factory=dict, hash=False, compare=False)

    def render(self, rng: np.random.Generator, resolution: int) -> tuple[np.ndarray, str]:
        """(uint8 HxWx3 image, caption) for one draw of this domain."""
        big = resolution * _SUPERSAMPLE
        img, caption = FAMILIES[self.family](rng, big, **self.params)
        img = img.reshape(resolution, _SUPERSAMPLE, resolution, _SUPERSAMPLE, 3).mean(axis=(1, 3))
        return np.clip(np.round(img), 0, 255).astype(np.uint8), caption


SYNTHETIC_DOMAINS: dict[str, SyntheticDomain] = {}


def register_domain(name: str, family: str, description: str, **params) -> SyntheticDomain:
    """Add a domain (a family plus renderer parameters, e.g. a palette) under a new name."""
    if family not in FAMILIES:
        raise ValueError(f"unknown family {family!r}; expected one of {sorted(FAMILIES)}")
    if name in SYNTHETIC_DOMAINS:
        raise ValueError(f"synthetic domain {name!r} already exists")
    domain = SyntheticDomain(name, family, description, dict(params))
    SYNTHETIC_DOMAINS[name] = domain
    return domain


register_domain("shapes", "shapes", "one coloured circle, square or triangle on a plain background",
                colors=BRIGHT, backgrounds=BRIGHT + NEUTRAL)
register_domain("stripes", "stripes", "two-colour horizontal, vertical or diagonal stripes", colors=BRIGHT + NEUTRAL)
register_domain("checkerboard", "checkerboard", "two-colour checkerboards of 2-6 squares per side",
                colors=BRIGHT + NEUTRAL)
register_domain("gradients", "gradient", "smooth linear or radial two-colour gradients", colors=tuple(COLORS))
register_domain("blobs", "blobs", "soft gaussian colour blobs on black", colors=BRIGHT, backgrounds=("black",))
register_domain("digits", "digits", "sklearn handwritten digits (8x8, upscaled), coloured",
                colors=BRIGHT + ("white",), backgrounds=("black", "navy", "gray"))
register_domain("noise", "noise", "smooth value-noise textures in two colours", colors=tuple(COLORS))
register_domain("rings", "rings", "concentric rings on a plain background", colors=BRIGHT, backgrounds=NEUTRAL + ("navy",))
register_domain("shapes-warm", "shapes", "warm-coloured shapes on white or black", colors=WARM,
                backgrounds=("white", "black"))
register_domain("stripes-cool", "stripes", "cool-coloured vertical and horizontal stripes", colors=COOL,
                orientations=("horizontal", "vertical"))
register_domain("digits-ink", "digits", "dark handwritten digits on white paper", colors=("black", "navy", "blue"),
                backgrounds=("white",))
register_domain("blobs-pastel", "blobs", "single soft pastel blobs on white", colors=("pink", "yellow", "cyan", "lime"),
                backgrounds=("white",), max_blobs=2)


def _domain_rng(seed: int, domain: str, index: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([int(seed), zlib.crc32(domain.encode()), int(index)]))


def render_synthetic(domain: str | SyntheticDomain, *, n: int, seed: int, resolution: int = 16) -> tuple[np.ndarray, list[str]]:
    """In-memory version: (uint8 (n, H, W, 3), captions)."""
    spec = SYNTHETIC_DOMAINS.get(domain) if isinstance(domain, str) else domain
    if spec is None:
        raise ValueError(f"unknown synthetic domain {domain!r}; available: {sorted(SYNTHETIC_DOMAINS)}")
    if n < 1 or resolution < 4:
        raise ValueError("n must be >= 1 and resolution >= 4")
    images, captions = [], []
    for i in range(n):
        img, caption = spec.render(_domain_rng(seed, spec.name, i), resolution)
        images.append(img)
        captions.append(caption)
    return np.stack(images), captions


def generate_synthetic_dataset(out_dir, *, domain: str | SyntheticDomain, n: int, seed: int, resolution: int = 16,
                               overwrite: bool = False) -> Path:
    """Write `n` PNGs + metadata.jsonl (HF imagefolder layout); byte-identical for identical arguments."""
    out = Path(out_dir)
    if out.exists() and any(out.iterdir()):
        if not overwrite:
            raise FileExistsError(f"{out} is not empty (pass overwrite=True to replace a generated dataset)")
        for stale in list(out.glob("*.png")) + [out / m for m in METADATA_FILES]:
            stale.unlink(missing_ok=True)
    images, captions = render_synthetic(domain, n=n, seed=seed, resolution=resolution)
    out.mkdir(parents=True, exist_ok=True)
    lines = []
    for i, (img, caption) in enumerate(zip(images, captions)):
        file_name = f"{i:05d}.png"
        # PIL writes no timestamps into PNGs, so the bytes depend on the pixels only.
        Image.fromarray(img).save(out / file_name, format="PNG", compress_level=6)
        lines.append(json.dumps({"file_name": file_name, "text": caption}, sort_keys=True))
    (out / "metadata.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return out
