"""Training settings from the data's plan, with the user's overrides (no TensorFlow here).

The plan (kpstudio.core.plan) fills every setting the user left unset; a setting the user set
wins and is recorded in TrainConfig.overrides beside the plan, so a run's config says both what
the data called for and what was trained.
"""

from __future__ import annotations

import dataclasses

from kpstudio.core.fingerprint import Fingerprint
from kpstudio.core.plan import make_plan
from kpstudio.ml.config import Augmentation, TrainConfig

# Settings the plan makes and `--set` accepts, beyond the augmentation fields.
PLANNED = ("input_size", "crop_size", "stride", "context", "batch_size", "epochs", "top_down")
# prior: how many times the labels' spread the keypoint relations' prior is (0: none); it
# fixes what the run would choose on its val images (kpstudio.ml.peak_reading).
OTHER = ("learning_rate", "patience", "seed", "hints", "peak", "prior")
AUGMENTATION = tuple(f.name for f in dataclasses.fields(Augmentation))


def planned_config(config: TrainConfig, fingerprint: Fingerprint) -> TrainConfig:
    """A copy of `config` with the plan's settings wherever the user set none.

    Only the default architecture follows the plan; the seed keeps its article's settings (its
    plan is still recorded). A config that already carries a plan (a resumed run) is kept."""
    if config.plan is not None:
        return config
    # A whole-image input size the user set fixes the scale: the rest is planned around it.
    top_down = config.top_down if config.arch == "default" else False
    plan = make_plan(fingerprint, config.max_minutes, config.input_size, top_down)
    out = dataclasses.replace(config, params=dict(config.params),
                              overrides=dict(config.overrides), plan=plan.to_dict())  # fmt: skip
    if config.arch != "default":
        out.top_down = False
        return out
    if config.top_down is None:
        out.top_down = plan.top_down
    else:
        out.overrides.setdefault("top_down", config.top_down)
    settings = plan.settings()
    for name in ("input_size", "crop_size", "batch_size", "epochs"):
        value = getattr(config, name)
        if value is None:
            setattr(out, name, settings[name])
        else:
            out.overrides.setdefault(name, value)
    # Architecture parameters; at the architecture's defaults (stride 4, no context) params stay
    # empty, so such a model is built as before these parameters existed.
    for name, plain in (("stride", 4), ("context", 0)):
        if name in config.params:
            out.overrides.setdefault(name, config.params[name])
        elif settings[name] != plain:
            out.params[name] = settings[name]
    planned_aug = {k: v for k, v in settings["augmentation"].items()
                   if f"augmentation.{k}" not in config.overrides}  # fmt: skip
    out.augmentation = dataclasses.replace(config.augmentation, **planned_aug)
    return out


def parse_setting(config: TrainConfig, text: str) -> TrainConfig:
    """`--set key=value`: a copy of config with that setting, recorded as an override.

    Keys: input_size, crop_size (0: whole images), stride, context, batch_size, epochs, top_down,
    learning_rate, patience, seed, hints (a model that takes the user's placed keypoints as
    hints), peak (read keypoints within that many heatmap cells of the peak, 0: over the whole
    map; unset, the run chooses on its val images), and augmentation.FIELD (rotation_deg,
    scale, shift, flip, ...)."""
    key, sep, raw = text.partition("=")
    key = key.strip().replace("-", "_")
    if not sep or not raw.strip():
        raise ValueError(f"--set wants KEY=VALUE, not {text!r}")
    out = dataclasses.replace(config, params=dict(config.params),
                              overrides=dict(config.overrides))  # fmt: skip
    if key.startswith("augmentation."):
        field = key.split(".", 1)[1]
        if field not in AUGMENTATION:
            raise ValueError(f"unknown augmentation setting {field!r}; one of "
                             f"{', '.join(AUGMENTATION)}")  # fmt: skip
        current = getattr(config.augmentation, field)
        value = _parse(raw, type(current), key)
        out.augmentation = dataclasses.replace(config.augmentation, **{field: value})
    elif key in PLANNED + OTHER:
        kind = {"learning_rate": float, "top_down": bool, "hints": bool,
                "prior": float}.get(key, int)  # fmt: skip
        value = _parse(raw, kind, key)
        if key == "prior":  # only an override: the run reads it when it chooses its reading
            if not 0 <= value <= 100:
                raise ValueError("prior must be 0 (none) or how many times the labels' spread "
                                 "the relations' prior is, up to 100")  # fmt: skip
        elif key == "hints" and not value:  # the architecture's default: params stay plain
            out.params.pop("hints", None)
        elif key in ("stride", "hints", "context", "peak"):  # architecture parameters
            out.params[key] = value
        else:
            setattr(out, key, value)
    else:
        raise ValueError(f"unknown setting {key!r}; one of {', '.join(PLANNED + OTHER)}, "
                         "augmentation.FIELD")  # fmt: skip
    out.overrides[key] = value
    return out


def _parse(raw: str, kind: type, key: str):
    raw = raw.strip()
    try:
        if kind is bool:
            if raw.lower() not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError
            return raw.lower() in ("true", "1", "yes")
        return kind(raw)
    except ValueError:
        raise ValueError(f"--set {key}: {raw!r} is not a {kind.__name__}") from None
