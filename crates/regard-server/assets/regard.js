/*
 * regard.js: Regard's browser script. No dependencies, no build step, no request to anyone but Regard.
 *   <script src="https://regard.example/regard.js" data-write-key="wk_..." data-require-consent="true" defer></script>
 * data-api is Regard's origin (default: this script's). On load it sends a page event, then fills each
 * element marked data-regard-slot="..." with the content Regard decides, plus a "why?" link.
 * API: regard.page(), track(event, props), identify(userId, traits, {userToken}), consent(answer), optOut(), decide(),
 * reset().
 *
 * Signed-in visitors: a userId alone proves nothing (any browser could claim any), so Regard personalizes from what
 * it knows about a user only with a user token your backend signed for that userId. Pass it on sign-in,
 * regard.identify(id, traits, {userToken}), or render it on every page as data-user-token="v1...." on this script
 * tag. It is sent (X-Regard-User-Token) with decide and "why?" calls while it matches the userId; without one, the
 * visitor gets what their anonymous browsing earns, and the explanation says why.
 *
 * Consent: with data-require-consent="true" nothing is sent or stored until the visitor answers (calls
 * wait in a queue). The answer is remembered and travels in every request's context.consent. A banner
 * or CMP passes the choice on; OneTrust-style, from its callback:
 *   function OptanonWrapper() {
 *     var has = function (id) { return (',' + OnetrustActiveGroups + ',').indexOf(',' + id + ',') >= 0; };
 *     regard.consent({analytics: has('C0002'), personalization: has('C0003'), profiling: has('C0003'),
 *                     advertising: has('C0004'), email: false});
 *   }
 * A CMP that may answer before this script has run queues the call instead:
 *   window.regard = window.regard || []; window.regard.push(['consent', {analytics: true, ...}]);
 */
(() => {
  'use strict';
  const script = document.currentScript || document.querySelector('script[data-write-key]');
  if (!script) return;
  const {writeKey = '', api: apiAttr, requireConsent, userToken: tokenAttr} = script.dataset;
  const auth = 'Basic ' + btoa(writeKey + ':');
  const api = (apiAttr || new URL(script.src, location.href).origin).replace(/\/+$/, '');
  const ANON = 'regard_anonymous_id', USER = 'regard_user_id', CONSENT = 'regard_consent', TOKEN = 'regard_user_token';

  // localStorage where the browser allows it, a first-party cookie otherwise.
  const store = (k, v) => {
    try {
      if (v === undefined) return localStorage.getItem(k);
      return v === null ? localStorage.removeItem(k) : localStorage.setItem(k, v);
    } catch (e) {
      const m = document.cookie.match(`(?:^|; )${k}=([^;]*)`);
      if (v === undefined) return m && decodeURIComponent(m[1]);
      document.cookie = `${k}=${encodeURIComponent(v || '')}; path=/; max-age=${v ? 31536000 : 0}; SameSite=Lax`;
    }
  };
  // crypto.randomUUID needs a secure context; the fallback builds the same version 4 form.
  const uuid = () => crypto.randomUUID ? crypto.randomUUID() : ([1e7] + -1e3 + -4e3 + -8e3 + -1e11)
    .replace(/[018]/g, (c) => (c ^ (crypto.getRandomValues(new Uint8Array(1))[0] & (15 >> (c / 4)))).toString(16));

  let answer = null, queue = [], decisions = 0, memoryId = null;
  try { answer = JSON.parse(store(CONSENT) || 'null'); } catch (e) { /* no answer */ }
  const allowed = () => requireConsent !== 'true' || answer !== null;
  let userId = allowed() ? store(USER) : null;
  let userToken = tokenAttr || (allowed() ? store(TOKEN) : null);
  // The userId a token was signed for: its second part, base64url of UTF-8.
  const tokenUser = (token) => {
    try {
      const bytes = atob(token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/'));
      return new TextDecoder().decode(Uint8Array.from(bytes, (c) => c.charCodeAt(0)));
    } catch (e) { return null; }
  };
  // The token goes only with the userId it was signed for (a stale one would be refused).
  const token = () => (userId && userToken && tokenUser(userToken) === userId ? userToken : null);
  // The anonymous id is created (and stored) only once sending is allowed.
  const anonymousId = () => store(ANON) || (store(ANON, memoryId = memoryId || uuid()), memoryId);

  function context() {
    const q = new URLSearchParams(location.search), campaign = {};
    for (const k of ['source', 'medium', 'name', 'term', 'content']) {
      const v = q.get(k === 'name' ? 'utm_campaign' : 'utm_' + k);
      if (v) campaign[k] = v;
    }
    const ctx = {
      page: {url: location.href, path: location.pathname, referrer: document.referrer, title: document.title},
      userAgent: navigator.userAgent, locale: navigator.language, library: {name: 'regard.js', version: '1'},
    };
    try { ctx.timezone = Intl.DateTimeFormat().resolvedOptions().timeZone; } catch (e) { /* unknown */ }
    if (Object.keys(campaign).length) ctx.campaign = campaign;
    if (answer) ctx.consent = {categoryPreferences: answer};
    return ctx;
  }

  // `signed` adds the user token: decide and "why?" use it, ingestion does not need it.
  async function call(path, body, signed) {
    const proof = signed && token();
    const res = await fetch(api + path, {
      method: body ? 'POST' : 'GET', body: body && JSON.stringify(body), keepalive: !!body && path !== '/v1/decide',
      headers: Object.assign({Authorization: auth}, body && {'Content-Type': 'application/json'},
        proof && {'X-Regard-User-Token': proof}),
    });
    if (!res.ok) throw Object.assign(new Error(`regard: ${path} answered ${res.status}`), {status: res.status});
    return res.json();
  }

  // Sends one Segment-style message, or queues it until the visitor answers.
  async function send(type, fields) {
    if (!allowed()) return void queue.push([type, fields]);
    const now = new Date().toISOString();
    const message = Object.assign({type, messageId: uuid(), anonymousId: anonymousId(), timestamp: now, sentAt: now,
      context: context()}, userId && {userId}, fields);
    await call('/v1/' + type, message).catch((e) => console.warn(e.message));
  }

  async function decide() {
    const elements = [...document.querySelectorAll('[data-regard-slot]')];
    const slots = [...new Set(elements.map((el) => el.dataset.regardSlot).filter(Boolean))];
    if (!allowed() || !slots.length) return;
    decisions++;
    let result;
    const body = () => Object.assign({anonymousId: anonymousId(), slots, context: context()}, userId && {userId});
    try {
      result = await call('/v1/decide', body(), true).catch((e) => {
        if (e.status !== 401 || !token()) throw e;
        // An expired or revoked token: forget it and decide for the anonymous visitor.
        console.warn(e.message + ': the user token was refused');
        userToken = null;
        store(TOKEN, null);
        return call('/v1/decide', body(), true);
      });
    } catch (e) { return console.warn(e.message); }
    for (const d of result.decisions || []) {
      for (const el of elements.filter((e) => e.dataset.regardSlot === d.slot)) {
        el.innerHTML = d.content;
        Object.assign(el.dataset, {regardVariant: d.variant, regardLevel: d.level, regardDecision: d.decision_id});
        const link = Object.assign(document.createElement('a'), {href: '#', className: 'regard-why'});
        const out = Object.assign(document.createElement('span'), {className: 'regard-why-text'});
        link.textContent = 'why?';
        link.onclick = (event) => {
          event.preventDefault();
          out.textContent = ' …';
          call(`/v1/decisions/${d.decision_id}/why`, null, true).then(
            (w) => { out.textContent = ' ' + (w.explanation || (w.reasons || []).join(' ')); },
            () => { out.textContent = ' The explanation is not available right now.'; });
        };
        el.append(link, out);
      }
    }
    document.dispatchEvent(new CustomEvent('regard:decided', {detail: result}));
  }

  const page = () => send('page', {name: document.title, properties: context().page});

  async function consent(given) {
    answer = {};
    for (const p of ['analytics', 'personalization', 'email', 'advertising', 'profiling']) answer[p] = !!(given && given[p]);
    store(CONSENT, JSON.stringify(answer));
    if (userId) store(USER, userId);
    if (userToken && !tokenAttr) store(TOKEN, userToken);
    await send('track', {event: 'Consent Updated', properties: {categoryPreferences: answer}});
    const pending = queue;
    queue = [];
    for (const [type, fields] of pending) await send(type, fields);
    await decide();
  }

  const early = Array.isArray(window.regard) ? window.regard : [];
  const regard = window.regard = {
    page, consent, decide,
    track: (event, properties) => send('track', {event, properties: properties || {}}),
    async identify(id, traits, options) {
      userId = id ? String(id) : null;
      if (userId && allowed()) store(USER, userId);
      if (options && options.userToken) {
        userToken = String(options.userToken);
        if (allowed()) store(TOKEN, userToken);
      }
      await send('identify', {traits: traits || {}});
      await decide();
    },
    optOut: () => consent({}),
    // Forgets who this is (logout); the consent answer stays.
    reset() { userId = memoryId = userToken = null; store(USER, null); store(ANON, null); store(TOKEN, null); },
  };

  // The first page view waits in the queue while consent is required and not yet given.
  (async () => {
    await page();
    const before = decisions;
    for (const [method, ...args] of early) if (typeof regard[method] === 'function') await regard[method](...args);
    if (decisions === before) await decide();
  })();
})();
