"""Training configuration: everything that changes a run's result, stored with the run.

No TensorFlow here: the studio builds a config in its UI thread."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class Augmentation:
    rotation_deg: float = 25.0
    scale: float = 0.2  # zoom in 1 ± scale
    shift: float = 0.08  # fraction of the input size
    flip: bool = True  # only used when the skeleton has left/right pairs
    brightness: float = 30.0
    contrast: float = 0.3
    noise: float = 6.0  # max std of gaussian pixel noise


# Top-down training without augmentation: crops centred on each object, nothing else changed.
NO_AUGMENTATION = Augmentation(rotation_deg=0.0, scale=0.0, shift=0.0, flip=False,
                               brightness=0.0, contrast=0.0, noise=0.0)  # fmt: skip

DEFAULT_INPUT_SIZE = {"default": 320, "seed": 64}
DEFAULT_LEARNING_RATE = {"default": 2e-3, "seed": 1e-3}
DEFAULT_BATCH_SIZE = {"default": 16, "seed": 32}
DEFAULT_EPOCHS = 300
UNBOUNDED_EPOCHS = 1_000_000  # a time budget alone ends the run


@dataclass
class TrainConfig:
    arch: str = "default"
    input_size: int | None = None  # None: the architecture's default
    epochs: int | None = None  # None: 300, or as many as fit in max_minutes when it is set
    max_minutes: float | None = None
    batch_size: int | None = None
    learning_rate: float | None = None
    seed: int = 0
    augment: bool = True
    # Epochs without a better val error before stopping early, once half the schedule is done.
    patience: int = 150
    strategy: str = "default"  # default | mirrored | multiworker
    params: dict = field(default_factory=dict)  # architecture parameters (width, ...)
    # Train the default model on crop×crop windows around the animal (None: chosen from the
    # labels' extent; 0: whole images). Prediction always sees the whole letterboxed image.
    crop_size: int | None = None
    augmentation: Augmentation = field(default_factory=Augmentation)
    preview_image: str | None = None  # image file whose prediction is reported every epoch
    # XLA measured 40 % slower than plain TF (oneDNN) for the default model on this CPU.
    jit_compile: bool = False
    # The plan from the data (kpstudio.core.plan, as a dict) the run's settings came from, and
    # the settings the user set instead of the plan's (name → value): see kpstudio.ml.planning.
    plan: dict | None = None
    overrides: dict = field(default_factory=dict)
    # Top-down (a finder, then the pose model on a crop around each object found): None
    # follows the plan, True / False is the user's choice.
    top_down: bool | None = None
    # A .kpmodel whose weights start this run (a model of the same architecture, parameters
    # and keypoints): training continues from what it knows, with a fresh optimizer.
    warm_start: str | None = None

    def resolved(self) -> TrainConfig:
        """A copy with the architecture defaults filled in (what is stored with the run)."""
        out = TrainConfig(**{**asdict(self), "augmentation": self.augmentation})
        out.input_size = self.input_size or DEFAULT_INPUT_SIZE[self.arch]
        if out.epochs is None:
            out.epochs = UNBOUNDED_EPOCHS if self.max_minutes else DEFAULT_EPOCHS
        out.batch_size = self.batch_size or DEFAULT_BATCH_SIZE[self.arch]
        out.learning_rate = self.learning_rate or DEFAULT_LEARNING_RATE[self.arch]
        return out

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> TrainConfig:
        data = dict(data)
        data["augmentation"] = Augmentation(**data.get("augmentation", {}))
        return cls(**data)
