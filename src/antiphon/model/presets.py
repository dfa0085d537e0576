"""Network sizes and the constants every antiphon and IMPSY model shares."""

from __future__ import annotations

from dataclasses import dataclass

from antiphon.errors import AntiphonError
from antiphon.limits import SIZES

SCALE_FACTOR = 10.0
"""Events are multiplied by this before the network sees them (IMPSY convention)."""

MIXTURES = 5
SIGMA_EPSILON = 1e-7
"""Sigmas are elu(x) + 1 + SIGMA_EPSILON, so they never reach zero."""

HEADS = ("mus", "sigmas", "pis")
"""The mixture density head's three dense layers, in the order their outputs make an
MDN vector (and their weights are stored)."""

MIN_DT = 0.000454
"""The shortest time between generated events, in seconds (IMPSY's floor)."""


@dataclass(frozen=True)
class MDNLayout:
    """Where each part lies in an MDN vector ``[mus | sigmas | logits]`` of M mixtures
    of D dimensions. Mus and sigmas are component-major: component m owns
    ``mus[m*D:(m+1)*D]`` and ``sigmas[m*D:(m+1)*D]``."""

    dimension: int
    mixtures: int

    @property
    def mus(self) -> slice:
        return slice(0, self.mixtures * self.dimension)

    @property
    def sigmas(self) -> slice:
        return slice(self.mixtures * self.dimension, 2 * self.mixtures * self.dimension)

    @property
    def logits(self) -> slice:
        return slice(2 * self.mixtures * self.dimension, self.width)

    @property
    def width(self) -> int:
        return self.mixtures * (2 * self.dimension + 1)

    @staticmethod
    def mixtures_in(width: int, dimension: int) -> int | None:
        """How many mixtures an MDN vector ``width`` values wide holds (None: no whole
        number of them fits)."""
        per_mixture = 2 * dimension + 1  # a mu and a sigma per dimension, one logit
        return width // per_mixture if width % per_mixture == 0 else None

    @property
    def widths(self) -> dict[str, int]:
        """Each head's output width, in ``HEADS`` order."""
        md = self.mixtures * self.dimension
        return dict(zip(HEADS, (md, md, self.mixtures), strict=True))


@dataclass(frozen=True)
class Architecture:
    """The shape of an MDRNN: everything needed to allocate its weights."""

    dimension: int
    units: int
    layers: int
    mixtures: int = MIXTURES

    def __post_init__(self) -> None:
        if self.dimension < 2:
            raise AntiphonError(
                f"dimension {self.dimension} is too small: a model needs dt plus at least "
                "one control (dimension >= 2)"
            )
        if self.units < 1 or self.layers < 1 or self.mixtures < 1:
            raise AntiphonError(f"invalid architecture {self}")

    @classmethod
    def from_size(cls, dimension: int, size: str) -> Architecture:
        if size not in SIZES:
            raise AntiphonError(f"unknown model size {size!r}; use one of {', '.join(SIZES)}")
        units, layers = SIZES[size]
        return cls(dimension=dimension, units=units, layers=layers)

    @property
    def size(self) -> str | None:
        """The preset this matches, or None for a custom shape."""
        for name, shape in SIZES.items():
            if shape == (self.units, self.layers) and self.mixtures == MIXTURES:
                return name
        return None

    @property
    def mdn(self) -> MDNLayout:
        """The layout of the vectors its mixture density head outputs."""
        return MDNLayout(self.dimension, self.mixtures)

    @property
    def mdn_width(self) -> int:
        """Length of the MDN vector: mus and sigmas for every component, then logits."""
        return self.mdn.width

    @property
    def parameter_count(self) -> int:
        d, u = self.dimension, self.units
        lstm = sum(4 * u * ((d if layer == 0 else u) + u + 1) for layer in range(self.layers))
        head = (u + 1) * self.mdn_width
        return lstm + head

    @property
    def impsy_stem(self) -> str:
        """IMPSY's file name stem for a model of this shape."""
        return (
            f"musicMDRNN-dim{self.dimension}-layers{self.layers}-units{self.units}"
            f"-mixtures{self.mixtures}-scale{int(SCALE_FACTOR)}"
        )

    def describe(self) -> str:
        size = f"size {self.size}" if self.size else "custom size"
        return (
            f"{size}: dimension {self.dimension}, {self.layers} LSTM layers x "
            f"{self.units} units, {self.mixtures} mixtures"
        )
