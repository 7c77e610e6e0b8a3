// render.js builds the parts of SMART Calc's pages that show calculator
// results: score blocks, factor tables with provenance, ARC-HBR criteria and
// warnings. Both the EHR page (app.js) and the standalone calculator
// (evaluate.js) use it. Everything is built with DOM calls and textContent,
// never innerHTML, so text from the record or the server cannot become markup.

import { t, has, cfgText, textParams, number, date, longDate } from './i18n.js';

/**
 * el creates an element. attrs keys: class, text, dataset (object), and any
 * attribute; true sets a boolean attribute, false/null/undefined skips it.
 */
export function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === false || v === null || v === undefined) continue;
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = v;
    else if (k === 'dataset') {
      for (const [dk, dv] of Object.entries(v)) if (dv !== null && dv !== undefined) e.dataset[dk] = String(dv);
    }
    else e.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false || c === '') continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

/** clear removes every child of node. */
export function clear(node) {
  while (node.firstChild) node.removeChild(node.firstChild);
  return node;
}

/** byCalculator indexes results given as an object keyed by id or as an array. */
export function byCalculator(results) {
  const m = new Map();
  if (Array.isArray(results)) {
    for (const r of results) if (r && r.calculator) m.set(r.calculator, r);
  } else if (results && typeof results === 'object') {
    for (const [k, r] of Object.entries(results)) if (r) m.set(r.calculator || k, r);
  }
  return m;
}

/** valueOf returns a result's value entry by name, or null. */
export function valueOf(result, name) {
  return ((result && result.values) || []).find((v) => v.name === name) || null;
}

/** inputsOf indexes a result's echoed inputs by name. */
export function inputsOf(result) {
  const m = new Map();
  for (const i of (result && result.inputs) || []) m.set(i.name, i);
  return m;
}

/** inputValues maps input name to value, for rule evaluation. */
export function inputValues(result) {
  const o = {};
  for (const i of (result && result.inputs) || []) o[i.name] = i.value;
  return o;
}

export function inputLabel(scoring, name) {
  if (name === 'base') return t('component.base');
  return cfgText('input.' + name, scoring.inputLabel(name));
}

/**
 * enumLabel names an enum or sex value (none, minor, major, female, male).
 * An input's own value names may name the numbers that decide it, those of
 * its input description ({window_months}, {major_at_least}, the mapping's
 * windows such as {bleeding_major_months}).
 */
export function enumLabel(name, v) {
  const specific = 'enum.' + name + '.' + v;
  const s = t(specific, textParams('input.' + name + '.description'));
  if (s !== specific) return s;
  const g = 'enum.' + v;
  const s2 = t(g);
  return s2 !== g ? s2 : String(v);
}

/**
 * unitLabel is how a unit of an input's quantity is written: the
 * configuration's label of the canonical unit (translated), the catalogue's
 * for another ("µmol/L"), else its UCUM code.
 */
export function unitLabel(scoring, name, code) {
  const units = scoring.units(name);
  const u = (code && scoring.unit(name, code)) || units[0];
  if (!u) return '';
  if (u.code === units[0].code) {
    const def = scoring.input(name);
    return cfgText('quantity.' + (def && def.quantity), scoring.unitLabel(name));
  }
  return has('unit.' + u.code) ? t('unit.' + u.code) : u.code;
}

/**
 * unitFor is the unit an input is shown in: the unit chosen with the
 * page's unit switches (ctx.units: hemoglobin, creatinine, WBC), else the
 * canonical one. It carries its label and display precision.
 */
export function unitFor(scoring, name, ctx) {
  const units = scoring.units(name);
  const chosen = ctx && ctx.units && ctx.units[name];
  const u = (chosen && units.find((x) => x.code === chosen)) || units[0];
  if (!u) return { code: '', label: '', toCanonical: 1, decimals: 2 };
  return Object.assign({}, u, { label: unitLabel(scoring, name, u.code) });
}

/** displayValue shows an input value in the unit the page uses for it, at that unit's precision. */
export function displayValue(scoring, name, value, ctx) {
  if (value === null || value === undefined) return '';
  if (typeof value === 'boolean') return value ? t('value.yes') : t('value.no');
  if (typeof value === 'number') {
    const u = unitFor(scoring, name, ctx);
    return number(value / u.toCanonical, u.decimals, true);
  }
  if (typeof value === 'object' && typeof value.value === 'number') return number(value.value, scoring.decimals(name, value.unit));
  return enumLabel(name, value);
}

/**
 * reportedText is the value as the record reported it, when that unit is
 * not the one shown: "reported 97 µmol/L".
 */
export function reportedText(scoring, name, rec, ctx) {
  const r = rec && rec.reported;
  if (!r || typeof r.value !== 'number' || !r.unit) return '';
  const shown = unitFor(scoring, name, ctx);
  if (r.unit === shown.code || shown.aliases.includes(r.unit)) return '';
  const u = scoring.unit(name, r.unit);
  if (u && u.toCanonical === shown.toCanonical) return '';
  return t('value.reported-as', { value: number(r.value, scoring.decimals(name, r.unit), true), unit: unitLabel(scoring, name, r.unit) });
}

/**
 * riskClass is the CSS class of a risk level: colour means risk and
 * nothing else on the page. Low (not HBR, PRECISE-DAPT very low or low),
 * elevated (PRECISE-HBR's HBR band, PRECISE-DAPT moderate) and high (very
 * HBR, PRECISE-DAPT high, and ARC-HBR's or the verdict's high bleeding
 * risk) each have one colour; unknown is grey.
 */
const RISK_LEVEL = { 'not-hbr': 'low', 'very-low': 'low', low: 'low', hbr: 'elevated', moderate: 'elevated', 'very-hbr': 'high', high: 'high' };
export function riskClass(level) {
  return 'risk risk-' + (['low', 'elevated', 'high'].includes(level) ? level : 'unknown');
}

/** bandClass is the CSS class that colours a score's category by its risk level. */
export function bandClass(category) {
  return riskClass(RISK_LEVEL[category]) + (category ? ' band-' + String(category).replace(/[^a-z0-9-]/gi, '') : '');
}

export function categoryLabel(scoring, calcId, category) {
  const b = scoring.band(calcId, category);
  return cfgText('band.' + calcId + '.' + category, b ? b.label : category);
}

/** rangeText writes a band's score range from the configuration (≤ 22, 23–26, ≥ 27). */
export function rangeText(scoring, calcId, category) {
  const r = scoring.bandRange(calcId, category);
  if (!r) return '';
  if (r.lo === undefined && r.hi !== undefined) return t('range.le', { hi: r.hi });
  if (r.lo !== undefined && r.hi === undefined) return t('range.ge', { lo: r.lo });
  if (r.lo !== undefined && r.hi !== undefined) return t('range.between', { lo: r.lo, hi: r.hi });
  return '';
}

/**
 * riskText is a band's published risk range, written from the configured
 * numbers (risk_percent: min inclusive, max exclusive) and the outcome they
 * measure, or else the band's note.
 */
export function riskText(scoring, calcId, category) {
  const b = scoring.band(calcId, category);
  if (!b) return '';
  const r = b.risk_percent;
  if (r && typeof r === 'object') {
    const outcome = cfgText('bands.' + calcId + '.risk_outcome', scoring.bandsRiskOutcome(calcId));
    const lo = typeof r.min === 'number' ? r.min : null;
    const hi = typeof r.max === 'number' ? r.max : null;
    if (lo !== null && hi !== null) return t('risk.between', { min: lo, max: hi, outcome });
    if (hi !== null) return t('risk.below', { max: hi, outcome });
    if (lo !== null) return t('risk.at-least', { min: lo, outcome });
    return '';
  }
  return b.note ? cfgText('band.' + calcId + '.' + category + '.note', b.note) : '';
}

/**
 * statusText explains a result's status other than ok, or returns '': the
 * server's sentence, which says what the missing inputs do to this result
 * (a lower bound, a verdict they cannot change, a range).
 */
export function statusText(scoring, result) {
  if (!result) return t('status.absent');
  if (result.status === 'ok') return '';
  return result.message || '';
}

/**
 * scoreBlock renders a points score: the number in large type coloured by
 * its band, the category, the band's score range and its published risk.
 * An incomplete score shows its lower bound ("≥ n"), coloured only when the
 * bound already lies above the lowest band.
 * ids: prefix-score, prefix-category, prefix-range, prefix-risk, prefix-status.
 */
export function scoreBlock(scoring, calcId, result, prefix) {
  const v = valueOf(result, 'score');
  const lb = valueOf(result, 'score_lower_bound');
  const has = v && typeof v.value === 'number';
  const hasLB = !has && lb && typeof lb.value === 'number';
  const bands = scoring.bands(calcId);
  let category = '';
  if (has) category = v.category || '';
  else if (hasLB && bands.length && lb.category && lb.category !== bands[0].category) category = lb.category;
  const title = (result && result.title) || calcId;
  const shown = has ? String(v.value) : hasLB ? '≥ ' + lb.value : '—';
  const aria = has
    ? t('score.aria', { title, score: v.value, category: categoryLabel(scoring, calcId, category) })
    : hasLB
      ? t('score.aria.lower', { title, score: lb.value })
      : t('score.none', { title });
  const box = el(
    'div',
    {
      id: prefix + '-score',
      class: 'score ' + bandClass(category) + (has ? '' : ' partial'),
      'data-testid': prefix + '-score',
      dataset: { category: has ? category || 'unknown' : 'unknown', lowerBound: hasLB ? lb.value : null },
      role: 'img',
      'aria-label': aria,
    },
    shown,
  );
  const info = el('div', { class: 'score-info' });
  if (category) {
    const catText = has ? categoryLabel(scoring, calcId, category) : t('score.at-least', { category: categoryLabel(scoring, calcId, category) });
    info.append(
      el('p', { id: prefix + '-category', class: 'category', 'data-testid': prefix + '-category' }, catText),
      el('p', { id: prefix + '-range', class: 'range', 'data-testid': prefix + '-range' }, rangeText(scoring, calcId, category)),
    );
    const risk = riskText(scoring, calcId, category);
    if (risk) info.append(el('p', { id: prefix + '-risk', class: 'risk', 'data-testid': prefix + '-risk' }, risk));
  }
  if (hasLB) info.append(el('p', { class: 'hint', 'data-testid': prefix + '-lower-bound' }, t('score.lower-bound', { score: lb.value })));
  const st = statusText(scoring, result);
  if (st) info.append(el('p', { id: prefix + '-status', class: 'result-status status-' + (result ? result.status : 'absent'), 'data-testid': prefix + '-status' }, st));
  return el('div', { class: 'score-row' }, box, info);
}

/**
 * codeText names a source's code with its terminology ("SNOMED CT
 * 415070008"): for a secondary place, after the name or in a title, never
 * ahead of the name.
 */
const SYSTEMS = { 'http://loinc.org': 'LOINC', 'http://snomed.info/sct': 'SNOMED CT', 'http://hl7.org/fhir/sid/icd-10-cm': 'ICD-10-CM', 'http://hl7.org/fhir/sid/icd-10': 'ICD-10', 'http://www.nlm.nih.gov/research/umls/rxnorm': 'RxNorm', 'http://www.ama-assn.org/go/cpt': 'CPT' };
export function codeText(src) {
  if (!src || typeof src.code !== 'string' || !src.code) return '';
  const i = src.code.lastIndexOf('|');
  if (i < 0) return src.code;
  const sys = SYSTEMS[src.code.slice(0, i)];
  return sys ? sys + ' ' + src.code.slice(i + 1) : src.code.slice(i + 1);
}

/**
 * sourceText says which record a value came from, for a person: what SMART
 * Calc calls it (its label), else the record's own name for it, else its
 * code in the terminology (LOINC 718-7). A lab's LOINC long name stays out:
 * the row already names the lab. The FHIR reference and the code go in the
 * element's title (sourceTitle).
 */
export function sourceText(src) {
  if (!src) return '';
  if (src.label) return String(src.label);
  if (src.display && !String(src.code || '').startsWith('http://loinc.org|')) return src.display;
  return codeText(src);
}

/** sourceTitle is a source's FHIR reference and code, for a title: the details behind its name. */
export function sourceTitle(src) {
  if (!src) return null;
  return [src.reference, codeText(src)].filter(Boolean).join(' · ') || null;
}

/**
 * originBadge says where a value comes from: the record (stated there),
 * none recorded (the absence of a finding), not available (a read refused
 * or failed), to answer, entered by the clinician, or computed.
 */
export function originBadge(rec) {
  const origin = rec && rec.origin ? rec.origin : 'record';
  return el('span', { class: 'badge origin origin-' + origin, 'data-testid': 'origin', dataset: { origin } }, t('origin.' + origin));
}

function staleBadge(staleDays) {
  return el('span', { class: 'badge stale', 'data-testid': 'stale' }, t('badge.stale', { days: staleDays === null ? '' : staleDays }));
}

/**
 * control builds the editable field for one input: a number field (in the
 * page's unit for hemoglobin), or a select for booleans, enums and sex.
 * data-input names the input; app.js listens for its change events.
 */
export function control(scoring, name, rec, ctx, label) {
  const id = ctx.idPrefix + '-in-' + name;
  const type = scoring.inputType(name);
  const value = rec ? rec.value : null;
  const common = { id, 'data-input': name, 'data-testid': 'input-' + name, 'aria-label': label };
  if (type === 'number') {
    const u = unitFor(scoring, name, ctx);
    const shown = typeof value === 'number' ? (value / u.toCanonical).toFixed(u.decimals) : '';
    const attrs = Object.assign({}, common, {
      type: 'number',
      inputmode: 'decimal',
      step: 'any',
      value: shown === '' ? null : String(shown),
      placeholder: value === null || value === undefined ? t('value.missing') : null,
      'data-unit': u.code,
      class: 'num-input',
    });
    return el('input', attrs);
  }
  const sel = el('select', Object.assign({}, common, { class: 'sel-input' }));
  let opts;
  if (type === 'boolean') opts = [['true', t('value.yes')], ['false', t('value.no')]];
  else opts = scoring.inputValues(name).map((v) => [v, enumLabel(name, v)]);
  if (value === null || value === undefined) sel.append(el('option', { value: '', selected: true }, t('value.unknown')));
  for (const [v, text] of opts) sel.append(el('option', { value: v, selected: String(value) === v }, text));
  return sel;
}

/** readControlValue turns a control's value into an API input, or undefined to clear the override. */
export function readControlValue(scoring, input) {
  const name = input.dataset.input;
  const type = scoring.inputType(name);
  const raw = input.value;
  if (raw === '') return undefined;
  if (type === 'number') {
    const n = Number(raw);
    if (!isFinite(n)) return undefined;
    const unit = input.dataset.unit;
    const q = scoring.quantity(name);
    if (unit && q && unit !== q.unit) return { value: n, unit };
    return n;
  }
  if (type === 'boolean') return raw === 'true';
  return raw;
}

/**
 * componentRows lists the rows of a factor table from a result's components
 * (in order), then any missing input that has no row yet. A summary item
 * that was decided from other inputs (PRECISE-HBR's "other ARC-HBR
 * criterion") is shown as derived. Without components (an out-of-range
 * result), every echoed input gets a row, so the value can be corrected.
 */
export function componentRows(result, scoring) {
  const inputs = inputsOf(result);
  const rows = [];
  const seen = new Set();
  const comps = (result && result.components) || [];
  for (const c of comps) {
    let name = null;
    if (typeof c.input === 'string' && c.input) name = c.input;
    else if (inputs.has(c.name)) name = c.name;
    const points = typeof c.points === 'number' ? c.points : null;
    let rec = name ? inputs.get(name) || null : null;
    if (!rec && name && points !== null && scoring && scoring.inputType(name) === 'boolean') {
      rec = { name, value: points > 0, origin: 'derived', derivation: t('derivation.any_of') };
    }
    rows.push({ key: c.name, input: name, rec, points, counted: typeof c.counted === 'number' ? c.counted : null, truncated: c.truncated || '' });
    if (name) seen.add(name);
    seen.add(c.name);
  }
  if (!comps.length) {
    for (const i of (result && result.inputs) || []) {
      if (seen.has(i.name)) continue;
      seen.add(i.name);
      rows.push({ key: i.name, input: i.name, rec: i, points: null });
    }
  }
  for (const m of (result && result.missing) || []) {
    if (seen.has(m)) continue;
    seen.add(m);
    rows.push({ key: m, input: m, rec: inputs.get(m) || null, points: null });
  }
  return rows;
}

/** inputRows lists rows for named inputs of a result, in the given order. */
export function inputRows(result, names) {
  const inputs = inputsOf(result);
  return names.filter((n) => inputs.has(n) || ((result && result.missing) || []).includes(n)).map((n) => ({ key: n, input: n, rec: inputs.get(n) || null, points: null }));
}

/**
 * factorTable renders rows with the columns risk factor, value, unit,
 * points (when ctx.points), date and source. Each row carries data-input,
 * data-origin and data-stale; editable rows have a control and, when the
 * value was entered, a button to return to the record value. ctx.provenance
 * false leaves out the date and source (the standalone calculator, where
 * every value is typed in).
 */
export function factorTable(scoring, rows, ctx) {
  const provenance = ctx.provenance !== false;
  const head = [t('col.factor'), t('col.value'), t('col.unit')];
  if (ctx.points) head.push(t('col.points'));
  if (provenance) head.push(t('col.date'), t('col.source'));
  const table = el('table', { class: 'factors', id: ctx.idPrefix + '-table', 'data-testid': ctx.idPrefix + '-table' });
  if (ctx.caption) table.append(el('caption', {}, ctx.caption));
  table.append(el('thead', {}, el('tr', {}, head.map((h) => el('th', { scope: 'col' }, h)))));
  const body = el('tbody');
  for (const row of rows) {
    const name = row.input;
    const rec = row.rec;
    const label = inputLabel(scoring, name || row.key);
    const origin = rec && rec.origin ? rec.origin : name ? 'record' : 'none';
    const tr = el('tr', {
      class: ctx.provenance === false ? '' : 'origin-' + origin + (rec && rec.stale ? ' is-stale' : ''),
      'data-testid': 'row-' + row.key,
      dataset: { input: name || '', component: row.key, origin, stale: rec && rec.stale ? 'true' : 'false' },
    });
    const ctlId = ctx.idPrefix + '-in-' + name;
    const editable = ctx.editable && name && name !== 'base';
    tr.append(el('th', { scope: 'row' }, editable ? el('label', { for: ctlId }, label) : label));
    const valueCell = el('td', { 'data-label': head[1], class: 'value' });
    if (editable) {
      valueCell.append(control(scoring, name, rec, ctx, label));
      if (origin === 'entered') {
        valueCell.append(
          ' ',
          el('button', { type: 'button', class: 'revert', 'data-action': 'revert', 'data-input': name, 'data-testid': 'revert-' + name, 'aria-label': t('action.revert.aria', { name: label }) }, t('action.revert')),
        );
      }
    } else if (name) {
      const shown = rec ? displayValue(scoring, name, rec.value, ctx) : '';
      valueCell.append(shown === '' ? el('span', { class: 'missing' }, t('value.missing')) : shown);
    }
    const rep = name && origin !== 'entered' ? reportedText(scoring, name, rec, ctx) : '';
    if (rep) valueCell.append(' ', el('span', { class: 'reported', 'data-testid': 'reported' }, rep));
    if (row.truncated && row.counted !== null) {
      // The score's own rule, in its row: the value it counts.
      const u = unitFor(scoring, name, ctx);
      valueCell.append(' ', el('span', { class: 'counted', 'data-testid': 'counted' }, t('component.counted.' + row.truncated, { value: number(row.counted / u.toCanonical, u.decimals), unit: u.label })));
    }
    tr.append(valueCell);
    tr.append(el('td', { 'data-label': head[2], class: 'unit' }, name && scoring.inputType(name) === 'number' ? unitFor(scoring, name, ctx).label : ''));
    if (ctx.points) tr.append(el('td', { 'data-label': t('col.points'), class: 'num points' }, row.points === null ? '—' : number(row.points, 2)));
    if (!provenance) {
      body.append(tr);
      continue;
    }
    const dateCell = el('td', { 'data-label': t('col.date'), class: 'date' });
    const when = rec && rec.source && rec.source.date && !rec.source.label ? rec.source.date : '';
    if (when) dateCell.append(longDate(when));
    if (rec && rec.stale) dateCell.append(' ', staleBadge(ctx.staleDays));
    tr.append(dateCell);
    const srcCell = el('td', { 'data-label': t('col.source'), class: 'source' });
    if (name) {
      srcCell.append(originBadge(rec));
      const s = rec && origin !== 'entered' ? sourceText(rec.source) : '';
      if (s) srcCell.append(' ', el('span', { class: 'ref', title: sourceTitle(rec.source) }, s));
      if (rec && rec.derivation) srcCell.append(' ', el('span', { class: 'derivation' }, rec.derivation));
      // Why there is no value, or what the "no" rests on.
      if (rec && rec.note && origin !== 'entered') srcCell.append(' ', el('span', { class: 'note', 'data-testid': 'input-note' }, rec.note));
      else if (!rec || rec.value === null || rec.value === undefined) {
        const gap = ctx.gaps && ctx.gaps.get(name);
        if (gap && origin !== 'entered') srcCell.append(' ', el('span', { class: 'note', 'data-testid': 'input-note' }, gap.message));
      }
    }
    tr.append(srcCell);
    body.append(tr);
  }
  table.append(body);
  return table;
}

/** evidenceText writes the evidence behind a criterion: resource and date. */
export function evidenceText(ev) {
  if (ev === null || ev === undefined || ev === '') return '';
  if (typeof ev === 'string') return ev;
  if (Array.isArray(ev)) return ev.map(evidenceText).filter(Boolean).join('; ');
  if (typeof ev === 'object') {
    const parts = [];
    const what = ev.display || ev.text || ev.description || '';
    if (what) parts.push(what);
    if (ev.reference) parts.push(ev.reference);
    if (ev.code) parts.push(typeof ev.code === 'object' ? ev.code.display || ev.code.code || '' : String(ev.code).split('|').pop());
    if (ev.date) parts.push(date(ev.date));
    if (ev.value !== undefined && ev.value !== null && typeof ev.value !== 'object') parts.push(String(ev.value) + (ev.unit ? ' ' + ev.unit : ''));
    if (ev.source) parts.push(evidenceText(ev.source));
    return parts.filter(Boolean).join(' · ');
  }
  return String(ev);
}

/** criterionName is a criterion's text, translated with the configured numbers filled in. */
export function criterionName(scoring, c) {
  const cfg = scoring.criterion(c.id || c.name);
  const id = c.id || (cfg && cfg.id) || '';
  return cfgText('criterion.' + id, c.name || (cfg && cfg.name) || id);
}

function metStatus(met) {
  if (met === true) return ['met', t('criterion.met'), '✓'];
  if (met === false) return ['not-met', t('criterion.not-met'), '✗'];
  return ['unknown', t('criterion.unknown'), '?'];
}

const LEVEL_ORDER = { major: 0, minor: 1 };
const MET_ORDER = { met: 0, unknown: 1, 'not-met': 2 };

/**
 * criteriaTable lists ARC-HBR's criteria: those met first, then those the
 * record cannot decide (each with what is asked), majors before minors; the
 * criteria not met are folded away below, in a table of their own. Met and
 * not met are said in words and symbols, never colour: colour is kept for
 * the risk level. When ctx.editable, an undecided criterion gets a control
 * for the input it depends on, so the clinician can answer it.
 */
export function criteriaTable(scoring, result, ctx) {
  const inputs = inputsOf(result);
  const criteria = [...((result && result.criteria) || [])];
  const cls = (c) => metStatus(c.met)[0];
  criteria.sort((a, b) => MET_ORDER[cls(a)] - MET_ORDER[cls(b)] || (LEVEL_ORDER[a.level] ?? 2) - (LEVEL_ORDER[b.level] ?? 2));
  const head = [t('col.criterion'), t('col.level'), t('col.status'), t('col.evidence')];
  if (ctx.editable) head.push(t('col.answer'));
  const answered = new Set();
  const table = (id, caption, rows) => {
    const tb = el('table', { class: 'criteria', id, 'data-testid': id });
    if (caption) tb.append(el('caption', {}, caption));
    tb.append(el('thead', {}, el('tr', {}, head.map((h) => el('th', { scope: 'col' }, h)))));
    const body = el('tbody');
    for (const c of rows) body.append(criterionRow(scoring, c, inputs, ctx, head, answered));
    tb.append(body);
    return tb;
  };
  const shown = criteria.filter((c) => cls(c) !== 'not-met');
  const notMet = criteria.filter((c) => cls(c) === 'not-met');
  const box = el('div', { class: 'criteria-box' });
  box.append(table(ctx.idPrefix + '-table', ctx.caption, shown));
  if (!shown.length) box.append(el('p', { class: 'hint', 'data-testid': ctx.idPrefix + '-none-met' }, t('criteria.none-met')));
  if (notMet.length) {
    const d = el('details', { class: 'not-met', 'data-testid': ctx.idPrefix + '-not-met' },
      el('summary', {}, t('criteria.not-met', { n: notMet.length })), table(ctx.idPrefix + '-table-not-met', null, notMet));
    box.append(d);
  }
  return box;
}

function criterionRow(scoring, c, inputs, ctx, head, answered) {
  const cfg = scoring.criterion(c.id || c.name);
  const id = c.id || (cfg && cfg.id) || c.name;
  const inputName = (cfg && cfg.rule && cfg.rule.input) || c.input || null;
  const rec = inputName ? inputs.get(inputName) || null : null;
  const [cls, text, glyph] = metStatus(c.met);
  const entered = rec && rec.origin === 'entered';
  const tr = el('tr', {
    class: 'crit-' + cls + ' level-' + c.level,
    'data-testid': 'criterion-' + id,
    dataset: { criterion: id, level: c.level || '', met: c.met === null || c.met === undefined ? 'unknown' : String(c.met), input: inputName || '' },
  });
  tr.append(el('th', { scope: 'row' }, criterionName(scoring, c)));
  tr.append(el('td', { 'data-label': head[1] }, c.level === 'major' ? t('level.major') : t('level.minor')));
  tr.append(el('td', { 'data-label': head[2], class: 'met' }, el('span', { class: 'met-glyph', 'aria-hidden': 'true' }, glyph), ' ', text));
  const evCell = el('td', { 'data-label': head[3], class: 'evidence' });
  if (entered && ctx.provenance !== false) evCell.append(originBadge(rec), ' ');
  const ev = evidenceText(c.evidence);
  const refs = (c.sources || []).map(sourceTitle).filter(Boolean).join('; ');
  if (ev) evCell.append(el('span', { class: 'ev-text', title: refs || null }, ev));
  if (rec && rec.stale && !entered) evCell.append(' ', staleBadge(ctx.staleDays));
  tr.append(evCell);
  if (ctx.editable) {
    const cell = el('td', { 'data-label': head[4], class: 'answer' });
    const needs = c.met === null || c.met === undefined || entered;
    if (needs && inputName && !answered.has(inputName)) {
      answered.add(inputName);
      const label = t('criterion.answer.aria', { name: inputLabel(scoring, inputName) });
      const sub = Object.assign({}, ctx, { idPrefix: ctx.idPrefix + '-' + id });
      cell.append(el('label', { class: 'visually-hidden', for: sub.idPrefix + '-in-' + inputName }, label));
      cell.append(control(scoring, inputName, rec && rec.value !== null && rec.value !== undefined ? rec : null, sub, label));
      if (scoring.inputType(inputName) === 'number') cell.append(' ', unitFor(scoring, inputName, ctx).label);
      if (entered) {
        cell.append(
          ' ',
          el('button', { type: 'button', class: 'revert', 'data-action': 'revert', 'data-input': inputName, 'aria-label': t('action.revert.aria', { name: inputLabel(scoring, inputName) }) }, t('action.revert')),
        );
      }
    } else if (needs && inputName) {
      cell.append(el('span', { class: 'hint' }, t('criterion.answered-above')));
    }
    tr.append(cell);
  }
  return tr;
}

/**
 * arcSummary states the ARC-HBR conclusion: HBR, not HBR or undetermined.
 * Its high bleeding risk has the colour of the high risk level, not that
 * of PRECISE-HBR's middle band.
 */
export function arcSummary(scoring, result, prefix) {
  const hbr = valueOf(result, 'hbr');
  const major = valueOf(result, 'major_count');
  const minor = valueOf(result, 'minor_count');
  let state = 'unknown';
  if (hbr && hbr.value === true) state = 'hbr';
  else if (hbr && hbr.value === false) state = 'not-hbr';
  const unknown = ((result && result.criteria) || []).filter((c) => c.met === null || c.met === undefined).length;
  const text = state === 'hbr' ? t('arc.hbr') : state === 'not-hbr' ? t('arc.not-hbr') : t('arc.undetermined', { unknown });
  const counts = t('arc.counts', {
    major: major && typeof major.value === 'number' ? major.value : '—',
    minor: minor && typeof minor.value === 'number' ? minor.value : '—',
    unknown,
  });
  const st = statusText(scoring, result);
  const level = state === 'hbr' ? 'high' : state === 'not-hbr' ? 'low' : 'unknown';
  return el(
    'div',
    { class: 'score-row' },
    el('div', { id: prefix + '-result', class: 'score score-text ' + riskClass(level), 'data-testid': prefix + '-result', dataset: { hbr: state } }, text),
    el(
      'div',
      { class: 'score-info' },
      el('p', { id: prefix + '-counts', 'data-testid': prefix + '-counts' }, counts),
      st ? el('p', { class: 'result-status', 'data-testid': prefix + '-status' }, st) : null,
      ...assumptions(result).map((a) => el('p', { class: 'assumption', 'data-testid': prefix + '-assumption', dataset: { input: a.input } }, a.statement)),
    ),
  );
}

/** assumptions are what a result takes as given until the clinician answers. */
function assumptions(result) {
  return (result && result.assumptions) || [];
}

/** references lists a result's citations in a closed disclosure. */
/**
 * unverifiedNote says, beside a result, that some or all of its
 * calculator's parameters are not verified against their publication (the
 * result's unverified, of parameters, from the configuration's verified
 * marks); null when every one is. id: prefix-unverified.
 */
export function unverifiedNote(result, prefix) {
  const n = ((result && result.unverified) || []).length;
  if (!n) return null;
  const total = result.parameters || n;
  return el('p', { class: 'unverified', id: prefix + '-unverified', 'data-testid': prefix + '-unverified', dataset: { unverified: String(n), parameters: String(total) } },
    el('strong', {}, t(n >= total ? 'calc.unverified.all' : 'calc.unverified.some', { n, total })));
}

/** unverifiedBadge is the short mark a result's line carries when its parameters are not all verified; null otherwise. */
export function unverifiedBadge(result) {
  if (!((result && result.unverified) || []).length) return null;
  return el('span', { class: 'badge unverified-badge', 'data-testid': 'unverified-badge' }, t('calc.unverified.badge'));
}

export function referencesBlock(scoring, result) {
  const refs = (result && result.references) || [];
  const eq = result && result.equation;
  if (!refs.length && !eq) return null;
  const d = el('details', { class: 'references' }, el('summary', {}, t('refs.title')));
  if (eq) {
    const txt = typeof eq === 'string' ? eq : [eq.name, eq.version].filter(Boolean).join(', ');
    d.append(el('p', {}, t('refs.equation', { equation: txt })));
  }
  if (refs.length) d.append(el('ul', {}, refs.map((r) => el('li', {}, typeof r === 'string' ? scoring.citation(r) : r.citation || JSON.stringify(r)))));
  return d;
}
