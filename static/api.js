// api.js calls the calculate function's JSON API with relative URLs, so the
// page works at /calculate/ in the local runner and at the root of the
// deployed function alike. The session handle goes only in the
// Authorization header: never in a URL, a cookie or the DOM. Every call
// asks for the page's language (Accept-Language), in which the server
// writes its sentences.

import { currentLang } from './i18n.js';

/** ApiError is a failed call: an HTTP status with the API's error body, or a network failure (status 0). */
export class ApiError extends Error {
  constructor(status, code, message, limitMinutes) {
    super(message || code || 'HTTP ' + status);
    this.name = 'ApiError';
    this.status = status;
    this.code = code || '';
    this.serverMessage = message || '';
    /** limitMinutes is the idle timeout or lifetime a session_idle or session_lifetime 401 names (0 if none). */
    this.limitMinutes = limitMinutes || 0;
  }

  /** sessionGone reports an expired or missing session: relaunch from the EHR. */
  get sessionGone() {
    return this.status === 401;
  }
}

/**
 * call sends one request and returns the decoded JSON body. With handle it
 * sends Authorization: Bearer. Cookies are not sent (credentials: omit),
 * so third-party cookie blocking in an EHR iframe changes nothing; only the
 * hand-off exchange sends its same-origin binding cookie.
 */
export async function call(path, { method = 'GET', body, handle, signal, credentials = 'omit' } = {}) {
  const headers = { Accept: 'application/json', 'Accept-Language': currentLang() };
  if (handle) headers.Authorization = 'Bearer ' + handle;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let res;
  try {
    res = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials,
      cache: 'no-store',
      referrerPolicy: 'no-referrer',
      signal,
    });
  } catch (e) {
    if (e && e.name === 'AbortError') throw e;
    throw new ApiError(0, 'network', '');
  }
  let data = null;
  const text = await res.text();
  if (text) {
    try {
      data = JSON.parse(text);
    } catch (e) {
      data = null;
    }
  }
  if (!res.ok) {
    const code = data && typeof data.error === 'string' ? data.error : '';
    const msg = data && typeof data.message === 'string' ? data.message : '';
    const limit = data && Number.isInteger(data.limit_minutes) && data.limit_minutes > 0 ? data.limit_minutes : 0;
    throw new ApiError(res.status, code, msg, limit);
  }
  if (res.status === 204) return null;
  if (data === null) throw new ApiError(res.status, 'bad_response', '');
  return data;
}
