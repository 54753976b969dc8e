// The one tooltip the heatmaps share: shown beside the pointer, kept inside the window.

export function createTooltip(box) {
  return {
    show(ev, text) {
      box.textContent = text;
      box.hidden = false;
      const x = Math.min(ev.clientX + 14, window.innerWidth - box.offsetWidth - 4);
      box.style.left = `${x}px`;
      box.style.top = `${ev.clientY + 14}px`;
    },
    hide() { box.hidden = true; },
  };
}
