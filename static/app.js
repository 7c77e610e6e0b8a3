// app.js runs the page an interventional cardiologist sees inside the EHR.
//
// Flow: the callback redirects to this page with #handoff=<code>, a
// one-time code bound to this browser. The page takes it out of the address
// bar (history.replaceState) and exchanges it at once with POST
// api/session for the session handle, which never rides in a URL. The
// handle lives only in sessionStorage (one per tab, so two launches in two
// tabs stay separate; in memory only when storage is blocked). Every API
// call sends it as
// Authorization: Bearer, with cookies omitted, so the page works in an EHR
// iframe with third-party cookies blocked. The handle is never written into
// the DOM, a URL or the console.

import { loadI18n, t, has, cfgText, useConfigParams, setLang, onLangChange, number, risk, date, longDate, list, dateTime } from './i18n.js';
import { Scoring, ruleHolds } from './scoring.js';
import { call, ApiError } from './api.js';
import * as R from './render.js';
import { tradeoffChart, zonesFrom, zoneOf } from './tradeoff.js';

const SESSION_KEY = 'smartcalc.session';
const HANDLE_RE = /^[A-Za-z0-9_-]{16,512}$/;

const $ = (id) => document.getElementById(id);

/** sessionStore keeps the handle in this tab's sessionStorage, or in memory when storage is refused. */
const sessionStore = (() => {
  let memory = null;
  function storage() {
    try {
      const s = window.sessionStorage;
      s.getItem(SESSION_KEY);
      return s;
    } catch (e) {
      return null;
    }
  }
  return {
    get() {
      const s = storage();
      if (s) {
        try {
          return s.getItem(SESSION_KEY) || memory;
        } catch (e) {
          return memory;
        }
      }
      return memory;
    },
    set(h) {
      memory = h;
      const s = storage();
      try {
        if (s) s.setItem(SESSION_KEY, h);
      } catch (e) {
        // Kept in memory: a reload will ask for a relaunch.
      }
    },
    clear() {
      memory = null;
      const s = storage();
      try {
        if (s) s.removeItem(SESSION_KEY);
      } catch (e) {
        // Nothing stored.
      }
    },
  };
})();

/**
 * takeSession takes a #handoff= code out of the address bar and returns
 * what to do: exchange the new code, else use the handle this tab already
 * holds. A malformed code clears the tab's session.
 */
function takeSession() {
  const frag = location.hash.replace(/^#/, '');
  if (frag) {
    const params = new URLSearchParams(frag);
    if (params.has('handoff')) {
      const code = params.get('handoff') || '';
      params.delete('handoff');
      const rest = params.toString();
      history.replaceState(history.state, '', location.pathname + location.search + (rest ? '#' + rest : ''));
      sessionStore.clear();
      if (HANDLE_RE.test(code)) return { handle: null, handoff: code, fresh: true };
      return { handle: null, fresh: true, malformed: true };
    }
  }
  return { handle: sessionStore.get(), fresh: false };
}

const HANDOFF_BINDING_KEY = 'smartcalc.handoff-binding';

/**
 * redeem exchanges a hand-off code for the session handle. The callback's
 * binding cookie goes with it (credentials: same-origin), or where the
 * browser refused that cookie, the nonce it left in sessionStorage.
 */
async function redeem(l) {
  if (!l.handoff) return l;
  let binding = '';
  try {
    binding = window.sessionStorage.getItem(HANDOFF_BINDING_KEY) || '';
    window.sessionStorage.removeItem(HANDOFF_BINDING_KEY);
  } catch (e) {
    // Storage refused: the cookie must carry the binding.
  }
  try {
    const body = { handoff: l.handoff };
    if (binding) body.binding = binding;
    const res = await call('api/session', { method: 'POST', body, credentials: 'same-origin' });
    if (!res || !HANDLE_RE.test(res.session || '')) return { handle: null, fresh: true, reason: 'handoff' };
    sessionStore.set(res.session);
    return { handle: res.session, fresh: true };
  } catch (e) {
    return { handle: null, fresh: true, reason: e instanceof ApiError && e.status === 401 ? 'handoff' : 'missing' };
  }
}

// Take the handle before anything else runs (module scripts run once the
// document is parsed, before any fetch of ours).
let launch = takeSession();

const state = {
  scoring: null,
  context: null,
  assessment: null,
  overrides: {},
  // The unit each switchable input is shown in (UCUM code), by input.
  units: {},
  seq: 0,
  lastAction: null,
  relaunchReason: null,
  relaunchParams: null,
  loaded: false,
};

// ---------------------------------------------------------------- status

function announce(text) {
  $('status').textContent = text;
}

function showError(text) {
  $('error-message').textContent = text;
  $('error-panel').hidden = false;
}

function hideError() {
  $('error-panel').hidden = true;
  $('error-message').textContent = '';
}

function showRelaunch(reason, params) {
  state.relaunchReason = reason;
  state.relaunchParams = params || null;
  $('app').hidden = true;
  hideError();
  $('relaunch').hidden = false;
  $('relaunch-reason').textContent = t('relaunch.reason.' + reason, params);
  $('print-btn').disabled = true;
  $('signout-btn').disabled = true;
  announce(t('relaunch.title'));
}

/** endedReason says why the server ended a session: idle, its lifetime, a sign-out in another tab sharing it, or expired or unknown. */
function endedReason(e) {
  if (e.code === 'session_signed_out') return ['signed-out-elsewhere'];
  const m = e.limitMinutes;
  if (e.code === 'session_idle' && m) return ['idle', { minutes: number(m) }];
  if (e.code === 'session_lifetime' && m) return ['lifetime', { hours: number(m / 60, 1) }];
  return ['expired'];
}

/** errorText writes a specific message for a failed call during phase. */
function errorText(e, phase) {
  const what = t('error.phase.' + phase);
  if (e instanceof ApiError) {
    if (e.status === 0) return t('error.network', { what });
    const known = 'error.status.' + e.status;
    const fallback = has(known) ? t(known) : t('error.no-detail');
    return t('error.http', { what, status: e.status + (e.code ? ', ' + e.code : ''), message: e.serverMessage || fallback });
  }
  return t('error.unexpected', { what, message: (e && e.message) || String(e) });
}

function handleError(e, phase) {
  if (e instanceof ApiError && e.sessionGone) {
    sessionStore.clear();
    launch = { handle: null, fresh: false };
    showRelaunch(...endedReason(e));
    return;
  }
  showError(errorText(e, phase));
  announce(t('status.failed'));
}

// ---------------------------------------------------------------- loading

async function loadAll() {
  state.lastAction = loadAll;
  hideError();
  $('relaunch').hidden = true;
  announce(t('status.loading'));
  $('app').setAttribute('aria-busy', 'true');
  const seq = ++state.seq;
  const handle = launch.handle;
  try {
    const [cfg, ctx, asmt] = await Promise.all([
      call('api/scoring-config'),
      call('api/context', { handle }),
      call('api/assessment', { handle }),
    ]);
    if (seq !== state.seq) return;
    state.scoring = new Scoring(cfg);
    useConfigParams((key) => state.scoring.textParams(key));
    state.context = ctx;
    state.assessment = asmt;
    state.overrides = {};
    for (const name of UNIT_SWITCHES) {
      if (!state.units[name]) state.units[name] = (state.scoring.units(name)[0] || {}).code || '';
    }
    applyStyle(ctx.style);
    state.loaded = true;
    $('app').hidden = false;
    $('print-btn').disabled = false;
    $('signout-btn').disabled = false;
    render();
    announce(t('status.loaded'));
  } catch (e) {
    if (seq === state.seq) handleError(e, 'load');
  } finally {
    if (seq === state.seq) $('app').removeAttribute('aria-busy');
  }
}

/**
 * relocalize asks again for the context and the assessment (with the
 * entered values) in the page's new language: the server writes its
 * sentences in the language each request asks for.
 */
async function relocalize() {
  state.lastAction = relocalize;
  const seq = ++state.seq;
  const handle = launch.handle;
  $('app').setAttribute('aria-busy', 'true');
  announce(t('status.loading'));
  try {
    const [ctx, data] = await Promise.all([call('api/context', { handle }), fetchAssessment(handle)]);
    if (seq !== state.seq) return;
    state.context = ctx;
    state.assessment = data;
    hideError();
    render();
    announce(t('status.loaded'));
  } catch (e) {
    if (seq === state.seq) handleError(e, 'load');
  } finally {
    if (seq === state.seq) $('app').removeAttribute('aria-busy');
  }
}

/**
 * fetchAssessment asks for the assessment: with the entered values
 * (POST) when there are any, else as the record gives it (GET).
 */
function fetchAssessment(handle) {
  const inputs = state.overrides;
  return Object.keys(inputs).length ? call('api/assessment', { method: 'POST', body: { inputs }, handle }) : call('api/assessment', { handle });
}

/** recompute asks the server to recompute every calculator with the entered values. */
async function recompute() {
  state.lastAction = recompute;
  const seq = ++state.seq;
  const handle = launch.handle;
  $('app').setAttribute('aria-busy', 'true');
  announce(t('status.recalculating'));
  try {
    const data = await fetchAssessment(handle);
    if (seq !== state.seq) return;
    state.assessment = data;
    hideError();
    render();
    announce(t('status.updated'));
  } catch (e) {
    if (seq === state.seq) handleError(e, 'whatif');
  } finally {
    if (seq === state.seq) $('app').removeAttribute('aria-busy');
  }
}

function setOverride(name, value) {
  if (value === undefined) delete state.overrides[name];
  else state.overrides[name] = value;
  recompute();
}

/** applyStyle takes the EHR's SMART style colours and font, when well formed. */
function applyStyle(style) {
  if (!style || typeof style !== 'object') return;
  const root = document.documentElement.style;
  const colour = /^(#[0-9a-f]{3,8}|rgba?\([\d\s.,%]+\))$/i;
  const map = { color_background: '--ehr-bg', color_text: '--ehr-text', color_highlight: '--ehr-highlight', color_border: '--ehr-border' };
  for (const [k, v] of Object.entries(map)) if (typeof style[k] === 'string' && colour.test(style[k].trim())) root.setProperty(v, style[k].trim());
  if (typeof style.font_family_base === 'string' && /^[\w\s,"'-]{1,200}$/.test(style.font_family_base)) root.setProperty('--ehr-font', style.font_family_base);
}

// ---------------------------------------------------------------- render

function render() {
  if (!state.assessment || !state.scoring) return;
  const focus = document.activeElement && document.activeElement.id ? document.activeElement.id : null;
  const results = R.byCalculator(state.assessment.results);
  renderBanner();
  renderSummary(results);
  renderKeyInputs(results);
  renderUnits();
  renderWarnings();
  renderPreciseHBR(results);
  renderArc(results);
  renderDapt(results);
  renderRecommendations(results);
  renderTradeoff(results);
  renderMeta();
  $('reset-btn').disabled = Object.keys(state.overrides).length === 0;
  if (focus && $(focus) && document.activeElement !== $(focus)) $(focus).focus();
}

/** UNIT_SWITCHES are the inputs whose unit the clinician can switch: the page shows them, and takes them, in that unit. */
const UNIT_SWITCHES = ['hemoglobin', 'creatinine', 'wbc'];

function ctxFor(prefix, extra) {
  const gaps = new Map(((state.assessment && state.assessment.gaps) || []).map((g) => [g.input, g]));
  return Object.assign({ idPrefix: prefix, editable: true, points: false, units: state.units, gaps, staleDays: state.scoring.staleDays() }, extra || {});
}

function patient() {
  return (state.context && state.context.patient) || (state.assessment && state.assessment.patient) || {};
}

function renderBanner() {
  const banner = $('patient-banner');
  const need = state.context ? state.context.need_patient_banner : true;
  banner.hidden = need === false;
  const p = patient();
  // A refused or failed read is "Not available", with why: never "not
  // recorded", which would say the record holds nothing.
  const gone = p.unavailable ? t('value.not-available') : t('value.not-recorded');
  $('patient-name').textContent = p.name || gone;
  // An impossible birth date (in the future, or beyond the oldest age)
  // gives no age: the banner says why, in the reader's language.
  const age = $('patient-age');
  age.classList.toggle('birth-problem', !!p.birth_date_issue);
  if (p.birth_date_issue) age.setAttribute('role', 'alert'); else age.removeAttribute('role');
  if (p.birth_date_issue) {
    age.textContent = t('patient.birth_date_' + (p.birth_date_issue === 'future' ? 'future' : 'too_old'), { date: p.birth_date, max: p.max_age });
  } else {
    age.textContent = typeof p.age === 'number' ? t('patient.age_years', { age: p.age }) : gone;
  }
  $('patient-birth-date').textContent = p.birth_date ? (p.birth_date_issue ? p.birth_date : longDate(p.birth_date)) : gone;
  $('patient-sex').textContent = p.sex ? R.enumLabel('sex', p.sex) : gone;
  $('patient-mrn').textContent = p.mrn || gone;
  banner.dataset.available = p.unavailable ? 'false' : 'true';
  const note = $('patient-note');
  note.textContent = p.unavailable || '';
  note.hidden = !note.textContent;
}

function scoreSummary(s, id, r) {
  const v = R.valueOf(r, 'score');
  const lb = R.valueOf(r, 'score_lower_bound');
  if (r && (!v || typeof v.value !== 'number') && lb && typeof lb.value === 'number') return t('summary.lower-bound', { title: r.title || id, score: lb.value });
  if (!r || !v || typeof v.value !== 'number') return t('summary.none', { title: (r && r.title) || id });
  return t('summary.score', { title: r.title || id, score: v.value, category: R.categoryLabel(s, id, v.category), range: R.rangeText(s, id, v.category) });
}

// renderVerdict shows the assessment's one answer (the server's summary):
// the verdict in the colour of its risk level, why, the one bleeding
// figure, marks for stale and entered inputs, and what it assumes. The
// sentences are the server's, in the page's language.
function renderVerdict(results) {
  const v = R.clear($('verdict'));
  const sm = state.assessment.summary;
  if (!sm) return;
  const verdict = sm.hbr === true ? 'hbr' : sm.hbr === false ? 'not-hbr' : 'undetermined';
  v.dataset.hbr = verdict;
  const level = verdict === 'hbr' ? 'high' : verdict === 'not-hbr' ? 'low' : 'unknown';
  v.append(R.el('p', { class: 'verdict-head ' + R.riskClass(level), 'data-testid': 'verdict-head' }, t('verdict.' + verdict)));
  v.append(R.el('p', { class: 'verdict-why', 'data-testid': 'verdict-why' }, sm.text || ''));
  if (sm.risk) {
    const p = R.el('p', { class: 'verdict-risk', 'data-testid': 'verdict-risk' }, t('verdict.risk', { label: sm.risk.label, risk: risk(sm.risk.value) }));
    // The one bleeding figure is read off PRECISE-HBR's risk curve: marked when that curve is not verified.
    const ph = results.get('precise-hbr');
    if (ph && (ph.unverified || []).includes('risk_curve')) p.append(' ', R.unverifiedBadge(ph));
    v.append(p);
  }
  const stale = staleInputs(results);
  if (stale.length) {
    const items = stale.map((i) => t('mark.item', { name: shortName(i.name), date: longDate(i.source.date) }));
    v.append(R.el('p', { class: 'mark mark-stale', 'data-testid': 'verdict-stale' }, R.el('span', { class: 'badge stale' }, t('mark.stale.badge')), ' ',
      t('mark.stale', { days: state.scoring.staleDays(), items: list(items) })));
  }
  if (sm.entered && sm.entered.length) {
    v.append(R.el('p', { class: 'mark mark-entered verdict-entered', 'data-testid': 'verdict-entered' }, R.originBadge({ origin: 'entered' }), ' ', sm.entered_text || ''));
  }
  for (const a of sm.assumptions || []) {
    v.append(R.el('p', { class: 'assumption', 'data-testid': 'verdict-assumption' }, a.statement));
  }
  const plan = R.clear($('answer-plan'));
  plan.append(renderPresentation(sm));
  if (sm.regimen) plan.append(renderRegimen(sm.regimen));
  if (sm.plan && sm.plan.length) plan.append(renderPlan(sm));
}

/** staleInputs are the record values older than the lookback window, once each, as the scores used them. */
function staleInputs(results) {
  const out = new Map();
  for (const r of results.values()) {
    for (const i of (r && r.inputs) || []) {
      if (i.stale && i.origin === 'record' && i.source && i.source.date && !out.has(i.name)) out.set(i.name, i);
    }
  }
  return [...out.values()];
}

/** shortName is a lab's short name (Hb, eGFR), else the input's label. */
function shortName(name) {
  return has('short.' + name) ? t('short.' + name) : R.inputLabel(state.scoring, name);
}

// renderPresentation says what the index PCI was for, the records it was
// read from with their dates, and the PCI's date; it asks the clinician,
// whose answer replaces the record's (an entered value like any other).
function renderPresentation(sm) {
  const box = R.el('div', { class: 'presentation', 'data-testid': 'presentation', dataset: { presentation: sm.presentation || 'unknown', origin: sm.presentation_origin || '' } });
  const text = R.el('p', { class: 'verdict-presentation', 'data-testid': 'verdict-presentation' }, sm.presentation_text || '');
  const from = (sm.presentation_evidence || []).filter((e) => e.display || e.label);
  if (sm.presentation_origin === 'entered') text.append(' ', R.originBadge({ origin: 'entered' }));
  else if (from.length) {
    text.append(' ', R.el('span', { class: 'source', title: from.map(R.sourceTitle).filter(Boolean).join('; ') || null },
      t('source.list', { records: from.map(sourceLine).join(t('list.series')) })));
  }
  box.append(text);
  if (sm.pci && sm.pci.date) {
    box.append(R.el('p', { class: 'verdict-pci', 'data-testid': 'verdict-pci', title: R.sourceTitle(sm.pci) },
      t('verdict.pci', { date: longDate(sm.pci.date), procedure: sm.pci.label || sm.pci.display || R.codeText(sm.pci) })));
  }
  // One click per answer: ACS, CCS, or back to the record (or unknown).
  const name = 'pci_presentation';
  const current = state.overrides[name] !== undefined ? state.overrides[name] : '';
  const group = R.el('fieldset', { class: 'presentation-question no-print', 'data-testid': 'presentation-question' });
  group.append(R.el('legend', {}, cfgText('input.' + name, state.scoring.inputLabel(name))));
  const answers = [['acs', R.enumLabel(name, 'acs')], ['ccs', R.enumLabel(name, 'ccs')], ['', sm.presentation_origin === 'record' ? t('presentation.record') : t('value.unknown')]];
  const seg = R.el('div', { class: 'segmented' });
  for (const [value, label] of answers) {
    const id = 'presentation-' + (value || 'none');
    seg.append(
      R.el('input', { type: 'radio', id, name: 'presentation-answer', value, checked: current === value, 'data-input': name }),
      R.el('label', { for: id, class: 'answer' }, label),
    );
  }
  group.append(seg);
  box.append(group);
  return box;
}

/** sourceLine names a record as a person reads it: its words and its date. */
function sourceLine(src) {
  const what = src.label || src.display || '';
  return src.date ? t('source.dated', { what, date: longDate(src.date) }) : what;
}

// renderRegimen lists the antithrombotic drugs the record shows now, each
// with the ingredient it resolves to and its date (the FHIR reference on
// hover).
function renderRegimen(rg) {
  const box = R.el('div', { class: 'regimen', 'data-testid': 'regimen' });
  box.append(R.el('h3', { class: 'plan-title' }, t('regimen.title')));
  const ul = R.el('ul', {});
  for (const [key, srcs] of [['aspirin', rg.aspirin], ['p2y12', rg.p2y12], ['oac', rg.oral_anticoagulant], ['vascular', rg.vascular_dose]]) {
    for (const src of srcs || []) {
      const shown = src.display || R.codeText(src);
      const drug = src.ingredient && !shown.toLowerCase().startsWith(src.ingredient.toLowerCase()) ? t('regimen.ingredient', { ingredient: src.ingredient, what: shown }) : shown;
      const when = src.date ? t('source.dated', { what: drug, date: longDate(src.date) }) : drug;
      ul.append(R.el('li', { 'data-testid': 'regimen-' + key, title: R.sourceTitle(src), dataset: { ingredient: src.ingredient || '', reference: src.reference || '' } }, t('regimen.line', { kind: t('regimen.' + key), drug: when })));
    }
  }
  // No drug listed means none only when the medications were read.
  const dapt = state.assessment.dapt || {};
  if (!ul.children.length) ul.append(dapt.present === null || dapt.present === undefined
    ? R.el('li', { 'data-testid': 'regimen-unavailable' }, t('regimen.unavailable'))
    : R.el('li', { 'data-testid': 'regimen-none' }, t('regimen.none')));
  box.append(ul);
  return box;
}

// renderPlan lists the guideline strategy for this patient: each item with
// the conditions it assumes, its text and its citations, each marked
// verified or not (in words, not colour).
function renderPlan(sm) {
  const s = state.scoring;
  const box = R.el('div', { class: 'plan', 'data-testid': 'plan' });
  box.append(R.el('h3', { class: 'plan-title' }, t('plan.title')));
  const names = (s.json.plan || {}).conditions || {};
  const ul = R.el('ul', { class: 'plan-items' });
  for (const it of sm.plan) {
    const conds = list((it.if || []).map((c) => cfgText('plan.condition.' + c, names[c] || c)));
    const li = R.el('li', { class: 'plan-item', 'data-testid': 'plan-item', dataset: { pathway: it.pathway, presentation: it.presentation } });
    li.append(R.el('p', { class: 'plan-text' }, conds ? R.el('strong', {}, t('plan.if', { conditions: conds }) + ' ') : null, it.text));
    const cites = R.el('ul', { class: 'plan-citations' });
    for (const c of it.citations || []) {
      const name = s.citation(c.guideline) || c.guideline;
      const verified = c.verified === true;
      cites.append(R.el('li', { 'data-testid': 'plan-citation', dataset: { verified: String(verified) } },
        t('plan.citation', { guideline: name, section: c.section || '', class: c.class || '?', level: c.level || '?' }), ' ',
        R.el('span', { class: 'badge ' + (verified ? 'badge-verified' : 'badge-unverified') }, t(verified ? 'plan.verified' : 'plan.unverified'))));
    }
    // Whether the item's sources were checked against the guideline shows
    // without opening them: the summary counts the verified and the not
    // verified, and the item carries the marks for print and tests.
    const n = (it.citations || []).length;
    const ok = (it.citations || []).filter((c) => c.verified === true).length;
    const key = ok === n ? 'plan.sources.all-verified' : ok === 0 ? 'plan.sources.none-verified' : 'plan.sources.marked';
    li.dataset.verified = String(ok);
    li.dataset.unverified = String(n - ok);
    const d = R.el('details', { class: 'plan-sources' }, R.el('summary', { 'data-testid': 'plan-sources-summary' }, t(key, { n, verified: ok, unverified: n - ok })), cites);
    li.append(d);
    ul.append(li);
  }
  box.append(ul);
  box.append(R.el('p', { class: 'disclaimer' }, cfgText('plan.disclaimer', (s.json.plan || {}).disclaimer || '')));
  return box;
}

function renderSummary(results) {
  const s = state.scoring;
  renderVerdict(results);
  const list = R.clear($('result-summary-list'));
  const mark = (r) => {
    const b = R.unverifiedBadge(r);
    return b ? [' ', b] : [];
  };
  list.append(R.el('li', { 'data-testid': 'summary-precise-hbr' }, scoreSummary(s, 'precise-hbr', results.get('precise-hbr')), ...mark(results.get('precise-hbr'))));
  const arc = results.get('arc-hbr');
  const hbr = R.valueOf(arc, 'hbr');
  const arcText = !arc ? t('summary.unavailable', { title: 'ARC-HBR', status: t('status.absent') }) : hbr && hbr.value === true ? t('arc.hbr') : hbr && hbr.value === false && arc.status === 'ok' ? t('arc.not-hbr') : t('arc.undetermined', { unknown: (arc.criteria || []).filter((c) => c.met === null || c.met === undefined).length });
  list.append(R.el('li', { 'data-testid': 'summary-arc-hbr' }, t('summary.arc', { title: (arc && arc.title) || 'ARC-HBR', verdict: arcText }), ...mark(arc)));
  list.append(R.el('li', { 'data-testid': 'summary-precise-dapt' }, scoreSummary(s, 'precise-dapt', results.get('precise-dapt')), ...mark(results.get('precise-dapt'))));
}

/** KEY_INPUTS are the inputs shown with the answer, in the first screen: what its scores rest on. */
const KEY_INPUTS = ['age', 'hemoglobin', 'egfr', 'creatinine', 'wbc', 'platelets', 'oral_anticoagulation', 'prior_bleeding'];

/**
 * renderKeyInputs shows the answer's inputs beside it: each value in the
 * unit the page shows it in (with the value as reported when that differs),
 * its date and where it came from, marked stale or entered.
 */
function renderKeyInputs(results) {
  const s = state.scoring;
  const box = R.clear($('key-inputs'));
  const ctx = ctxFor('key');
  const found = new Map();
  for (const id of ['precise-hbr', 'arc-hbr', 'precise-dapt', 'crcl-cockcroft-gault']) {
    for (const i of ((results.get(id) || {}).inputs) || []) {
      const old = found.get(i.name);
      if (!old || ((old.value === null || old.value === undefined) && i.value !== null && i.value !== undefined)) found.set(i.name, i);
    }
  }
  const body = R.el('tbody');
  for (const name of KEY_INPUTS) {
    const rec = found.get(name) || null;
    if (!rec && name === 'creatinine') continue;
    const known = rec && rec.value !== null && rec.value !== undefined;
    const tr = R.el('tr', { class: (rec && rec.stale ? 'is-stale ' : '') + (rec && rec.origin === 'entered' ? 'is-entered' : ''), 'data-testid': 'key-' + name,
      dataset: { input: name, origin: rec ? rec.origin : 'none', stale: rec && rec.stale ? 'true' : 'false' } });
    tr.append(R.el('th', { scope: 'row' }, shortName(name)));
    const val = R.el('td', { class: 'key-val' });
    if (known) {
      const unit = s.inputType(name) === 'number' ? ' ' + R.unitFor(s, name, ctx).label : '';
      val.append(R.el('span', { class: 'key-value' }, R.displayValue(s, name, rec.value, ctx) + unit));
      const rep = rec.origin !== 'entered' ? R.reportedText(s, name, rec, ctx) : '';
      if (rep) val.append(' ', R.el('span', { class: 'reported' }, rep));
    } else val.append(R.el('span', { class: 'key-value missing' }, rec && rec.origin === 'unavailable' ? t('value.not-available') : t('value.missing')));
    tr.append(val);
    const when = rec && rec.source && rec.source.date && !rec.source.label ? rec.source.date : '';
    const dateCell = R.el('td', { class: 'key-date' }, when ? longDate(when) : '');
    if (rec && rec.stale && rec.origin !== 'entered') dateCell.append(' ', R.el('span', { class: 'badge stale', 'data-testid': 'stale', title: t('badge.stale', { days: s.staleDays() }) }, t('badge.stale.short')));
    tr.append(dateCell);
    tr.append(R.el('td', { class: 'key-origin' }, R.originBadge(rec || { origin: 'asked' })));
    body.append(tr);
  }
  box.append(body);
}

/** renderUnits draws the unit switches: hemoglobin, creatinine and WBC, each shown (and entered) in the unit chosen. */
function renderUnits() {
  const box = R.clear($('unit-switches'));
  for (const name of UNIT_SWITCHES) {
    const units = state.scoring.units(name);
    if (units.length < 2) continue;
    const group = R.el('fieldset', { class: 'unit-switch', 'data-testid': 'unit-' + name });
    group.append(R.el('legend', {}, t('units.label', { name: shortName(name) })));
    const seg = R.el('div', { class: 'segmented' });
    // Units that only rename the canonical one (10*3/uL) add no choice.
    const seen = new Set();
    for (const u of units) {
      if (seen.has(u.toCanonical)) continue;
      seen.add(u.toCanonical);
      const id = 'unit-' + name + '-' + u.code.replace(/[^A-Za-z0-9]/g, '');
      seg.append(
        R.el('input', { type: 'radio', name: 'unit-' + name, id, value: u.code, checked: u.code === state.units[name], 'data-unit-for': name, 'data-testid': 'unit-option' }),
        R.el('label', { for: id }, R.unitLabel(state.scoring, name, u.code)),
      );
    }
    group.append(seg);
    box.append(group);
  }
}

/** WARNING_GROUPS order the server's warning kinds under headings. */
const WARNING_GROUPS = [
  ['access', ['access']],
  ['values', ['range', 'plausible', 'value', 'conflict']],
  ['stale', ['stale']],
  ['record', ['record']],
  ['model', ['extrapolate']],
];

/**
 * renderWarnings lists the server's warnings, grouped: one per problem and
 * input, in the page's language. What is missing is not a warning: each
 * score says what it means for it, and the question is asked beside it.
 */
function renderWarnings() {
  const ws = state.assessment.warnings || [];
  const box = R.clear($('warnings-list'));
  let n = 0;
  for (const [group, kinds] of WARNING_GROUPS) {
    const items = ws.filter((w) => kinds.includes(w.kind));
    if (!items.length) continue;
    const sec = R.el('div', { class: 'warning-group', 'data-testid': 'warning-group', dataset: { group } });
    sec.append(R.el('h3', {}, t('warnings.group.' + group)));
    sec.append(R.el('ul', {}, items.map((w) => R.el('li', { class: 'warning warning-' + w.kind, 'data-kind': w.kind, 'data-input': w.input || '', 'data-testid': 'warning' }, w.text))));
    box.append(sec);
    n += items.length;
  }
  // Kinds this page does not know still show, last.
  const known = WARNING_GROUPS.flatMap(([, k]) => k);
  const rest = ws.filter((w) => !known.includes(w.kind));
  if (rest.length) box.append(R.el('ul', {}, rest.map((w) => R.el('li', { class: 'warning', 'data-kind': w.kind, 'data-testid': 'warning' }, w.text))));
  $('warnings').hidden = n + rest.length === 0;
  $('warnings-count').textContent = n + rest.length ? t('warnings.count', { n: n + rest.length }) : '';
}

function renderPreciseHBR(results) {
  const s = state.scoring;
  const r = results.get('precise-hbr');
  const body = R.clear($('phbr-body'));
  const wrap = R.clear($('phbr-table-wrap'));
  const refs = R.clear($('phbr-refs'));
  if (!r) {
    body.append(R.el('p', { class: 'result-status' }, t('status.absent')));
    return;
  }
  body.append(R.scoreBlock(s, 'precise-hbr', r, 'phbr'));
  const phbrNote = R.unverifiedNote(r, 'phbr');
  if (phbrNote) body.append(phbrNote);
  const curve = s.riskCurve('precise-hbr');
  const pct = R.valueOf(r, (curve && curve.name) || 'bleeding_1y');
  const score = R.valueOf(r, 'score');
  if (pct && typeof pct.value === 'number') {
    const p = R.el('p', { id: 'phbr-bleeding', class: 'bleeding-risk', 'data-testid': 'phbr-bleeding' }, t('phbr.bleeding', { pct: risk(pct.value) }));
    if (curve && curve.calibrated && score && typeof score.value === 'number' && (score.value > curve.calibrated.max || score.value < curve.calibrated.min)) {
      p.append(' ', R.el('span', { class: 'badge unverified-badge', 'data-testid': 'phbr-extrapolated' }, t('phbr.extrapolated', { min: curve.calibrated.min, max: curve.calibrated.max })));
    }
    body.append(p);
  }
  wrap.append(R.factorTable(s, R.componentRows(r, s), ctxFor('phbr', { points: true, caption: t('table.components') })));
  const other = s.anyOf('precise-hbr', 'arc_hbr_other');
  const arc = results.get('arc-hbr');
  if (other && arc) {
    const met = (arc.criteria || []).filter((c) => c.met === true && other.criteria.includes(c.id || (s.criterion(c.name) || {}).id));
    wrap.append(R.el('p', { class: 'hint', id: 'phbr-other', 'data-testid': 'phbr-other' }, t('phbr.other', { list: met.length ? met.map((c) => R.criterionName(s, c)).join('; ') : t('phbr.other.none') })));
  }
  const refBlock = R.referencesBlock(s, r);
  if (refBlock) refs.append(refBlock);
}

function renderArc(results) {
  const s = state.scoring;
  const r = results.get('arc-hbr');
  const body = R.clear($('arc-body'));
  const wrap = R.clear($('arc-table-wrap'));
  const refs = R.clear($('arc-refs'));
  if (!r) {
    body.append(R.el('p', { class: 'result-status' }, t('status.absent')));
    return;
  }
  body.append(R.arcSummary(s, r, 'arc'));
  const arcNote = R.unverifiedNote(r, 'arc');
  if (arcNote) body.append(arcNote);
  const cfg = s.calculator('arc-hbr');
  if (cfg && cfg.criteria) body.append(R.el('p', { class: 'hint', id: 'arc-rule' }, t('arc.rule', { major: cfg.criteria.min_major, minor: cfg.criteria.min_minor })));
  wrap.append(R.criteriaTable(s, r, ctxFor('arc', { caption: t('table.criteria') })));
  const refBlock = R.referencesBlock(s, r);
  if (refBlock) refs.append(refBlock);
}

function renderDapt(results) {
  const s = state.scoring;
  const r = results.get('precise-dapt');
  const cg = results.get('crcl-cockcroft-gault');
  const body = R.clear($('pdapt-body'));
  const wrap = R.clear($('pdapt-table-wrap'));
  const cwrap = R.clear($('crcl-table-wrap'));
  const refs = R.clear($('pdapt-refs'));
  if (!r) body.append(R.el('p', { class: 'result-status' }, t('status.absent')));
  else {
    body.append(R.scoreBlock(s, 'precise-dapt', r, 'pdapt'));
    const pdaptNote = R.unverifiedNote(r, 'pdapt');
    if (pdaptNote) body.append(pdaptNote);
    body.append(R.el('p', { class: 'hint pdapt-note' }, t('pdapt.no-percent')));
    wrap.append(R.factorTable(s, R.componentRows(r, s), ctxFor('pdapt', { points: true, caption: t('table.components') })));
  }
  const v = R.valueOf(cg, 'crcl');
  const crclInput = r ? R.inputsOf(r).get('crcl') : null;
  const crclText = crclInput && crclInput.origin === 'entered' && typeof crclInput.value === 'number'
    ? t('crcl.entered', { value: number(crclInput.value, 1), unit: s.unitLabel('crcl') })
    : v && typeof v.value === 'number'
      ? t('crcl.value', { value: number(v.value, 1), unit: v.unit || s.unitLabel('crcl') })
      : t('crcl.none', { status: R.statusText(s, cg) });
  $('crcl-value').textContent = crclText;
  if (cg) cwrap.append(R.factorTable(s, R.inputRows(cg, ['creatinine', 'weight', 'age', 'sex']), ctxFor('crcl', { caption: t('table.crcl') })));
  const refBlock = r ? R.referencesBlock(s, r) : null;
  if (refBlock) refs.append(refBlock);
}

/**
 * recommendationsOf returns the assessment's recommendations as
 * {id, text, title, source}: the top-level list when the API sends one
 * (objects or ids), else the ids each result recommends, texts from the
 * configuration.
 */
function recommendationsOf(results) {
  const s = state.scoring;
  let list = state.assessment.recommendations;
  if (!Array.isArray(list)) {
    list = [];
    for (const r of results.values()) for (const id of (r && r.recommendations) || []) list.push(id);
  }
  const out = [];
  const seen = new Set();
  for (const item of list) {
    const rec = typeof item === 'string' ? { id: item } : item || {};
    if (!rec.id || seen.has(rec.id)) continue;
    seen.add(rec.id);
    const cfg = s.recommendation(rec.id) || {};
    out.push({
      id: rec.id,
      title: rec.title || cfg.title || '',
      text: rec.text || cfg.text || '',
      source: rec.source || (cfg.provenance && cfg.provenance.source) || '',
      verified: typeof rec.verified === 'boolean' ? rec.verified : !!(cfg.provenance && cfg.provenance.verified === true),
    });
  }
  return out;
}

function renderRecommendations(results) {
  const s = state.scoring;
  const recs = recommendationsOf(results);
  const list = R.clear($('recommendations-list'));
  recs.forEach((rec, i) => {
    const li = R.el('li', { class: 'recommendation', 'data-testid': 'recommendation', dataset: { id: rec.id, verified: String(rec.verified) } });
    const title = cfgText('rec.' + rec.id + '.title', rec.title);
    if (title) li.append(R.el('strong', {}, title), ' ');
    li.append(cfgText('rec.' + rec.id + '.text', rec.text));
    // Whether the recommendation was checked against its source, in words, as the plan's citations say it.
    li.append(' ', R.el('span', { class: 'badge ' + (rec.verified ? 'badge-verified' : 'badge-unverified'), 'data-testid': 'recommendation-verified' }, t(rec.verified ? 'rec.verified' : 'rec.unverified')));
    // Recommendations in a row from one source name it once, after the last.
    const next = recs[i + 1];
    if (rec.source && !(next && next.source === rec.source)) {
      li.append(' ', R.el('span', { class: 'rec-source', 'data-testid': 'recommendation-source' }, t('rec.source', { source: s.citation(rec.source) })));
    }
    list.append(li);
  });
  if (!recs.length) list.append(R.el('li', { class: 'recommendation none', 'data-testid': 'recommendation-none' }, t('rec.none')));
  $('recommendations-disclaimer').textContent = cfgText('rec.disclaimer', s.disclaimer());
}

/** percentNote is the label every trade-off percentage carries: the value's note, in the page's language. */
function percentNote(h, v) {
  const en = (v && v.note) || (h && h.percent_note) || '';
  return cfgText('calc.arc-hbr-tradeoff.percent-note', en) || t('tradeoff.unverified');
}

/** unverifiedModel reports whether any trade-off parameter is marked unverified in the configuration. */
function unverifiedModel(h) {
  if (!h) return true;
  const provs = [];
  for (const o of h.outcomes || []) provs.push(o.provenance);
  for (const f of h.factors || []) provs.push(f.provenance);
  if (h.mortality_ratio) provs.push(h.mortality_ratio.provenance);
  provs.push(h.formula_provenance);
  return provs.some((p) => !p || p.verified !== true);
}

function renderTradeoff(results) {
  const s = state.scoring;
  const r = results.get('arc-hbr-tradeoff');
  const h = s.hazard();
  const zones = zonesFrom(h);
  const unverified = unverifiedModel(h);
  const note = $('tradeoff-unverified');
  note.hidden = !unverified;
  R.clear(note);
  // The configured caveat says it plainly; the generic label stands in when there is none.
  if (unverified) note.append(R.el('strong', {}, (h && h.caveat ? cfgText('calc.arc-hbr-tradeoff.caveat', h.caveat) : '') || t('tradeoff.unverified')));
  const bleeding = R.valueOf(r, 'bleeding_1y');
  const thrombotic = R.valueOf(r, 'thrombotic_1y');
  const b = bleeding && typeof bleeding.value === 'number' ? bleeding.value : null;
  const th = thrombotic && typeof thrombotic.value === 'number' ? thrombotic.value : null;
  const zone = b !== null && th !== null ? zoneOf(b, th, zones) : null;
  // Every percentage shown is labelled: a different model, unverified.
  const modelNote = percentNote(h, bleeding || thrombotic);
  const chart = R.clear($('tradeoff-chart'));
  chart.append(
    tradeoffChart({
      bleeding: b,
      thrombotic: th,
      range: b === null && bleeding && bleeding.range && thrombotic && thrombotic.range ? { bleeding: bleeding.range, thrombotic: thrombotic.range } : null,
      zones,
      idPrefix: 'tradeoff',
      labels: {
        title: t('tradeoff.chart.title'),
        desc: b !== null && th !== null ? t('tradeoff.values', { bleeding: risk(b), thrombotic: risk(th) }) + ' ' + modelNote + (zone ? ' ' + t('tradeoff.zone.' + zone) : '') : t('tradeoff.no-values'),
        x: t('tradeoff.axis.x'),
        y: t('tradeoff.axis.y'),
        patient: t('tradeoff.patient'),
      },
    }),
  );
  const values = R.clear($('tradeoff-values'));
  if (b !== null && th !== null) {
    values.append(R.el('span', { 'data-testid': 'tradeoff-numbers' }, t('tradeoff.values', { bleeding: risk(b), thrombotic: risk(th) })));
    values.append(' ', R.el('strong', { class: 'model-note', 'data-testid': 'tradeoff-model-note' }, modelNote));
    if (zone) values.append(' ', R.el('strong', { 'data-testid': 'tradeoff-zone', dataset: { zone } }, t('tradeoff.zone.' + zone)));
  } else if (bleeding && bleeding.range && thrombotic && thrombotic.range) {
    values.append(R.el('span', { 'data-testid': 'tradeoff-range-text' }, t('tradeoff.range', {
      bmin: risk(bleeding.range.min), bmax: risk(bleeding.range.max), tmin: risk(thrombotic.range.min), tmax: risk(thrombotic.range.max),
    })));
    values.append(' ', R.el('strong', { class: 'model-note', 'data-testid': 'tradeoff-model-note' }, modelNote));
  } else values.append(t('tradeoff.no-values'), ' ', R.statusText(s, r));
  const legend = R.clear($('tradeoff-legend'));
  for (const z of ['thrombotic', 'equivalent', 'bleeding']) {
    legend.append(R.el('li', {}, R.el('span', { class: 'swatch swatch-' + z, 'aria-hidden': 'true' }), ' ', t('tradeoff.legend.' + z)));
  }
  if (zones) legend.append(R.el('li', { class: 'hint' }, t('tradeoff.zones-convention', { min: zones.min, max: zones.max })));

  const list = R.clear($('tradeoff-factor-list'));
  const values0 = R.inputValues(r);
  // A factor the model decided is a component whose hazard ratios are the
  // configured ones when present and 1 when absent; an undecided factor has
  // no component.
  const decided = new Map();
  for (const c of (r && r.components) || []) {
    const hrs = Object.values(c.hazard_ratios || {});
    decided.set(c.name, hrs.some((x) => x !== 1));
  }
  for (const f of (h && h.factors) || []) {
    const rule = f.rule || {};
    const id = 'tf-' + f.id;
    const isFlag = rule.type === 'flag';
    const v = decided.has(f.id) ? decided.get(f.id) : isFlag ? values0[rule.input] : ruleHolds(rule, values0);
    const label = cfgText('factor.' + f.id, f.label);
    // One click per answer: yes, no or unknown (unknown withdraws an
    // entered answer, leaving the record's value or none).
    const present = v === true ? 'yes' : v === false ? 'no' : 'unknown';
    const answers = R.el('span', { class: 'answers', role: 'radiogroup', 'aria-labelledby': id + '-label', 'data-testid': 'factor-' + f.id, dataset: { factor: f.id } });
    for (const a of ['yes', 'no', 'unknown']) {
      const rid = id + '-' + a;
      answers.append(
        R.el('input', { type: 'radio', id: rid, name: id, value: a, checked: present === a, disabled: !isFlag || !r, 'data-input': isFlag ? rule.input : null, 'data-answer': a }),
        R.el('label', { for: rid, class: 'answer' }, t('value.' + a)),
      );
    }
    const tags = R.el('span', { class: 'tags' });
    const hr = f.hazard_ratios || {};
    if (typeof hr.bleeding_1y === 'number') tags.append(R.el('span', { class: 'tag tag-bleeding' }, t('tradeoff.tag.bleeding', { hr: number(hr.bleeding_1y, 2) })));
    if (typeof hr.thrombotic_1y === 'number') tags.append(R.el('span', { class: 'tag tag-thrombotic' }, t('tradeoff.tag.thrombotic', { hr: number(hr.thrombotic_1y, 2) })));
    // The factor, its hazard ratios and where its answer comes from on the
    // left; the answers on the right, one row a factor.
    const main = R.el('span', { class: 'factor-main' }, R.el('span', { id: id + '-label', class: 'factor-label' }, label), ' ', tags);
    if (!isFlag) main.append(R.el('span', { class: 'hint derived-note' }, t('tradeoff.derived', { name: R.inputLabel(s, rule.input) })));
    const rec = r ? R.inputsOf(r).get(rule.input) : null;
    if (isFlag && rec && rec.origin === 'entered') main.append(' ', R.originBadge(rec));
    list.append(R.el('li', { class: 'factor', dataset: { factor: f.id, present: v === true ? 'true' : v === false ? 'false' : 'unknown' } }, main, answers));
  }
  R.clear($('tradeoff-refs'));
  const refBlock = R.referencesBlock(s, r);
  if (refBlock) $('tradeoff-refs').append(refBlock);
}

function renderMeta() {
  const a = state.assessment;
  $('assessed-at').textContent = t('meta.assessed', { time: a.assessed_at ? dateTime(a.assessed_at) : '?' });
  $('config-version').textContent = t('meta.config', { version: a.config_version || state.scoring.version || '?' });
  const exp = state.context && state.context.expires_at;
  $('session-expiry').textContent = exp ? t('meta.expires', { time: dateTime(exp) }) : '';
  updatePrintMeta();
}

function updatePrintMeta() {
  if (!state.assessment) return;
  const a = state.assessment;
  const entered = Object.keys(state.overrides).length;
  $('print-meta').textContent = t('print.meta', {
    time: a.assessed_at ? dateTime(a.assessed_at) : '?',
    printed: dateTime(new Date().toISOString()),
    entered,
  });
}

// ---------------------------------------------------------------- events

function bind() {
  $('lang-select').addEventListener('change', (e) => setLang(e.target.value));
  onLangChange(() => {
    // The server writes its sentences in the language asked for: ask again.
    if (state.loaded && $('relaunch').hidden) relocalize();
    if (!$('relaunch').hidden && state.relaunchReason) $('relaunch-reason').textContent = t('relaunch.reason.' + state.relaunchReason, state.relaunchParams);
  });
  $('print-btn').addEventListener('click', () => {
    updatePrintMeta();
    window.print();
  });
  window.addEventListener('beforeprint', updatePrintMeta);
  // The printed summary gives every citation with its verified mark: the
  // folded lists open for print and close again after.
  window.addEventListener('beforeprint', () => {
    for (const d of document.querySelectorAll('details.plan-sources:not([open])')) {
      d.open = true;
      d.dataset.printOpened = 'true';
    }
  });
  window.addEventListener('afterprint', () => {
    for (const d of document.querySelectorAll('details.plan-sources[data-print-opened]')) {
      d.open = false;
      delete d.dataset.printOpened;
    }
  });
  $('signout-btn').addEventListener('click', async () => {
    // The server ends the session on every instance; this tab forgets it.
    try {
      await call('api/session', { method: 'DELETE', handle: launch.handle });
    } catch (e) {
      if (!(e instanceof ApiError && e.sessionGone)) {
        showError(errorText(e, 'signout'));
        return;
      }
    }
    sessionStore.clear();
    launch = { handle: null, fresh: false };
    showRelaunch('signed-out');
  });
  $('retry-btn').addEventListener('click', () => {
    if (state.lastAction) state.lastAction();
  });
  $('reset-btn').addEventListener('click', () => {
    state.overrides = {};
    recompute();
  });
  const app = $('app');
  app.addEventListener('change', (e) => {
    const target = e.target;
    if (target.dataset && target.dataset.unitFor) {
      state.units[target.dataset.unitFor] = target.value;
      render();
      return;
    }
    const name = target.dataset && target.dataset.input;
    if (!name || !state.scoring) return;
    if (target.type === 'checkbox') {
      setOverride(name, target.checked);
      return;
    }
    if (target.type === 'radio' && target.dataset.answer) {
      setOverride(name, target.dataset.answer === 'yes' ? true : target.dataset.answer === 'no' ? false : undefined);
      return;
    }
    if (target.type === 'number' && target.value !== '' && !isFinite(Number(target.value))) return;
    setOverride(name, R.readControlValue(state.scoring, target));
  });
  app.addEventListener('click', (e) => {
    const btn = e.target.closest('[data-action="revert"]');
    if (btn) setOverride(btn.dataset.input, undefined);
  });
  // A relaunch into this tab while the page is open changes only the fragment.
  window.addEventListener('hashchange', async () => {
    let next = takeSession();
    if (!next.fresh) return;
    next = await redeem(next);
    launch = next;
    state.overrides = {};
    state.loaded = false;
    if (launch.handle) loadAll();
    else showRelaunch(relaunchReasonOf(next));
  });
}

async function main() {
  const err = await loadI18n();
  bind();
  if (err) showError('The page text (messages.json) could not be loaded: ' + err.message + '. The page is shown in English.');
  launch = await redeem(launch);
  if (!launch.handle) {
    showRelaunch(relaunchReasonOf(launch));
    return;
  }
  await loadAll();
}

function relaunchReasonOf(l) {
  if (l.malformed) return 'malformed';
  return l.reason || 'missing';
}

main();
