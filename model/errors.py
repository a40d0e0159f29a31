"""The one exception of the serving package."""


class ArtifactError(Exception):
    """A model artefact is missing, unreadable, tampered with or incompatible."""
