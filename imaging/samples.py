"""Real photos that ship inside installed packages, for tests, demos and warm-up.

No downloads: scikit-image, matplotlib and scikit-learn wheels carry a few photographs.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

# name -> (package, path inside the package)
SAMPLES: dict[str, tuple[str, str]] = {
    "coffee": ("skimage", "data/coffee.png"),  # a cup of espresso (PNG, RGB)
    "chelsea": ("skimage", "data/chelsea.png"),  # Chelsea the cat (PNG, RGB)
    "rocket": ("skimage", "data/rocket.jpg"),  # a rocket on the launch pad (JPEG)
    "motorcycle": ("skimage", "data/motorcycle_left.png"),  # a motorbike (PNG)
    "astronaut": ("skimage", "data/astronaut.png"),  # Eileen Collins (PNG)
    "camera": ("skimage", "data/camera.png"),  # the cameraman (PNG, grayscale)
    "grace_hopper": ("matplotlib", "mpl-data/sample_data/grace_hopper.jpg"),  # portrait (JPEG)
    "china": ("sklearn", "datasets/images/china.jpg"),  # a Chinese temple (JPEG)
}


def sample_path(name: str) -> Path:
    """Path of a sample photo by name (see :data:`SAMPLES`)."""
    try:
        package, inside = SAMPLES[name]
    except KeyError:
        raise KeyError(f"unknown sample {name!r}; choose from {sorted(SAMPLES)}") from None
    path = Path(str(resources.files(package).joinpath(inside)))
    if not path.is_file():
        raise FileNotFoundError(f"sample {name!r} not found at {path} (is {package} installed?)")
    return path


def sample_bytes(name: str) -> bytes:
    return sample_path(name).read_bytes()


def all_samples() -> dict[str, Path]:
    return {name: sample_path(name) for name in SAMPLES}
