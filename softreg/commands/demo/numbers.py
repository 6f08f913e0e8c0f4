"""The demo's numbers as the Markdown of numbers.md."""

from __future__ import annotations

from typing import Any


def numbers_markdown(numbers: dict[str, Any]) -> str:
    """The tables the README quotes, as markdown."""
    lines = ["# Why softmax and cross-entropy: the numbers", "",
             "Made by `softreg demo why-softmax`" + (" --quick (a smoke test, not the README's numbers)."
                                                     if numbers["quick"] else "."), ""]
    gradient = numbers["gradient"]
    lines += [f"## dL/dz_y at p_y ({gradient['n_classes']} classes, the other logits equal)", "",
              "| p_y | cross-entropy | squared error |", "|---|---|---|"]
    for p, values in gradient["dL_dz_true_at_p"].items():
        lines.append(f"| {p} | {values['cross_entropy']:.4f} | {values['squared_error']:.4f} |")
    lines += ["", "## letters: cross-entropy vs squared error from the zero start (constant rate)", "",
              "| loss | lr | val acc, epoch 1 | val acc, last epoch | val log loss | val ECE | test acc |",
              "|---|---|---|---|---|---|---|"]
    for run in numbers["loss"]["runs"]:
        curve = run["val_accuracy_by_epoch"]
        lines.append(f"| {run['loss']} | {run['lr']:g} | {curve[0]:.4f} | {curve[-1]:.4f} | "
                     f"{run['val_log_loss']:.4f} | {run['val_ece']:.4f} | {run['test_accuracy']:.4f} |")
    lines += ["", "## softmax vs Taylor vs spherical (test split; then calibrated on the validation split)", "",
              "| data | normalizer | accuracy | mean confidence | log loss | ECE | T fitted | log loss at T "
              "| ECE at T |",
              "|---|---|---|---|---|---|---|---|---|"]
    for data, table in numbers["normalizers"].items():
        for normalizer, row in table.items():
            lines.append(f"| {data} | {normalizer} | {row['test_accuracy']:.4f} | {row['test_mean_confidence']:.4f} | "
                         f"{row['test_log_loss']:.4f} | "
                         f"{row['test_ece']:.4f} | {row['calibrated_temperature']:.3f} | "
                         f"{row['calibrated_test_log_loss']:.4f} | {row['calibrated_test_ece']:.4f} |")
    lines += ["", "## digits: weight decay", "", "| lambda | test accuracy | test log loss | ‖W‖_F |",
              "|---|---|---|---|"]
    for row in numbers["weight_decay"]["runs"]:
        lines.append(f"| {row['weight_decay']:g} | {row['test_accuracy']:.4f} | {row['test_log_loss']:.4f} | "
                     f"{row['coef_norm']:.2f} |")
    lines += ["", "## digits: two runs, other seeds and batch sizes (SVRG)", "",
              "| lambda | ‖W_a − W_b‖ / ‖W_a‖ | ‖W_a‖, ‖W_b‖ | distance to L-BFGS's optimum |", "|---|---|---|---|"]
    for decay, entry in numbers["uniqueness"].items():
        to_lbfgs = entry.get("relative_distance_to_lbfgs")
        shown = ", ".join(f"{value:.1e}" for value in to_lbfgs) if to_lbfgs else "no unique optimum"
        lines.append(f"| {decay} | {entry['relative_distance']:.1e} | "
                     f"{entry['coef_norms'][0]:.2f}, {entry['coef_norms'][1]:.2f} | {shown} |")
    growth = numbers["norm_growth"]
    milestones = list(next(iter(growth["by_weight_decay"].values()))["coef_norm_at_epoch"])
    lines += ["", f"## digits: ‖W‖_F by epoch, plain SGD at a constant rate {growth['lr']:g}", "",
              "| lambda | " + " | ".join(f"epoch {epoch}" for epoch in milestones)
              + " | ‖W*‖_F (exact optimum) | training accuracy |",
              "|---" * (len(milestones) + 3) + "|"]
    for decay, entry in growth["by_weight_decay"].items():
        cells = " | ".join(f"{value:.2f}" for value in entry["coef_norm_at_epoch"].values())
        norm = entry["optimum_coef_norm"]
        optimum = "none (grows without end)" if norm is None else f"{norm:.2f}"
        lines.append(f"| {decay} | {cells} | {optimum} | {entry['train_accuracy']:.4f} |")
    return "\n".join(lines) + "\n"
