// End-to-end test of regard.js on the demo shop, in headless Chromium.
//
// Needs a running `regard serve --demo-shop --consent-mode opt-in` with the slots home_hero,
// home_banner and product_row (crates/regard-cli/tests/browser.rs sets all this up), and:
//   REGARD_URL        the server's base URL, e.g. http://127.0.0.1:8080
//   REGARD_WRITE_KEY  the instance's write key
//   REGARD_ADMIN_KEY  the instance's admin key
//   REGARD_DEMO_USER  the userId the server signs the demo page's user token for (--demo-user)
//   CHROMIUM          optional; default /usr/bin/chromium
// Four visitors must see the right home_hero variant, and no request may leave for another host.

import { chromium } from 'playwright-core';

const env = (name) => {
  const value = process.env[name];
  if (!value) fail(`${name} is not set`);
  return value;
};

function fail(message) {
  console.error(`FAIL: ${message}`);
  process.exit(1);
}

const base = env('REGARD_URL').replace(/\/+$/, '');
const writeKey = env('REGARD_WRITE_KEY');
const adminKey = env('REGARD_ADMIN_KEY');
const demoUser = env('REGARD_DEMO_USER');
// A customer with the same history as the demo user, whom the page has no token for.
const CLAIMED_USER = 'e2e-claimed';
const serverHost = new URL(base).host;
const DAY_MS = 24 * 60 * 60 * 1000;
const ALL_YES = { analytics: true, personalization: true, email: true, advertising: true, profiling: true };
const HERO = '[data-regard-slot="home_hero"]';
const TIMEOUT_MS = 15_000;

async function api(method, path, { key, body } = {}) {
  const response = await fetch(base + path, {
    method,
    headers: { Authorization: `Bearer ${key}`, 'Content-Type': 'application/json' },
    body: body && JSON.stringify(body),
  });
  const text = await response.text();
  if (!response.ok) fail(`${method} ${path} answered ${response.status}: ${text}`);
  return text ? JSON.parse(text) : null;
}

function check(condition, message) {
  if (!condition) throw new Error(message);
}

// Seeds a returning visitor: two page views two days ago, with consent, through the ingestion API.
async function seedReturningVisitor() {
  const at = Date.now() - 2 * DAY_MS;
  const page = (n, ms) => ({
    type: 'page',
    messageId: `e2e-returning-${n}`,
    anonymousId: 'e2e-returning',
    name: 'Regard Demo Shop',
    timestamp: new Date(ms).toISOString(),
    properties: { path: '/shop' },
    context: { page: { path: '/shop', url: `${base}/shop` }, consent: { categoryPreferences: ALL_YES } },
  });
  const answer = await api('POST', '/v1/batch', { key: writeKey, body: { batch: [page(1, at), page(2, at + 60_000)] } });
  check(answer && answer.stored + answer.duplicates === 2, `seeding stored ${JSON.stringify(answer)}`);
}

// Seeds two signed-in customers who visited two days ago: the demo user and one the page has no
// token for. Whoever proves to be either of them is a returning visitor.
async function seedSignedInCustomers() {
  const at = Date.now() - 2 * DAY_MS;
  const batch = [];
  for (const userId of [demoUser, CLAIMED_USER]) {
    for (const n of [1, 2]) {
      batch.push({
        type: 'page',
        messageId: `e2e-${userId}-${n}`,
        userId,
        name: 'Regard Demo Shop',
        timestamp: new Date(at + n * 60_000).toISOString(),
        properties: { path: '/shop' },
        context: { page: { path: '/shop', url: `${base}/shop` }, consent: { categoryPreferences: ALL_YES } },
      });
    }
  }
  const answer = await api('POST', '/v1/batch', { key: writeKey, body: { batch } });
  check(answer && answer.stored + answer.duplicates === batch.length, `seeding stored ${JSON.stringify(answer)}`);
}

const foreignRequests = [];
const results = [];

// The hero after a new decision replaced the one with id `previous`.
async function nextHero(page, previous) {
  await page.waitForSelector(`${HERO}[data-regard-decision]:not([data-regard-decision="${previous}"])`, {
    timeout: TIMEOUT_MS,
  });
  return hero(page);
}

async function signIn(page, userId) {
  await page.fill('#user-id', userId);
  await page.click('#signin button[type="submit"]');
}

async function hero(page) {
  const element = await page.waitForSelector(`${HERO}[data-regard-variant]`, { timeout: TIMEOUT_MS });
  return {
    variant: await element.getAttribute('data-regard-variant'),
    level: await element.getAttribute('data-regard-level'),
    decision: await element.getAttribute('data-regard-decision'),
    text: (await element.textContent()).trim(),
  };
}

// Runs one visitor in a fresh browser context; `init` is [script, argument] run before each page load.
async function visitor(browser, name, init, steps) {
  const context = await browser.newContext();
  const log = [];
  context.on('request', (request) => {
    const url = new URL(request.url());
    if (['http:', 'https:', 'ws:', 'wss:'].includes(url.protocol) && url.host !== serverHost) {
      foreignRequests.push(`${name}: ${request.url()}`);
    }
    if (url.pathname.startsWith('/v1/')) log.push(`${request.method()} ${url.pathname}`);
  });
  context.on('request', (request) => {
    if (request.headers()['x-regard-user-token']) log.push(`${request.method()} ${new URL(request.url()).pathname} +token`);
  });
  if (init) await context.addInitScript(...init);
  const page = await context.newPage();
  page.on('console', (message) => log.push(`console.${message.type()}: ${message.text()}`));
  page.on('pageerror', (error) => log.push(`page error: ${error.message}`));
  try {
    const summary = await steps(page, log);
    results.push(`ok   ${name}: ${summary}`);
  } catch (error) {
    results.push(`FAIL ${name}: ${error.message}\n       browser log:\n         ${log.join('\n         ')}`);
  } finally {
    await context.close();
  }
}

async function main() {
  const slot = await api('GET', '/v1/slots/home_hero', { key: adminKey });
  check(slot, 'the home_hero slot is missing');
  await seedReturningVisitor();
  await seedSignedInCustomers();

  const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';
  let browser;
  try {
    browser = await chromium.launch({ executablePath, headless: true, args: ['--no-sandbox'] });
  } catch (error) {
    fail(`could not launch Chromium at ${executablePath} (apt-get install -y chromium): ${error.message}`);
  }

  try {
    // (a) A returning visitor, known from two days ago, who has already said yes.
    await visitor(
      browser,
      'returning visitor',
      [
        (answer) => {
          localStorage.setItem('regard_anonymous_id', 'e2e-returning');
          localStorage.setItem('regard_consent', answer);
        },
        JSON.stringify(ALL_YES),
      ],
      async (page) => {
        await page.goto(`${base}/shop`);
        const decided = await hero(page);
        check(decided.variant === 'welcome_back', `expected welcome_back, got ${JSON.stringify(decided)}`);
        check(decided.text.includes('Welcome back'), `hero reads ${JSON.stringify(decided.text)}`);
        check(await page.isHidden('#consent-banner'), 'the consent banner shows despite a stored answer');
        return `${decided.variant} (${decided.level})`;
      },
    );
    // (b) A newsletter visitor who accepts the banner.
    await visitor(browser, 'summer-sale visitor', null, async (page, log) => {
      await page.goto(`${base}/shop?utm_source=newsletter&utm_medium=email&utm_campaign=summer-sale`);
      await page.waitForSelector('#consent-banner:not([hidden])', { timeout: TIMEOUT_MS });
      await page.waitForTimeout(500);
      check(log.filter((l) => !l.startsWith('console')).length === 0, `sent before consent: ${log.join(', ')}`);
      const stored = await page.evaluate(() => localStorage.getItem('regard_anonymous_id'));
      check(stored === null, 'an anonymous id was stored before consent');
      await page.click('#consent-accept');
      const decided = await hero(page);
      check(decided.variant === 'summer', `expected summer, got ${JSON.stringify(decided)}`);
      check(decided.text.includes('Summer sale'), `hero reads ${JSON.stringify(decided.text)}`);
      return `${decided.variant} (${decided.level})`;
    });

    // (c) A visitor who declines, then comes back: generic content, and "why?" says so.
    await visitor(browser, 'opted-out visitor', null, async (page) => {
      await page.goto(`${base}/shop`);
      await page.click('#consent-decline');
      const first = await hero(page);
      check(first.variant === 'default' && first.level === 'generic', `after Decline: ${JSON.stringify(first)}`);
      await page.reload();
      const decided = await hero(page);
      check(decided.variant === 'default', `expected the default, got ${JSON.stringify(decided)}`);
      check(decided.level === 'generic', `expected level generic, got ${decided.level}`);
      check(decided.text.includes('Our bestsellers'), `hero reads ${JSON.stringify(decided.text)}`);
      check(await page.isHidden('#consent-banner'), 'the consent banner shows again after Decline');
      await page.click(`${HERO} .regard-why`);
      const why = page.locator(`${HERO} .regard-why-text`);
      await why.filter({ hasText: 'turned off personalization' }).waitFor({ timeout: TIMEOUT_MS });
      return `${decided.variant} (${decided.level}); why: ${(await why.textContent()).trim()}`;
    });

    // (d) A visitor who has said yes signs in: as someone the page has no token for (a mere
    // claim: generic content, and "why?" says a signed token is needed), then as the demo user,
    // whose token the page carries: welcome back, also after a reload.
    await visitor(
      browser,
      'signed-in visitor',
      [(answer) => localStorage.setItem('regard_consent', answer), JSON.stringify(ALL_YES)],
      async (page, log) => {
        await page.goto(`${base}/shop`);
        const first = await hero(page);
        check(first.variant === 'default', `a first visit: ${JSON.stringify(first)}`);
        check((await page.textContent('#demo-user')) === demoUser, 'the demo hint does not name the demo user');

        await signIn(page, CLAIMED_USER);
        const claimed = await nextHero(page, first.decision);
        check(claimed.variant === 'default', `a claimed userId was personalized for: ${JSON.stringify(claimed)}`);
        await page.click(`${HERO} .regard-why`);
        const why = page.locator(`${HERO} .regard-why-text`);
        await why.filter({ hasText: 'signed user token' }).waitFor({ timeout: TIMEOUT_MS });

        await page.click('#signout');
        const signedOut = await nextHero(page, claimed.decision);
        await signIn(page, demoUser);
        const signed = await nextHero(page, signedOut.decision);
        check(signed.variant === 'welcome_back', `the demo user with a token: ${JSON.stringify(signed)}`);
        check(log.includes('POST /v1/decide +token'), `the decision went without the token: ${log.join(', ')}`);

        await page.reload();
        const again = await hero(page);
        check(again.variant === 'welcome_back', `after a reload: ${JSON.stringify(again)}`);
        await page.click(`${HERO} .regard-why`);
        await why.filter({ hasText: 'visited before' }).waitFor({ timeout: TIMEOUT_MS });
        return `${CLAIMED_USER}: ${claimed.variant}; ${demoUser}: ${signed.variant} (${signed.level})`;
      },
    );
  } finally {
    await browser.close();
  }

  console.log(results.join('\n'));
  if (foreignRequests.length) fail(`requests left for other hosts:\n  ${foreignRequests.join('\n  ')}`);
  const failed = results.filter((r) => r.startsWith('FAIL')).length;
  if (failed) fail(`${failed} of ${results.length} visitors saw the wrong thing`);
  console.log(`PASS: ${results.length} visitors, every request went to ${serverHost}`);
}

main().catch((error) => fail(error.stack || String(error)));
