"""TensorFlow's thread pools, set once per process before TensorFlow initialises.

Online updates are tiny (a few dozen variables), a refit is large; with the
default pools (one intra-op thread per core, shared by every session) a refit's
kernels fill the pool and an online update's ops wait behind them.
``bench/online_under_refit.py`` measures the effect; ``SUNRANK_LEARNER_THREADS``
sets it (0 keeps TensorFlow's default).
"""

from __future__ import annotations

import logging

log = logging.getLogger("sunrank.learner")


def configure(n: int) -> None:
    """Use ``n`` intra-op threads (the service passes ``Settings.learner_threads``;
    the learner package imports nothing of the server); 0 keeps TensorFlow's
    default; a no-op (logged) once TensorFlow has started."""
    if n <= 0:
        return
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(n)
    except RuntimeError:  # TF already initialised (tests, a second service)
        log.debug("TensorFlow already initialised; learner_threads=%d not applied", n)
