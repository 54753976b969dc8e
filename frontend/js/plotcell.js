// Which cell of a Plotly heatmap a click fell on, from the click's own position. Plotly's
// plotly_click reports the last *hovered* point, and under load the hover of a quick
// move-and-click may not have been processed yet: the click then lands on the previous cell.

// (x, y) in data coordinates, rounded to the cell, or null outside the plot area.
export function cellAt(plot, ev) {
  const layout = plot._fullLayout;
  const e = ev && ev.event;
  if (!layout || !e || typeof e.clientX !== "number") {
    const p = ev && ev.points && ev.points[0];  // no mouse event (a keyboard click): Plotly's
    return p ? { x: Math.round(p.x), y: Math.round(p.y) } : null;
  }
  const xa = layout.xaxis, ya = layout.yaxis;
  const box = plot.getBoundingClientRect();
  const x = xa.p2l(e.clientX - box.left - xa._offset);
  const y = ya.p2l(e.clientY - box.top - ya._offset);
  return Number.isFinite(x) && Number.isFinite(y) ? { x: Math.round(x), y: Math.round(y) } : null;
}
