"""The diffusion engine: numpy + torch only, never Qt."""
