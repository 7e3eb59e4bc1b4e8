"""The learner: objective, full fit, online update and checkpoint (DESIGN.md §4).

Importing this package does not import TensorFlow; ``Learner.fit`` and the online
events import it on first use.
"""

from app.learner.checkpoint import CheckpointError, StaleCheckpointError
from app.learner.hparams import HParams
from app.learner.model import Changed, Learner
from app.learner.scale import squash

__all__ = ["Changed", "CheckpointError", "HParams", "Learner", "StaleCheckpointError", "squash"]
