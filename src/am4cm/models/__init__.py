"""Neural models: the pixel-wise L-TAE crop-type classifier."""

from am4cm.models.ltae import LTAEConfig, PixelLTAE, count_parameters

__all__ = ["LTAEConfig", "PixelLTAE", "count_parameters"]
