"""Checkpoints: ``tf.train.Checkpoint`` of θ and ρ, plus an npz of the rest.

Layout of one checkpoint, a directory ``<root>/ckpt-<time_ns>-w<watermark>/``:

* ``vars.*`` — ``tf.train.Checkpoint(theta=..., rho=...)`` (capacity-sized variables);
* ``state.npz`` — the canonical arrays of ``Learner.state()`` except θ and ρ
  (id maps, comparisons, trust inputs, privacy), and the Laplace precisions, so
  that a restore computes nothing but the score views;
* ``meta.json`` — format, watermark, hyper-parameter digest, sizes, the events
  applied online since the state was a full fit (``online_events``: 0 when it is
  one, so a restore needs no refit), and the SHA-256 of every other file (so a
  torn or corrupted file is detected even where TensorFlow's own checksums would
  not look).

Writes are atomic: everything goes to a hidden temp directory, files and the
directory are fsync'ed, then one ``rename`` publishes it and the parent directory
is fsync'ed. The newest ``KEEP`` checkpoints are kept. ``restore`` takes the
newest one that verifies; a missing, corrupt or stale (hyper-parameter digest
mismatch) checkpoint raises :class:`CheckpointError` (stale:
:class:`StaleCheckpointError`) so the caller can fall back to a full fit.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
import uuid
from pathlib import Path

import numpy as np

FORMAT = 1
KEEP = 2
PREFIX = "ckpt-"


class CheckpointError(Exception):
    """No usable checkpoint (missing, corrupt or stale)."""


class StaleCheckpointError(CheckpointError):
    """The checkpoint was written with other hyper-parameters."""


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def save(learner, directory, watermark: int) -> Path:
    """Write a checkpoint of ``learner`` atomically; returns its directory."""
    import tensorflow as tf

    root = Path(directory)
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / f".tmp-{uuid.uuid4().hex}"
    tmp.mkdir()
    try:
        state = learner.state()
        theta, rho = state.pop("theta"), state.pop("rho")
        # stored so that a restore needs no Hessian pass (nor its graph's tracing)
        state["prec_theta"], state["prec_rho"] = learner.precision()
        sv = learner.solver
        sv.assign(theta, rho)  # the variables are the source of truth for θ, ρ
        tf.train.Checkpoint(theta=sv.theta, rho=sv.rho).write(str(tmp / "vars"))
        with open(tmp / "state.npz", "wb") as f:
            np.savez(f, **state)
        files = sorted(p.name for p in tmp.iterdir())
        meta = {
            "format": FORMAT,
            "watermark": int(watermark),
            "hparams_digest": learner.hp.digest(),
            "n_slots": len(theta),
            "n_items": len(rho),
            "cap_slots": sv.capacity_slots,
            "cap_items": sv.capacity_items,
            "online_events": learner.online_events,
            "created": time.time(),
            "sha256": {name: _sha256(tmp / name) for name in files},
        }
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1))
        for p in tmp.iterdir():
            _fsync(p)
        _fsync(tmp)
        final = root / f"{PREFIX}{time.time_ns():020d}-w{int(watermark)}"
        os.rename(tmp, final)
        _fsync(root)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    for old in _list(root)[KEEP:]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def _list(root: Path) -> list[Path]:
    """Published checkpoints, newest first."""
    if not root.is_dir():
        return []
    return sorted((p for p in root.iterdir() if p.name.startswith(PREFIX)), reverse=True)


def _load_one(cls, path: Path, hparams):
    import tensorflow as tf

    from app.learner.online import OnlineSolver, capacity_for

    try:
        meta = json.loads((path / "meta.json").read_text())
    except (OSError, ValueError) as e:
        raise CheckpointError(f"{path.name}: unreadable meta.json ({e})") from e
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{path.name}: unknown format {meta.get('format')!r}")
    if meta.get("hparams_digest") != hparams.digest():
        raise StaleCheckpointError(
            f"{path.name}: written with hyper-parameters {meta.get('hparams_digest')}, "
            f"current {hparams.digest()}"
        )
    for name, digest in meta.get("sha256", {}).items():
        try:
            ok = _sha256(path / name) == digest
        except OSError:
            ok = False
        if not ok:
            raise CheckpointError(f"{path.name}: {name} is missing or corrupt")
    try:
        with np.load(path / "state.npz", allow_pickle=False) as z:
            state = {k: z[k] for k in z.files}
        sv = OnlineSolver(meta["cap_slots"], meta["cap_items"], hparams.online_steps)
        tf.train.Checkpoint(theta=sv.theta, rho=sv.rho).read(str(path / "vars")).assert_consumed()
        state["theta"] = sv.theta.numpy()[: meta["n_slots"]]
        state["rho"] = sv.rho.numpy()[: meta["n_items"]]
        precision = None
        if "prec_theta" in state and "prec_rho" in state:  # older checkpoints: recomputed
            precision = (state.pop("prec_theta"), state.pop("prec_rho"))
        learner = cls.from_state(hparams, state, precision)
        learner.online_events = meta.get("online_events")
    except CheckpointError:
        raise
    except Exception as e:  # corrupt content that still hashed right, or a bug: don't crash
        raise CheckpointError(f"{path.name}: cannot restore ({type(e).__name__}: {e})") from e
    if sv.needs_room(learner.slots.n, learner.items.n):  # room for new slots: no growth
        sv = OnlineSolver(  # (and retrace) on the first events after the restore
            capacity_for(learner.slots.n), capacity_for(learner.items.n), hparams.online_steps
        )
        sv.assign(learner.slots.view("theta"), learner.items.view("rho"))
    learner._solver = sv
    return learner, int(meta["watermark"])


def restore(cls, directory, hparams):
    """Newest valid checkpoint under ``directory`` → (learner, watermark)."""
    errors: list[CheckpointError] = []
    for path in _list(Path(directory)):
        try:
            return _load_one(cls, path, hparams)
        except CheckpointError as e:
            errors.append(e)
    if not errors:
        raise CheckpointError(f"no checkpoint in {directory}")
    kind = (
        StaleCheckpointError
        if all(isinstance(e, StaleCheckpointError) for e in errors)
        else (CheckpointError)
    )
    raise kind("; ".join(str(e) for e in errors))
