// Gradient clipping in words: the parameter gradients' total norm against the threshold,
// and the factor every gradient is scaled by (torch.nn.utils.clip_grad_norm_).

import { fmt } from "../config.js";

export function createClip(box) {
  function update(result) {
    if (!result.grad_norm) {
      box.textContent = "Set \u201cClip gradients at\u201d above: the parameter gradients are then "
        + "scaled together as torch.nn.utils.clip_grad_norm_ does.";
      return;
    }
    const { total, clipped } = result.grad_norm;
    box.dataset.total = String(total);
    box.dataset.clipped = String(clipped);
    box.textContent = clipped < total
      ? `The parameter gradients' total norm ‖∇θ‖ = ${fmt(total, 6)} is over the threshold: every gradient is scaled by ${fmt(clipped / total, 6)}, to ‖∇θ‖ = ${fmt(clipped, 6)}. Their direction is unchanged.`
      : `The parameter gradients' total norm ‖∇θ‖ = ${fmt(total, 6)} is within the threshold: nothing is clipped.`;
  }

  return { update };
}
