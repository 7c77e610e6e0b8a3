// scoring.js reads the versioned scoring configuration that the server
// serves at api/scoring-config (shared/calc/scoring.json). The page takes
// every band, threshold, unit conversion, label and plausibility range from
// it, so that no clinical number is written twice. The configuration's texts
// name those numbers as {placeholders}; textParams gives the numbers each
// text may name, for both languages (i18n.js cfgText fills them).

/** Scoring wraps the configuration JSON with the look-ups the page needs. */
export class Scoring {
  constructor(json) {
    this.json = json && typeof json === 'object' ? json : {};
    this.version = this.json.version || '';
    this.calcs = new Map();
    for (const c of this.json.calculators || []) this.calcs.set(c.id, c);
    this.params = null;
  }

  /**
   * textParams returns the configuration numbers that the text with a
   * config_text key ("criterion.age", "band.precise-hbr.hbr", …) may name
   * as {placeholders}; {} for other keys.
   */
  textParams(key) {
    if (!this.params) this.params = textParamsOf(this.json);
    return this.params[key] || {};
  }

  /** calculator returns the configuration of one calculator, or null. */
  calculator(id) {
    return this.calcs.get(id) || null;
  }

  /** calculators lists the configured calculators in their configured order. */
  calculators() {
    return [...this.calcs.values()];
  }

  /** input returns the definition of one calculator input, or null. */
  input(name) {
    return (this.json.inputs || {})[name] || null;
  }

  /** inputType is number, boolean, enum or sex (the configuration's types). */
  inputType(name) {
    const i = this.input(name);
    return i ? i.type : 'number';
  }

  /** inputValues are the allowed values of an enum or sex input. */
  inputValues(name) {
    const i = this.input(name);
    return i && Array.isArray(i.values) ? i.values : [];
  }

  /** summaryText is the English template of one summary reason. */
  summaryText(reason) {
    return ((this.json.summary || {}).texts || {})[reason] || '';
  }

  inputLabel(name) {
    const i = this.input(name);
    return i && i.label ? i.label : name;
  }

  inputDescription(name) {
    const i = this.input(name);
    return i && i.description ? i.description : '';
  }

  /** quantity returns the quantity (canonical unit and conversions) of an input. */
  quantity(name) {
    const i = this.input(name);
    if (!i || !i.quantity) return null;
    return (this.json.quantities || {})[i.quantity] || null;
  }

  /** unitLabel is the canonical unit as people write it ("g/dL", "×10⁹/L"). */
  unitLabel(name) {
    const q = this.quantity(name);
    return q ? q.label || q.unit || '' : '';
  }

  /** domain and plausible are the hard and soft input ranges, or null. */
  domain(name) {
    const i = this.input(name);
    return i && i.domain ? i.domain : null;
  }

  plausible(name) {
    const i = this.input(name);
    return i && i.plausible ? i.plausible : null;
  }

  /**
   * units lists the units a quantity can be entered in: the canonical unit
   * first, then each configured conversion, as {code, aliases, label,
   * toCanonical, decimals} where canonical = value × toCanonical and
   * decimals is the precision a value in that unit is shown with.
   */
  units(name) {
    const q = this.quantity(name);
    if (!q) return [];
    const dec = typeof q.decimals === 'number' ? q.decimals : 2;
    const out = [{ code: q.unit, aliases: q.aliases || [], label: q.label || q.unit, toCanonical: 1, decimals: dec }];
    for (const u of q.units || []) {
      let f = null;
      if (typeof u.multiply === 'number') f = u.multiply;
      else if (typeof u.divide === 'number' && u.divide !== 0) f = 1 / u.divide;
      if (f !== null) out.push({ code: u.code, aliases: u.aliases || [], label: u.code, toCanonical: f, decimals: typeof u.decimals === 'number' ? u.decimals : dec });
    }
    return out;
  }

  /** unit finds a unit of an input's quantity by code or alias, or null. */
  unit(name, code) {
    return this.units(name).find((u) => u.code === code || u.aliases.includes(code)) || null;
  }

  /** decimals is how many decimals a value of input name in unit (default canonical) is shown with. */
  decimals(name, code) {
    const u = (code && this.unit(name, code)) || this.units(name)[0];
    return u ? u.decimals : 2;
  }

  /** fromCanonical converts a canonical value into unit (a code from units). */
  fromCanonical(name, value, unit) {
    if (typeof value !== 'number') return value;
    const u = this.units(name).find((x) => x.code === unit);
    return u ? value / u.toCanonical : value;
  }

  /** bands are a points calculator's categories, lowest first. */
  bands(id) {
    const c = this.calculator(id);
    if (!c) return [];
    return (c.points && c.points.bands) || c.bands || [];
  }

  band(id, category) {
    return this.bands(id).find((b) => b.category === category) || null;
  }

  /** bandsRiskOutcome names what the bands' risk_percent ranges measure, or ''. */
  bandsRiskOutcome(id) {
    const c = this.calculator(id);
    if (!c) return '';
    return (c.points ? c.points.bands_risk_outcome : c.bands_risk_outcome) || '';
  }

  /**
   * bandRange returns the integer score range of a category as {lo, hi}:
   * lo is absent for the lowest band and hi for the highest.
   */
  bandRange(id, category) {
    const bands = this.bands(id);
    const i = bands.findIndex((b) => b.category === category);
    if (i < 0) return null;
    const r = {};
    if (typeof bands[i].from === 'number') r.lo = bands[i].from;
    if (i + 1 < bands.length && typeof bands[i + 1].from === 'number') r.hi = bands[i + 1].from - 1;
    return r;
  }

  /** riskCurve is PRECISE-HBR's calibrated 1-year bleeding curve, or null. */
  riskCurve(id) {
    const c = this.calculator(id);
    return (c && c.points && c.points.risk_curve) || null;
  }

  /** criteria are ARC-HBR's configured criteria. */
  criteria() {
    const c = this.calculator('arc-hbr');
    return (c && c.criteria && c.criteria.items) || [];
  }

  /** criterion finds an ARC-HBR criterion by id, or by its English name. */
  criterion(idOrName) {
    return this.criteria().find((c) => c.id === idOrName || c.name === idOrName) || null;
  }

  /** anyOf returns a points calculator's "at least one of" item for input. */
  anyOf(id, input) {
    const c = this.calculator(id);
    const items = (c && c.points && c.points.any_of) || [];
    return items.find((a) => a.input === input || a.name === input) || null;
  }

  /** hazard is the trade-off model's configuration, or null. */
  hazard() {
    const c = this.calculator('arc-hbr-tradeoff');
    return (c && c.hazard) || null;
  }

  /** source returns a citation record by key, or null. */
  source(key) {
    return (this.json.sources || {})[key] || null;
  }

  /** citation renders a source key as text; unknown keys are shown as given. */
  citation(key) {
    const s = this.source(key);
    return s && s.citation ? s.citation : String(key || '');
  }

  recommendation(id) {
    const r = this.json.recommendations || {};
    return (r.items || []).find((x) => x.id === id) || null;
  }

  disclaimer() {
    const r = this.json.recommendations || {};
    return r.disclaimer || '';
  }

  /** staleDays is the age after which a record value is flagged stale. */
  staleDays() {
    const f = this.json.fhir || {};
    return typeof f.lookback_days === 'number' ? f.lookback_days : null;
  }
}

/**
 * ruleHolds evaluates a configured rule (at_least, below, range, flag,
 * equals) against input values, for display only: the server decides.
 * It returns true, false or null when an input is unknown.
 */
export function ruleHolds(rule, values) {
  if (!rule) return null;
  const v = values[rule.input];
  if (v === null || v === undefined) return null;
  switch (rule.type) {
    case 'flag':
      return v === true;
    case 'equals':
      return v === rule.value;
    case 'at_least':
      return typeof v === 'number' ? v >= rule.threshold : null;
    case 'below':
      return typeof v === 'number' ? v < rule.threshold : null;
    case 'range': {
      if (typeof v !== 'number') return null;
      let max = rule.max;
      if (rule.max_by_sex) {
        const sex = values.sex;
        if (!sex || !(sex in rule.max_by_sex)) return null;
        max = rule.max_by_sex[sex];
      }
      if (typeof rule.min === 'number' && v < rule.min) return false;
      if (typeof max === 'number' && v >= max) return false;
      return true;
    }
    default:
      return null;
  }
}

const num = (x) => typeof x === 'number' && isFinite(x);

/**
 * textParamsOf maps every text key of a scoring configuration to the numbers
 * its text may name. It mirrors shared/calc's Config.Texts (a Go test
 * compares the two): a rule's threshold, min, max, max_minus_one and
 * max_<sex>; the window_months, window_days and major_at_least of the code
 * sets feeding the rule's input (left out where the sets disagree); the
 * mapping's windows (fhir.windows: bleeding_major_months,
 * bleeding_minor_months, long_term_min_days_per_week, long_term_min_days,
 * rivaroxaban_vascular_mg, recent_days) in every input's and rule's texts
 * (and so in an input's own value names, enum.<input>.*); a band's
 * from, next_from and next_from_minus_one; the lowest band a recommendation
 * applies to (from, when it applies to one calculator's bands and not to the
 * lowest); a criteria calculator's min_major and min_minor.
 */
export function textParamsOf(json) {
  const cfg = json && typeof json === 'object' ? json : {};
  const codes = cfg.codes || {};
  const out = {};
  const windows = {};
  for (const [k, x] of Object.entries((cfg.fhir || {}).windows || {})) if (num(x)) windows[k] = x;
  const inputParams = (input) => {
    const p = { ...windows };
    const ambiguous = new Set();
    const put = (k, x) => {
      if (k in p && p[k] !== x) ambiguous.add(k);
      p[k] = x;
    };
    for (const sets of [codes.conditions, codes.medications, codes.procedures]) {
      for (const s of Object.values(sets || {})) {
        if (s.input !== input) continue;
        if (num(s.window_months) && s.window_months > 0) put('window_months', s.window_months);
        if (num(s.window_days) && s.window_days > 0) put('window_days', s.window_days);
      }
    }
    for (const o of Object.values(codes.observations || {})) {
      if (o.input === input && num(o.major_at_least)) put('major_at_least', o.major_at_least);
    }
    for (const k of ambiguous) delete p[k];
    return p;
  };
  const ruleParams = (r) => {
    const p = inputParams((r || {}).input);
    if (!r) return p;
    if (num(r.threshold)) p.threshold = r.threshold;
    if (num(r.min)) p.min = r.min;
    if (num(r.max)) {
      p.max = r.max;
      p.max_minus_one = r.max - 1;
    }
    for (const [sex, x] of Object.entries(r.max_by_sex || {})) p['max_' + sex] = x;
    return p;
  };
  const bandsOf = (c) => (c.points ? c.points.bands : c.bands) || [];
  for (const name of Object.keys(cfg.inputs || {})) out['input.' + name + '.description'] = inputParams(name);
  for (const c of cfg.calculators || []) {
    const m = c.criteria;
    if (m) {
      const p = {};
      if (num(m.min_major)) p.min_major = m.min_major;
      if (num(m.min_minor)) p.min_minor = m.min_minor;
      out['calc.' + c.id + '.description'] = p;
    }
    const bands = bandsOf(c);
    bands.forEach((b, i) => {
      const p = {};
      if (num(b.from)) p.from = b.from;
      const next = bands[i + 1];
      if (next && num(next.from)) {
        p.next_from = next.from;
        p.next_from_minus_one = next.from - 1;
      }
      out['band.' + c.id + '.' + b.category] = p;
      out['band.' + c.id + '.' + b.category + '.note'] = p;
    });
    for (const cr of (m && m.items) || []) out['criterion.' + cr.id] = ruleParams(cr.rule);
    for (const f of (c.hazard && c.hazard.factors) || []) out['factor.' + f.id] = ruleParams(f.rule);
  }
  for (const r of (cfg.recommendations || {}).items || []) {
    let banded = 0;
    let lo = Infinity;
    let open = false;
    for (const a of r.applies_to || []) {
      const c = (cfg.calculators || []).find((x) => x.id === a.calculator);
      const bands = c ? bandsOf(c) : [];
      if (!bands.length) continue;
      banded++;
      for (const b of bands) {
        if (!(a.categories || []).includes(b.category)) continue;
        if (num(b.from)) lo = Math.min(lo, b.from);
        else open = true;
      }
    }
    const p = banded === 1 && !open && lo !== Infinity ? { from: lo } : {};
    out['rec.' + r.id + '.title'] = p;
    out['rec.' + r.id + '.text'] = p;
  }
  // The summary's texts name where PRECISE-HBR's HBR bands start.
  const summary = cfg.summary || {};
  const phbr = (cfg.calculators || []).find((x) => x.id === 'precise-hbr');
  const hbrCats = (summary.hbr_categories || {})['precise-hbr'] || [];
  const first = phbr ? bandsOf(phbr).find((b) => hbrCats.includes(b.category) && num(b.from)) : null;
  for (const k of Object.keys(summary.texts || {})) out['summary.' + k] = first ? { hbr_from: first.from } : {};
  return out;
}
