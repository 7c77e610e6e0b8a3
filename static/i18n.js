// i18n.js holds the page's language: English or Traditional Chinese (zh-TW,
// for the Taiwanese hospitals the original app served). Strings come from
// the server's one message catalogue (messages.json, shared/message), the
// same one the server writes its own sentences from; the choice is
// remembered in localStorage, reflected in <html lang> and sent with every
// API call as Accept-Language, so that the server's sentences (warnings,
// evidence, the plan) come back in it. Text that comes from the scoring
// configuration is shown in English as configured, and in zh-TW from the
// catalogue's "config_text" when a translation exists. Numbers in those
// texts, in either language, are {placeholders} filled from the
// configuration (see useConfigParams), never written into the text.

const STORAGE_KEY = 'smartcalc.lang';

/** LANGS are the supported languages, the first being the default. */
export const LANGS = ['en', 'zh-TW'];

let catalog = { strings: {}, config_text: {} };
let lang = LANGS[0];
const listeners = [];
let configParams = () => null;

function storage() {
  // A third-party iframe with storage blocked throws on access.
  try {
    return window.localStorage;
  } catch (e) {
    return null;
  }
}

function preferredLang() {
  const s = storage();
  let saved = null;
  try {
    saved = s ? s.getItem(STORAGE_KEY) : null;
  } catch (e) {
    saved = null;
  }
  if (saved && LANGS.includes(saved)) return saved;
  const nav = (navigator.languages && navigator.languages[0]) || navigator.language || '';
  return /^zh\b(-(TW|Hant|HK|MO))?/i.test(nav) && !/^zh-(CN|SG|Hans)/i.test(nav) ? 'zh-TW' : 'en';
}

/**
 * loadI18n fetches the message catalogue and applies the preferred language to the
 * document. The pages still work in English (the text in the HTML) if the
 * catalog cannot be loaded; the error is returned for the page to show.
 */
export async function loadI18n() {
  let err = null;
  try {
    const res = await fetch('messages.json', { credentials: 'omit', cache: 'no-cache' });
    if (!res.ok) throw new Error('HTTP ' + res.status);
    catalog = await res.json();
  } catch (e) {
    err = e;
  }
  lang = preferredLang();
  apply();
  return err;
}

export function currentLang() {
  return lang;
}

/** setLang switches the language, remembers it and re-renders listeners. */
export function setLang(l) {
  if (!LANGS.includes(l) || l === lang) return;
  lang = l;
  const s = storage();
  try {
    if (s) s.setItem(STORAGE_KEY, l);
  } catch (e) {
    // Storage refused (private mode, blocked iframe): keep it for this page.
  }
  apply();
  for (const f of listeners) f(l);
}

/** onLangChange registers f to run after every language switch. */
export function onLangChange(f) {
  listeners.push(f);
}

function fill(s, params) {
  if (!params) return s;
  return s.replace(/\{(\w+)\}/g, (m, k) => (k in params && params[k] !== undefined && params[k] !== null ? String(params[k]) : m));
}

function lookup(key) {
  const strings = catalog.strings || {};
  const mine = strings[lang] || {};
  if (key in mine) return mine[key];
  const en = strings.en || {};
  if (key in en) return en[key];
  return null;
}

/** has reports whether a UI string exists. */
export function has(key) {
  return lookup(key) !== null;
}

/** t returns the UI string key in the current language, with {params} filled. */
export function t(key, params) {
  const s = lookup(key);
  return s === null ? key : fill(s, params);
}

/**
 * useConfigParams sets where configuration texts get their numbers: f(key)
 * returns the numbers the text under a config_text key may name (the page
 * passes Scoring.textParams of the loaded configuration).
 */
export function useConfigParams(f) {
  configParams = typeof f === 'function' ? f : () => null;
}

/** textParams returns the configuration numbers for a config_text key ({} if none). */
export function textParams(key) {
  return configParams(key) || {};
}

/**
 * cfgText returns configuration text: english (from the configuration or
 * the server) in English, or the translation under key in config_text for
 * the current language. Either is filled with the configuration's numbers
 * for key, and with params.
 */
export function cfgText(key, english, params) {
  const p = Object.assign({}, textParams(key), params || {});
  if (lang !== 'en') {
    const tr = (catalog.config_text || {})[lang] || {};
    if (key in tr) return fill(tr[key], p);
  }
  return english === undefined || english === null ? '' : fill(String(english), p);
}

/** translate applies data-i18n (text) and data-i18n-attr (attributes) under root. */
export function translate(root) {
  const r = root || document;
  for (const el of r.querySelectorAll('[data-i18n]')) {
    const k = el.getAttribute('data-i18n');
    if (has(k)) el.textContent = t(k);
  }
  for (const el of r.querySelectorAll('[data-i18n-attr]')) {
    for (const pair of el.getAttribute('data-i18n-attr').split(';')) {
      const [attr, k] = pair.split(':').map((x) => x.trim());
      if (attr && k && has(k)) el.setAttribute(attr, t(k));
    }
  }
}

function apply() {
  document.documentElement.lang = lang;
  translate(document);
  for (const sel of document.querySelectorAll('select[data-lang-select]')) sel.value = lang;
}

/**
 * number formats n with at most decimals decimals, trimming zeros; with
 * fixed, with exactly decimals decimals, as a measured value reads at the
 * precision it is measured to (1.10 mg/dL, 82.0 kg).
 */
export function number(n, decimals, fixed) {
  if (typeof n !== 'number' || !isFinite(n)) return '';
  const d = typeof decimals === 'number' ? decimals : 2;
  const s = new Intl.NumberFormat(lang, { maximumFractionDigits: d, minimumFractionDigits: fixed ? d : 0, useGrouping: false }).format(n);
  return /^-0(\.0+)?$/.test(s) ? s.slice(1) : s;
}

/** RISK_DECIMALS: a risk is written for a person to one decimal ("11.7%"), as the server writes it. */
export const RISK_DECIMALS = 1;

/** risk writes a risk in percent for a person: one decimal, kept ("4.0"). */
export function risk(n) {
  return number(n, RISK_DECIMALS, true);
}

/** date shows the date part of an ISO date or date-time as YYYY-MM-DD. */
export function date(iso) {
  if (!iso || typeof iso !== 'string') return '';
  const m = /^(\d{4}-\d{2}-\d{2})/.exec(iso);
  return m ? m[1] : iso;
}

/**
 * longDate writes a FHIR date or date-time as the server writes dates in
 * its sentences, in the page's language: "30 Nov 2026", 「2026年11月30日」.
 */
export function longDate(iso) {
  const m = /^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?/.exec(String(iso || ''));
  if (!m) return String(iso || '');
  const p = { year: Number(m[1]) };
  if (!m[2]) return t('date.year', p);
  p.month = Number(m[2]);
  p.month_name = t('date.month.' + p.month);
  if (!m[3]) return t('date.month', p);
  p.day = Number(m[3]);
  return t('date.day', p);
}

/** list joins items as the page's language joins a list ("a, b and c"; 「a、b及c」). */
export function list(items) {
  const xs = (items || []).filter((x) => x !== '' && x !== null && x !== undefined).map(String);
  if (xs.length < 2) return xs.join('');
  return xs.slice(0, -1).join(t('list.separator')) + t('list.last') + xs[xs.length - 1];
}

/**
 * dateTime shows an ISO date-time in local time as YYYY-MM-DD HH:MM with
 * its UTC offset: unambiguous in every language.
 */
export function dateTime(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  if (isNaN(d.getTime())) return String(iso);
  const p = (n) => String(n).padStart(2, '0');
  const off = -d.getTimezoneOffset();
  const sign = off >= 0 ? '+' : '-';
  const zone = 'UTC' + sign + p(Math.floor(Math.abs(off) / 60)) + ':' + p(Math.abs(off) % 60);
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())} (${zone})`;
}
