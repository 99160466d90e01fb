"""Training-time augmentation for catalens-mini: icons and clip art → product-shot-like pictures.

Each picture (RGBA, premultiplied) is scaled, rotated, shifted and squeezed, optionally mirrored (only where
the class allows: a flipped arrow or flag is another thing), optionally drawn with outlines (line-art styles),
colour-jittered on the object only, optionally given a soft contact shadow, and composited onto a background:
white, light, solid, gradient, noise texture, or (optionally) a photo-like scene (a floor and a wall in two
tones with a soft horizon and vignetting), then sometimes blurred. All in torch on whole batches; a seeded
generator makes every run reproducible, and with the options off the draws are the shipped recipe's.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

#: Background kinds and their shares: white, light, solid, gradient, texture (the shipped recipe's); photo-like
#: scenes, when asked for, take their share from these in proportion.
BACKGROUND_SHARES = (0.4, 0.2, 0.15, 0.15, 0.1)
#: The object's size as a share of the frame's side, drawn uniformly (the shipped recipe's range).
SCALE_RANGE = (0.5, 1.05)


def augment(
    batch: torch.Tensor,
    size: int,
    gen: torch.Generator,
    mirror: torch.Tensor | None = None,
    shadow: float = 0.0,
    scenes: float = 0.0,
    scale_range: tuple[float, float] = SCALE_RANGE,
) -> torch.Tensor:
    """Icons (B, 4, S, S) uint8 RGBA → augmented RGB product-like shots (B, 3, size, size) in [0, 1].

    Args:
        mirror: per picture, whether it may be flipped left to right (then flipped with probability 0.5);
            ``None``: never.
        shadow: the share of pictures given a soft contact shadow on their background.
        scenes: the share of photo-like scene backgrounds.
        scale_range: the range of the object's size as a share of the frame's side (uniform).

    With ``mirror=None`` and both shares 0 it draws exactly the random numbers the shipped recipe drew.
    """
    b = batch.shape[0]
    x = batch.float() / 255.0
    rgb, alpha = x[:, :3] * x[:, 3:], x[:, 3:]
    x = torch.cat([rgb, alpha], 1)  # premultiplied, so resampling does not bleed black edges
    if mirror is not None:
        flip = mirror & (torch.rand(b, generator=gen) < 0.5)
        x[flip] = x[flip].flip(-1)

    def u(lo: float, hi: float) -> torch.Tensor:
        return lo + (hi - lo) * torch.rand(b, generator=gen)

    scale = u(*scale_range)
    angle = torch.where(torch.rand(b, generator=gen) < 0.5, u(-0.3, 0.3), torch.zeros(b))
    aspect = torch.exp(u(-0.12, 0.12))
    room = (1.0 - scale).clamp(min=0.0)
    tx, ty = u(-1, 1) * room, u(-1, 1) * room
    cos, sin = torch.cos(angle), torch.sin(angle)
    theta = torch.stack(
        [
            torch.stack([cos / (scale * aspect), -sin / scale, -tx / scale], 1),
            torch.stack([sin / scale, cos * aspect / scale, -ty / scale], 1),
        ],
        1,
    )
    grid = F.affine_grid(theta, [b, 4, size, size], align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    rgb, alpha = x[:, :3], x[:, 3:]

    # Outline styles (OpenMoji-like line art is never seen; other outlined styles are): draw dark contours.
    outline = torch.rand(b, generator=gen) < 0.3
    if outline.any():
        width = 3 if torch.rand(1, generator=gen).item() < 0.5 else 5
        dilated = F.max_pool2d(alpha[outline], width, stride=1, padding=width // 2)
        ring = (dilated - alpha[outline]).clamp(0, 1)
        gray = rgb[outline].mean(1, keepdim=True)
        edges = (gray[..., :, 1:] - gray[..., :, :-1]).abs()
        edges = F.pad(edges, (0, 1)) + F.pad((gray[..., 1:, :] - gray[..., :-1, :]).abs(), (0, 0, 0, 1))
        lines = ((edges > 0.12).float() * alpha[outline] + ring).clamp(0, 1)
        ink = 0.1 * torch.rand(int(outline.sum()), 1, 1, 1, generator=gen)
        rgb[outline] = rgb[outline] * (1 - lines) + ink * lines
        alpha[outline] = torch.maximum(alpha[outline], dilated)

    # Colour jitter on the object only (hue is kept: colour words must stay true).
    bright = u(0.8, 1.2).view(b, 1, 1, 1)
    contrast = u(0.8, 1.2).view(b, 1, 1, 1)
    sat = u(0.6, 1.3).view(b, 1, 1, 1)
    gray = rgb.mean(1, keepdim=True)
    rgb = gray + (rgb - gray) * sat
    mean = rgb.mean((1, 2, 3), keepdim=True)
    rgb = ((rgb - mean) * contrast + mean) * bright
    rgb = torch.minimum(rgb.clamp(min=0), alpha)

    background = _backgrounds(b, size, gen, scenes)
    if shadow > 0:
        background = _shadowed(background, alpha, torch.rand(b, generator=gen) < shadow, gen)
    out = rgb + (1 - alpha) * background
    blur = torch.rand(b, generator=gen) < 0.15
    if blur.any():
        out[blur] = F.avg_pool2d(out[blur], 3, stride=1, padding=1, count_include_pad=False)
    return out.clamp(0, 1)


def _backgrounds(b: int, size: int, gen: torch.Generator, scenes: float = 0.0) -> torch.Tensor:
    """White, light, random solid, gradient, noisy texture or photo-like scene backgrounds, like product shots."""
    shares = [share * (1 - scenes) for share in BACKGROUND_SHARES] + ([scenes] if scenes > 0 else [])
    kind = torch.multinomial(torch.tensor(shares), b, replacement=True, generator=gen)
    solid = torch.rand(b, 3, 1, 1, generator=gen)
    light = 0.85 + 0.15 * torch.rand(b, 3, 1, 1, generator=gen)
    bg = torch.ones(b, 3, size, size)
    bg = torch.where((kind == 1).view(b, 1, 1, 1), light.expand(b, 3, size, size), bg)
    bg = torch.where((kind == 2).view(b, 1, 1, 1), solid.expand(b, 3, size, size), bg)
    ramp = torch.linspace(0, 1, size).view(1, 1, size, 1)
    other = torch.rand(b, 3, 1, 1, generator=gen)
    gradient = solid + (other - solid) * ramp
    if torch.rand(1, generator=gen).item() < 0.5:
        gradient = gradient.transpose(2, 3)
    bg = torch.where((kind == 3).view(b, 1, 1, 1), gradient.expand(b, 3, size, size), bg)
    noise = F.interpolate(torch.rand(b, 3, size // 8, size // 8, generator=gen), size=size, mode="bilinear")
    texture = (solid * 0.6 + noise * 0.4).clamp(0, 1)
    bg = torch.where((kind == 4).view(b, 1, 1, 1), texture, bg)
    if scenes <= 0:
        return bg
    return torch.where((kind == 5).view(b, 1, 1, 1), _scenes(b, size, gen), bg)


def _scenes(b: int, size: int, gen: torch.Generator) -> torch.Tensor:
    """A table or floor below a wall, in two related tones with a soft horizon, fine grain and a vignette."""
    wall = 0.45 + 0.5 * torch.rand(b, 3, 1, 1, generator=gen)
    floor = (wall * (0.55 + 0.35 * torch.rand(b, 1, 1, 1, generator=gen))).clamp(0, 1)
    horizon = 0.45 + 0.3 * torch.rand(b, 1, 1, 1, generator=gen)
    softness = 0.02 + 0.08 * torch.rand(b, 1, 1, 1, generator=gen)
    rows = torch.linspace(0, 1, size).view(1, 1, size, 1)
    below = torch.sigmoid((rows - horizon) / softness)
    scene = wall * (1 - below) + floor * below
    grain = F.interpolate(torch.rand(b, 1, size // 4, size // 4, generator=gen), size=size, mode="bilinear")
    scene = scene * (0.92 + 0.16 * grain)
    cols = torch.linspace(-1, 1, size).view(1, 1, 1, size)
    centred = torch.linspace(-1, 1, size).view(1, 1, size, 1)
    vignette = 1 - 0.25 * torch.rand(b, 1, 1, 1, generator=gen) * (cols**2 + centred**2) / 2
    return (scene * vignette).clamp(0, 1)


def _shadowed(background: torch.Tensor, alpha: torch.Tensor, which: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Darken the background under and beside the object: its blurred, offset silhouette (a contact shadow)."""
    if not which.any():
        return background
    size = alpha.shape[-1]
    shade = F.avg_pool2d(alpha[which], 9, stride=1, padding=4, count_include_pad=False)
    shift = max(1, size // 24)
    shade = F.pad(shade, (0, 0, shift, 0))[..., :size, :]
    strength = 0.25 + 0.35 * torch.rand(int(which.sum()), 1, 1, 1, generator=gen)
    out = background.clone()
    out[which] = background[which] * (1 - strength * shade)
    return out
