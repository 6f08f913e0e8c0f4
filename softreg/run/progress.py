"""The one line that reports an epoch, the same from ``softreg train`` and the estimator's ``verbose``."""

from __future__ import annotations

from softreg.train import EpochRecord


def epoch_line(record: EpochRecord, total: int) -> str:
    """``epoch N/E  lr=...  train_loss=...`` with the objective and validation measures when known."""
    parts = [f"epoch {record.epoch}/{total}", f"lr={record.lr:.4g}", f"train_loss={record.train_loss:.6g}"]
    if record.objective is not None:
        parts.append(f"objective={record.objective:.7g}")
    if record.val_loss is not None:
        parts.append(f"val_loss={record.val_loss:.6g}")
        parts.append(f"val_acc={record.val_accuracy:.4f}")
    comm = "" if record.comm_seconds is None else f", comm {record.comm_seconds:.2f}s"
    parts.append(f"({record.seconds:.2f}s{comm})")
    return "  ".join(parts)
