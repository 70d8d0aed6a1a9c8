"""Errors meant for users: each carries one clear sentence, shown on stderr or in a dialog."""


class DiffvisError(Exception):
    """Base class of every error that is the user's input, not a bug."""


class DataFileError(DiffvisError):
    """A point file that cannot be read or holds no usable points."""


class CheckpointError(DiffvisError):
    """A run directory that is missing, corrupt, truncated or not a diffvis run."""


class ConfigError(DiffvisError):
    """A hyperparameter or argument outside its valid range."""


class TrainingDiverged(DiffvisError):
    """The loss became NaN or infinite; the last good weights were kept."""


class Cancelled(DiffvisError):
    """Work stopped because the caller asked it to."""
