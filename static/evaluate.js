// evaluate.js runs the standalone calculator: no EHR, no session, no
// patient data. The clinician gives the inputs of one calculator (numbers
// typed, yes/no and the other choices with one click each), and the result
// follows every change: POST api/evaluate computes it on the server with the
// same engine and scoring configuration as the EHR page, a moment after the
// last change (the latest answer wins).

import { loadI18n, t, cfgText, useConfigParams, setLang, onLangChange, number, risk } from './i18n.js';
import { Scoring } from './scoring.js';
import { call, ApiError } from './api.js';
import * as R from './render.js';
import { tradeoffChart, zonesFrom, zoneOf } from './tradeoff.js';

const $ = (id) => document.getElementById(id);

const state = {
  scoring: null,
  calculator: 'precise-hbr',
  values: {}, // name -> {raw, unit}: kept across calculators, whose inputs share names
  result: null,
  seq: 0,
  timer: null,
};

/** LIVE_DELAY is how long the calculator waits after a keystroke before asking for the result. */
const LIVE_DELAY = 250;

function announce(text) {
  $('status').textContent = text;
}

function showError(text) {
  $('error-message').textContent = text;
  $('error-panel').hidden = false;
}

function hideError() {
  $('error-panel').hidden = true;
}

function errorText(e, what) {
  if (e instanceof ApiError) {
    if (e.status === 0) return t('error.network', { what });
    return t('error.http', { what, status: e.status + (e.code ? ', ' + e.code : ''), message: e.serverMessage || t('error.no-detail') });
  }
  return t('error.unexpected', { what, message: (e && e.message) || String(e) });
}

// ---------------------------------------------------------------- form

function renderCalculatorSelect() {
  const sel = R.clear($('calculator-select'));
  for (const c of state.scoring.calculators()) {
    sel.append(R.el('option', { value: c.id, selected: c.id === state.calculator }, cfgText('calc.' + c.id + '.title', c.title || c.id)));
  }
}

/**
 * fieldFor builds one input's label and control: a number field (with a
 * unit choice when several units are accepted), or one click per answer
 * for yes/no, sex and the other choices, with "not given" to leave it out.
 */
function fieldFor(name, isAlternative) {
  const s = state.scoring;
  const type = s.inputType(name);
  const id = 'ev-in-' + name;
  const label = R.inputLabel(s, name);
  const saved = state.values[name] || {};
  const field = R.el('div', { class: 'field' + (isAlternative ? ' alt-field' : ''), 'data-testid': 'field-' + name, dataset: { field: name } });
  if (type === 'number') {
    field.append(R.el('label', { for: id }, label));
    field.append(R.el('input', { type: 'number', id, inputmode: 'decimal', step: 'any', 'data-input': name, 'data-testid': 'input-' + name, value: saved.raw || null, class: 'num-input' }));
    const units = s.units(name);
    if (units.length > 1) {
      const usel = R.el('select', { id: id + '-unit', 'data-unit-for': name, 'data-testid': 'unit-' + name, 'aria-label': t('ev.unit', { name: label }) });
      for (const u of units) usel.append(R.el('option', { value: u.code, selected: (saved.unit || units[0].code) === u.code }, R.unitLabel(s, name, u.code)));
      field.append(usel);
    } else if (units.length === 1) {
      field.append(R.el('span', { class: 'unit' }, R.unitFor(s, name, null).label));
    }
    const p = s.plausible(name);
    if (p) field.append(R.el('span', { class: 'hint' }, t('ev.plausible', { min: p.min, max: p.max })));
    return field;
  }
  const group = R.el('fieldset', { class: 'choice', id, 'data-testid': 'input-' + name });
  group.append(R.el('legend', {}, label));
  const opts = type === 'boolean' ? [['true', t('value.yes')], ['false', t('value.no')]] : s.inputValues(name).map((v) => [v, R.enumLabel(name, v)]);
  opts.push(['', t('ev.not-given')]);
  const seg = R.el('div', { class: 'segmented' });
  for (const [v, text] of opts) {
    const oid = id + '-' + (v === 'true' ? 'yes' : v === 'false' ? 'no' : v || 'none');
    seg.append(
      R.el('input', { type: 'radio', id: oid, name: id, value: v, checked: (saved.raw || '') === v, 'data-input': name, 'data-testid': 'answer-' + name }),
      R.el('label', { for: oid }, text),
    );
  }
  group.append(seg);
  field.append(group);
  return field;
}

/**
 * renderInputs lists the calculator's inputs in configured order. An input
 * that can be computed from others (eGFR from creatinine and sex) says so,
 * and those others follow it, indented.
 */
function renderInputs() {
  const s = state.scoring;
  const c = s.calculator(state.calculator);
  const box = R.clear($('inputs'));
  $('calculator-description').textContent = c ? cfgText('calc.' + c.id + '.description', c.description || '') : '';
  if (!c) return;
  for (const i of c.inputs || []) {
    box.append(fieldFor(i.name, i.role === 'alternative'));
    if (i.alternative && i.alternative.length) {
      box.append(R.el('p', { class: 'alt-note', 'data-testid': 'alt-' + i.name }, t('ev.alternative', { name: R.inputLabel(s, i.name), others: i.alternative.map((a) => R.inputLabel(s, a)).join(', ') })));
    }
  }
}

function collectInputs() {
  const s = state.scoring;
  const inputs = {};
  for (const ctl of $('inputs').querySelectorAll('[data-input]')) {
    if (ctl.type === 'radio' && !ctl.checked) continue;
    const name = ctl.dataset.input;
    const raw = ctl.value;
    if (raw === '') continue;
    const type = s.inputType(name);
    if (type === 'number') {
      const n = Number(raw);
      if (!isFinite(n)) throw new Error(t('ev.not-a-number', { name: R.inputLabel(s, name) }));
      const usel = $('ev-in-' + name + '-unit');
      const q = s.quantity(name);
      inputs[name] = usel && q && usel.value !== q.unit ? { value: n, unit: usel.value } : n;
    } else if (type === 'boolean') inputs[name] = raw === 'true';
    else inputs[name] = raw;
  }
  return inputs;
}

function remember(target) {
  const name = target.dataset.input || target.dataset.unitFor;
  if (!name) return;
  const v = state.values[name] || {};
  if (target.dataset.unitFor) v.unit = target.value;
  else v.raw = target.value;
  state.values[name] = v;
}

// ---------------------------------------------------------------- result

function renderResult() {
  const r = state.result;
  const s = state.scoring;
  const out = R.clear($('ev-result'));
  if (!r) {
    out.hidden = true;
    return;
  }
  out.hidden = false;
  const cfg = s.calculator(r.calculator) || {};
  out.append(R.el('h2', { id: 'ev-result-title' }, cfgText('calc.' + r.calculator + '.title', r.title || r.calculator)));
  const ctx = { idPrefix: 'ev', editable: false, points: true, provenance: false, staleDays: null, units: null };
  // The trade-off model says it in its caveat below; every other result here.
  const note = cfg.kind === 'hazard' ? null : R.unverifiedNote(r, 'ev');
  if (note) out.append(note);
  if (cfg.kind === 'points') {
    out.append(R.scoreBlock(s, r.calculator, r, 'ev'));
    const curve = s.riskCurve(r.calculator);
    const pct = curve ? R.valueOf(r, curve.name) : null;
    if (pct && typeof pct.value === 'number') out.append(R.el('p', { class: 'bleeding-risk', 'data-testid': 'ev-bleeding' }, t('phbr.bleeding', { pct: risk(pct.value) })));
    out.append(R.el('div', { class: 'table-wrap' }, R.factorTable(s, R.componentRows(r, s), Object.assign({}, ctx, { caption: t('table.components') }))));
  } else if (cfg.kind === 'criteria') {
    out.append(R.arcSummary(s, r, 'ev'));
    out.append(R.el('div', { class: 'table-wrap' }, R.criteriaTable(s, r, Object.assign({}, ctx, { caption: t('table.criteria') }))));
  } else if (cfg.kind === 'hazard') {
    const h = s.hazard();
    out.append(R.el('p', { class: 'unverified', 'data-testid': 'ev-unverified' }, R.el('strong', {}, (h && h.caveat ? cfgText('calc.' + r.calculator + '.caveat', h.caveat) : '') || t('tradeoff.unverified'))));
    const b = R.valueOf(r, 'bleeding_1y');
    const th = R.valueOf(r, 'thrombotic_1y');
    const bv = b && typeof b.value === 'number' ? b.value : null;
    const tv = th && typeof th.value === 'number' ? th.value : null;
    const zones = zonesFrom(h);
    const zone = bv !== null && tv !== null ? zoneOf(bv, tv, zones) : null;
    // Every percentage shown is labelled: a different model, unverified.
    const note = cfgText('calc.' + r.calculator + '.percent-note', (b && b.note) || (h && h.percent_note) || '') || t('tradeoff.unverified');
    const text = bv !== null && tv !== null ? t('tradeoff.values', { bleeding: risk(bv), thrombotic: risk(tv) }) + ' ' + note + (zone ? ' ' + t('tradeoff.zone.' + zone) : '') : t('tradeoff.no-values');
    const fig = R.el('figure', { class: 'tradeoff-figure' });
    fig.append(tradeoffChart({ bleeding: bv, thrombotic: tv, zones, idPrefix: 'ev-tradeoff', labels: { title: t('tradeoff.chart.title'), desc: text, x: t('tradeoff.axis.x'), y: t('tradeoff.axis.y'), patient: t('tradeoff.patient') } }));
    fig.append(R.el('figcaption', { 'data-testid': 'ev-tradeoff-values' }, text));
    out.append(fig);
    const legend = R.el('ul', { class: 'legend' });
    for (const z of ['thrombotic', 'equivalent', 'bleeding']) legend.append(R.el('li', {}, R.el('span', { class: 'swatch swatch-' + z, 'aria-hidden': 'true' }), ' ', t('tradeoff.legend.' + z)));
    out.append(legend);
  } else {
    const list = R.el('ul', { 'data-testid': 'ev-values' });
    for (const v of r.values || []) {
      if (v.value === null || v.value === undefined) continue;
      const unit = v.name === 'egfr' || v.name === 'crcl' ? s.unitLabel(v.name) : v.unit || '';
      const cat = v.category ? ' (' + R.categoryLabel(s, r.calculator, v.category) + ')' : '';
      list.append(R.el('li', { class: 'value-line', dataset: { name: v.name } }, R.el('strong', {}, R.inputLabel(s, v.name) + ': '), (typeof v.value === 'number' ? number(v.value, 2) : String(v.value)) + (unit ? ' ' + unit : '') + cat));
    }
    out.append(list);
  }
  const st = R.statusText(s, r);
  if (st && cfg.kind !== 'points' && cfg.kind !== 'criteria') out.append(R.el('p', { class: 'result-status', 'data-testid': 'ev-status' }, st));
  const warnings = r.warnings || [];
  if (warnings.length) {
    out.append(R.el('h3', {}, t('warnings.title')));
    out.append(R.el('ul', { 'data-testid': 'ev-warnings' }, warnings.map((w) => R.el('li', { 'data-testid': 'warning', 'data-kind': w.kind || '' }, w.text || String(w)))));
  }
  const recs = (r.recommendations || []).map((id) => s.recommendation(id)).filter(Boolean);
  if (recs.length) {
    out.append(R.el('h3', {}, t('rec.title')));
    out.append(
      R.el(
        'ul',
        { 'data-testid': 'ev-recommendations' },
        recs.map((rec) =>
          R.el('li', { 'data-testid': 'recommendation', dataset: { id: rec.id } }, R.el('strong', {}, cfgText('rec.' + rec.id + '.title', rec.title)), ' ', cfgText('rec.' + rec.id + '.text', rec.text), rec.provenance ? R.el('span', { class: 'rec-source' }, t('rec.source', { source: s.citation(rec.provenance.source) })) : null),
        ),
      ),
    );
    out.append(R.el('p', { class: 'disclaimer' }, cfgText('rec.disclaimer', s.disclaimer())));
  }
  const refs = R.referencesBlock(s, r);
  if (refs) out.append(refs);
}

/** later asks for the result a moment after the last change. */
function later() {
  clearTimeout(state.timer);
  state.timer = setTimeout(evaluate, LIVE_DELAY);
}

async function evaluate() {
  clearTimeout(state.timer);
  hideError();
  let inputs;
  try {
    inputs = collectInputs();
  } catch (e) {
    showError(e.message);
    return;
  }
  const seq = ++state.seq;
  announce(t('status.calculating'));
  try {
    const r = await call('api/evaluate', { method: 'POST', body: { calculator: state.calculator, inputs } });
    if (seq !== state.seq) return;
    state.result = r;
    renderResult();
    announce(t('status.calculated'));
  } catch (e) {
    if (seq === state.seq) {
      showError(errorText(e, t('error.phase.evaluate')));
      announce(t('status.failed'));
    }
  }
}

function bind() {
  $('lang-select').addEventListener('change', (e) => setLang(e.target.value));
  onLangChange(() => {
    if (!state.scoring) return;
    renderCalculatorSelect();
    renderInputs();
    // The result's sentences are the server's: ask again in the new language.
    evaluate();
  });
  $('calculator-select').addEventListener('change', (e) => {
    state.calculator = e.target.value;
    state.result = null;
    hideError();
    renderInputs();
    renderResult();
    evaluate();
  });
  // The result follows every change: a click at once, typing a moment
  // after the last keystroke.
  $('inputs').addEventListener('change', (e) => {
    remember(e.target);
    evaluate();
  });
  $('inputs').addEventListener('input', (e) => {
    remember(e.target);
    if (e.target.type === 'number') later();
  });
  $('evaluate-form').addEventListener('submit', (e) => {
    e.preventDefault();
    evaluate();
  });
  $('clear-btn').addEventListener('click', () => {
    state.values = {};
    state.result = null;
    hideError();
    renderInputs();
    renderResult();
    evaluate();
  });
}

async function main() {
  const err = await loadI18n();
  bind();
  if (err) showError('The page text (messages.json) could not be loaded: ' + err.message + '. The page is shown in English.');
  announce(t('status.loading-config'));
  try {
    state.scoring = new Scoring(await call('api/scoring-config'));
    useConfigParams((key) => state.scoring.textParams(key));
  } catch (e) {
    showError(errorText(e, t('error.phase.config')));
    announce(t('status.failed'));
    return;
  }
  const want = new URLSearchParams(location.search).get('calculator');
  if (want && state.scoring.calculator(want)) state.calculator = want;
  else if (!state.scoring.calculator(state.calculator) && state.scoring.calculators().length) state.calculator = state.scoring.calculators()[0].id;
  renderCalculatorSelect();
  renderInputs();
  await evaluate();
}

main();
