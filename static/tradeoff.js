// tradeoff.js draws the ARC-HBR trade-off chart as SVG: the predicted
// 1-year bleeding risk (x) against the predicted 1-year thrombotic risk (y),
// both on log axes, over three zones (this app's drawing convention, as the
// original app drew them; not from the publication): thrombotic risk higher,
// equivalent once the associated mortality is considered, and bleeding risk
// higher, with the boundaries from the scoring configuration's trade-off
// zones. The model's parameters are unverified, and the page says so.

const NS = 'http://www.w3.org/2000/svg';

/** AXIS is the plotted range in percent, as in the original chart. */
export const AXIS = Object.freeze({ min: 0.1, max: 50, ticks: [0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50] });

/**
 * zonesFrom reads the zone ratios (thrombotic / bleeding) from the trade-off
 * configuration, the one place they are written; null when it has none, and
 * then no zones are drawn.
 */
export function zonesFrom(hazard) {
  const z = hazard && hazard.zones;
  if (z && typeof z.equivalent_min_ratio === 'number' && typeof z.equivalent_max_ratio === 'number') {
    return { min: z.equivalent_min_ratio, max: z.equivalent_max_ratio, configured: true };
  }
  return null;
}

/** zoneOf names the zone of a point: thrombotic, equivalent or bleeding. */
export function zoneOf(bleeding, thrombotic, zones) {
  if (!zones || !(bleeding > 0) || !(thrombotic >= 0)) return null;
  const r = thrombotic / bleeding;
  if (r > zones.max) return 'thrombotic';
  if (r < zones.min) return 'bleeding';
  return 'equivalent';
}

function svg(tag, attrs, text) {
  const e = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  return e;
}

function fmt(n) {
  return String(Number(n.toPrecision(3)));
}

/**
 * tradeoffChart returns an <svg>. opts: bleeding, thrombotic (percent, or
 * null when unknown), zones ({min, max}), idPrefix, and labels: title, desc,
 * x, y, zoneThrombotic, zoneEquivalent, zoneBleeding, patient.
 */
export function tradeoffChart(opts) {
  const { bleeding, thrombotic, zones, labels } = opts;
  const p = opts.idPrefix || 'tradeoff';
  const L = 64, T = 14, W = 280, H = 280, R = 14, B = 52;
  const lmin = Math.log10(AXIS.min), lmax = Math.log10(AXIS.max);
  const px = (x) => L + ((Math.log10(x) - lmin) / (lmax - lmin)) * W;
  const py = (y) => T + H - ((Math.log10(y) - lmin) / (lmax - lmin)) * H;
  const root = svg('svg', {
    viewBox: `0 0 ${L + W + R} ${T + H + B}`,
    class: 'tradeoff-svg',
    role: 'img',
    'aria-labelledby': `${p}-svg-title ${p}-svg-desc`,
    'data-testid': 'tradeoff-svg',
  });
  root.append(svg('title', { id: `${p}-svg-title` }, labels.title));
  root.append(svg('desc', { id: `${p}-svg-desc` }, labels.desc));
  const defs = svg('defs');
  const clip = svg('clipPath', { id: `${p}-clip` });
  clip.append(svg('rect', { x: L, y: T, width: W, height: H }));
  defs.append(clip);
  root.append(defs);

  const zoneGroup = svg('g', { 'clip-path': `url(#${p}-clip)` });
  const x0 = AXIS.min, x1 = AXIS.max;
  const far = AXIS.max * 1e3, near = AXIS.min / 1e3;
  const poly = (pts, cls, fill) =>
    svg('polygon', { points: pts.map(([x, y]) => `${px(x).toFixed(2)},${py(y).toFixed(2)}`).join(' '), class: cls, fill });
  if (zones) zoneGroup.append(
    poly([[x0, zones.max * x0], [x1, zones.max * x1], [x1, far], [x0, far]], 'zone zone-thrombotic', '#cfe3f7'),
    poly([[x0, zones.min * x0], [x1, zones.min * x1], [x1, zones.max * x1], [x0, zones.max * x0]], 'zone zone-equivalent', '#e2e2e2'),
    poly([[x0, near], [x1, near], [x1, zones.min * x1], [x0, zones.min * x0]], 'zone zone-bleeding', '#fff1a8'),
  );
  // The line of equal risk.
  zoneGroup.append(svg('line', { x1: px(x0), y1: py(x0), x2: px(x1), y2: py(x1), class: 'diagonal', stroke: '#555', 'stroke-dasharray': '4 3', 'stroke-width': 1 }));
  root.append(zoneGroup);

  const axes = svg('g', { class: 'axes', 'font-size': 11, fill: '#1b1b1b' });
  axes.append(svg('rect', { x: L, y: T, width: W, height: H, fill: 'none', stroke: '#333', 'stroke-width': 1 }));
  for (const v of AXIS.ticks) {
    const x = px(v), y = py(v);
    axes.append(svg('line', { x1: x, y1: T + H, x2: x, y2: T + H + 5, stroke: '#333' }));
    axes.append(svg('text', { x, y: T + H + 17, 'text-anchor': 'middle' }, fmt(v)));
    axes.append(svg('line', { x1: L - 5, y1: y, x2: L, y2: y, stroke: '#333' }));
    axes.append(svg('text', { x: L - 8, y: y + 4, 'text-anchor': 'end' }, fmt(v)));
  }
  axes.append(svg('text', { x: L + W / 2, y: T + H + 40, 'text-anchor': 'middle', class: 'axis-label' }, labels.x));
  axes.append(svg('text', { x: 14, y: T + H / 2, 'text-anchor': 'middle', transform: `rotate(-90 14 ${T + H / 2})`, class: 'axis-label' }, labels.y));
  root.append(axes);

  // With predictors unknown, the box the unknowns could span.
  const rg = opts.range;
  if (rg && rg.bleeding && rg.thrombotic) {
    const cl = (x) => Math.min(Math.max(x, AXIS.min), AXIS.max);
    const x0r = px(cl(rg.bleeding.min)), x1r = px(cl(rg.bleeding.max));
    const y0r = py(cl(rg.thrombotic.max)), y1r = py(cl(rg.thrombotic.min));
    const g = svg('g', { class: 'patient-range', 'data-testid': 'tradeoff-range' });
    g.append(svg('rect', { x: x0r.toFixed(2), y: y0r.toFixed(2), width: Math.max(x1r - x0r, 4).toFixed(2), height: Math.max(y1r - y0r, 4).toFixed(2), fill: '#1b1b1b', 'fill-opacity': 0.15, stroke: '#1b1b1b', 'stroke-width': 2 }));
    g.append(svg('title', {}, labels.range || labels.patient));
    root.append(g);
  }
  if (typeof bleeding === 'number' && typeof thrombotic === 'number' && isFinite(bleeding) && isFinite(thrombotic)) {
    const cx = px(Math.min(Math.max(bleeding, AXIS.min), AXIS.max));
    const cy = py(Math.min(Math.max(thrombotic, AXIS.min), AXIS.max));
    const g = svg('g', { class: 'patient-point', 'data-testid': 'tradeoff-point' });
    g.append(svg('circle', { cx: cx.toFixed(2), cy: cy.toFixed(2), r: 7, fill: '#1b1b1b', stroke: '#fff', 'stroke-width': 2 }));
    g.append(svg('title', {}, labels.patient));
    root.append(g);
  }
  return root;
}
