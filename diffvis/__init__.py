"""diffvis: a desktop laboratory for diffusion models on 2D point sets."""

__version__ = "0.1.0"
