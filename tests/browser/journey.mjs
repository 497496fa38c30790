// journey.mjs - the person's journey in a real Chromium with JavaScript off,
// on a phone-sized screen, in Russian (?lang=ru): landing -> the safety page ->
// get a codename -> practise typing it back -> continue -> fill the intake
// form and send -> "sent" -> quick exit.
// Asserts that every page is in Russian, has a quick exit, fits the phone's
// width, logs nothing to the console (a CSP violation would) and loads nothing
// from another origin. Saves {landing,safety,codename,check,inbox,sent}-ru.png and
// landing-en.png (docs/screenshots/ holds the README's copies).
//
// Starts its own instance: `refuge server init` (cheap Argon2id), a first
// admin enrolled with the real CLI (the line is open only once the roster has
// someone), `refuge serve` on a free loopback port. REFUGE_BIN picks the
// binary (default build-san/refuge). Exit status 0 passed, 1 failed.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '..', '..');
const bin = process.env.REFUGE_BIN || path.join(repo, 'build-san', 'refuge');
// Screenshots go to $SCREENSHOTS_DIR (make check: build-san/check-logs/screenshots,
// so a test run leaves the tree clean; `make screenshots`: docs/screenshots).
const shots = path.resolve(repo, process.env.SCREENSHOTS_DIR || path.join('docs', 'screenshots'));
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'refuge-browser-'));
let server = null;
let browser = null;

function fail(msg) {
  throw new Error(msg);
}

function check(cond, msg) {
  if (!cond) fail(msg);
}

function log(msg) {
  console.log('  ' + msg);
}

function refuge(args, env) {
  const p = spawnSync(bin, args, { env: { ...process.env, ...env }, encoding: 'utf8', timeout: 300000 });
  const out = (p.stdout || '') + (p.stderr || '');
  if (p.status !== 0) fail(`refuge ${args.slice(0, 2).join(' ')} failed (status ${p.status}):\n${out.slice(-2000)}`);
  return out;
}

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

async function startInstance() {
  const data = path.join(tmp, 'data');
  const help = spawnSync(bin, ['server', 'init', '--help'], { encoding: 'utf8' });
  const helpText = (help.stdout || '') + (help.stderr || '');
  const args = ['server', 'init', '--data', data];
  if (helpText.includes('--kdf-ops') && helpText.includes('--kdf-mem')) args.push('--kdf-ops', '1', '--kdf-mem', '8');
  const initOut = refuge(args);
  const m = initOut.match(/--token[ =]+['"]?([A-Za-z0-9_\-+/=.]{16,})/) ||
    initOut.match(/token\S*\s*[:=]?\s*([A-Za-z0-9_\-+/=]{20,})\s*$/im);
  check(m, `refuge server init printed no enrollment token:\n${initOut}`);
  const token = m[1];

  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const errPath = path.join(tmp, 'serve.stderr');
  const errFd = fs.openSync(errPath, 'a');
  server = spawn(bin, ['serve', '--data', data, '--listen', `127.0.0.1:${port}`,
    ...(process.getuid() === 0 ? ['--allow-root'] : [])],
    { stdio: ['ignore', errFd, errFd] });
  fs.closeSync(errFd);
  let exited = null;
  server.on('exit', (code, sig) => { exited = code ?? sig; });
  const deadline = Date.now() + 60000;
  for (;;) {
    if (exited !== null) fail(`server did not start (exit ${exited}):\n${fs.readFileSync(errPath, 'utf8').slice(-2000)}`);
    const ok = await new Promise((resolve) => {
      const c = net.connect(port, '127.0.0.1', () => { c.destroy(); resolve(true); });
      c.on('error', () => resolve(false));
    });
    if (ok) break;
    if (Date.now() > deadline) fail(`server did not listen within 60 s:\n${fs.readFileSync(errPath, 'utf8').slice(-2000)}`);
    await new Promise((r) => setTimeout(r, 100));
  }

  const passfile = path.join(tmp, 'passphrase');
  fs.writeFileSync(passfile, 'browser test passphrase\n', { mode: 0o600 });
  refuge(['init', '--server', url, '--token', token, '--name', 'Alice'],
    { REFUGE_HOME: path.join(tmp, 'staff'), REFUGE_PASSPHRASE_FILE: passfile });
  log(`instance on ${url}, first admin enrolled`);
  return { url, errPath };
}

// The Russian catalogue (po/ru.po): msgid -> msgstr, so the test asserts
// the exact texts a person reads.
function loadPo(file) {
  const map = new Map();
  let id = null;
  let cur = null;
  const unq = (l) => JSON.parse(l.slice(l.indexOf('"')));
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    if (line.startsWith('msgid ')) { id = unq(line); cur = 'id'; } else if (line.startsWith('msgstr ')) { map.set(id, unq(line)); cur = 'str'; } else if (line.startsWith('"') && cur === 'str') map.set(id, map.get(id) + unq(line));
    else if (line.startsWith('"') && cur === 'id') id += unq(line);
  }
  return map;
}
const ru = loadPo(path.join(repo, 'po', 'ru.po'));

async function assertTexts(page, what, ids) {
  const text = (await page.locator('body').innerText()).replace(/\s+/g, ' ');
  for (const id of ids) {
    const want = ru.get(id);
    check(want, `po/ru.po has no translation of ${id}`);
    check(text.includes(want.replace(/\s+/g, ' ')), `${what}: does not show "${want}" (${id})`);
  }
}

// Cyrillic letters must clearly outnumber Latin ones in the visible text.
async function assertRussian(page, what) {
  const text = await page.locator('body').innerText();
  const cyr = (text.match(/[\u0400-\u04FF]/g) || []).length;
  const lat = (text.match(/[A-Za-z]/g) || []).length;
  check(cyr > 20 && cyr > 3 * lat, `${what}: the page is not in Russian (${cyr} Cyrillic, ${lat} Latin letters):\n${text.slice(0, 600)}`);
  const lang = await page.locator('html').getAttribute('lang');
  check(lang === 'ru', `${what}: <html lang> is ${JSON.stringify(lang)}, not "ru"`);
  return text;
}

async function assertCommon(page, what) {
  const exit = page.locator('a[href*="/exit"], form[action*="/exit"]');
  check(await exit.count() > 0, `${what}: no quick exit on the page`);
  const w = await page.evaluate(() => document.documentElement.scrollWidth);
  check(w <= 390, `${what}: the page is ${w}px wide, wider than the phone's 390px`);
  check(await page.locator('script').count() === 0, `${what}: the page has a <script>`);
}

// The practise step after the codename page (POST /new/check, JavaScript
// off): a wrong third word is named by its position only, and what was typed
// is not put back; the right codename is recognised; the page then offers
// "continue" (POST /new) first. Saves check-ru.png.
async function practise(page, words) {
  const go = page.locator('form[action$="/new/check"] button');
  check(await go.count() === 1, 'codename page: no button to practise the codename (form to /new/check)');
  await Promise.all([page.waitForLoadState('load'), go.click()]);
  check(new URL(page.url()).pathname.endsWith('/new/check'), `after "practise" the page is ${page.url()}`);
  await assertRussian(page, 'practise page');
  await assertTexts(page, 'practise page', ['nav.exit', 'check.heading', 'check.submit', 'check.show']);
  await assertCommon(page, 'practise page');
  const body = await page.locator('body').innerText();
  check(!words.some((w) => body.includes(w)), 'practise page: shows the codename\'s words');

  const wrong = [...words];
  wrong[2] = 'неверно';
  await page.locator('input[name="typed"]').fill(wrong.join(' '));
  await Promise.all([page.waitForLoadState('load'), page.locator('form[action$="/new/check"] button').click()]);
  const said = (await page.locator('body').innerText()).replace(/\s+/g, ' ');
  const word3 = ru.get('check.word').replace('{{v:n}}', '3');
  check(said.includes(word3), `practise page: word 3 typed wrong, the page does not say "${word3}"`);
  check(!said.includes(ru.get('check.word').replace('{{v:n}}', '4')), 'practise page: names a word that was right');
  check(await page.locator('input[name="typed"]').inputValue() === '', 'practise page: what was typed is put back into the field');
  check(!said.includes('неверно'), 'practise page: what was typed is shown again');
  await assertCommon(page, 'practise page (word 3 wrong)');
  await shot(page, 'check-ru.png');

  await page.locator('input[name="typed"]').fill(words.join('  ').toUpperCase());
  await Promise.all([page.waitForLoadState('load'), page.locator('form[action$="/new/check"] button').click()]);
  await assertTexts(page, 'practise page (right)', ['check.right', 'check.continue']);
  await assertCommon(page, 'practise page (right)');
  log('practised the codename: word 3 named when wrong, right when right');
}

async function shot(page, name) {
  fs.mkdirSync(shots, { recursive: true });
  await page.screenshot({ path: path.join(shots, name), fullPage: true });
  log(`screenshot ${path.relative(repo, path.join(shots, name))}`);
}

async function main() {
  check(fs.existsSync(bin), `no refuge binary at ${bin} (build it: ninja -C build-san)`);
  const inst = await startInstance();
  const origin = new URL(inst.url).origin;

  browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--lang=ru-RU'], // the browser's own controls (file picker) in Russian too
  });
  const ctx = await browser.newContext({
    javaScriptEnabled: false,
    viewport: { width: 390, height: 844 },
    deviceScaleFactor: 1,
    isMobile: true,
    hasTouch: true,
    locale: 'ru-RU',
  });
  const foreign = [];
  const consoleMsgs = [];
  ctx.on('request', (req) => {
    const u = req.url();
    if (!u.startsWith(origin + '/') && u !== origin) foreign.push(u);
  });
  const failed = [];
  ctx.on('response', (r) => { if (r.status() >= 400) failed.push(`${r.status()} ${r.url()}`); });
  const page = await ctx.newPage();
  // warnings and errors only: Chromium reports e.g. Clear-Site-Data at "info"
  const onConsole = (m) => { if (m.type() === 'error' || m.type() === 'warning') consoleMsgs.push(`${m.type()}: ${m.text()}`); };
  page.on('console', onConsole);
  page.on('pageerror', (e) => consoleMsgs.push(`pageerror: ${e}`));

  // landing
  let resp = await page.goto(`${inst.url}/?lang=ru`);
  check(resp.status() === 200, `GET /?lang=ru answered ${resp.status()}`);
  await assertRussian(page, 'landing');
  await assertTexts(page, 'landing', ['nav.exit', 'landing.heading', 'landing.new', 'landing.login']);
  await assertCommon(page, 'landing');
  const title = await page.title();
  check(!/refuge|asylum|убежищ|дезерт/i.test(title), `landing: the title is not neutral: ${title}`);
  await shot(page, 'landing-ru.png');

  // the safety page: bridges where Tor is blocked, checking the address
  const toSafety = page.locator('a[href="/safety"]');
  check(await toSafety.count() === 1, 'landing: no link to the safety page');
  await Promise.all([page.waitForLoadState('load'), toSafety.click()]);
  await assertRussian(page, 'safety page');
  await assertTexts(page, 'safety page', ['nav.exit', 'safety.blocked.heading', 'safety.blocked.builtin', 'safety.address.heading']);
  await assertCommon(page, 'safety page');
  await shot(page, 'safety-ru.png');
  await page.goto(`${inst.url}/?lang=ru`);

  // get a codename: the landing's link or button to /new
  const toNew = page.locator('a[href*="/new"], form[action*="/new"] [type=submit], form[action*="/new"] button').first();
  check(await toNew.count() > 0, 'landing: no way to get a codename (link or form to /new)');
  await Promise.all([page.waitForLoadState('load'), toNew.click()]);
  check(new URL(page.url()).pathname.endsWith('/new'), `after "get a codename" the page is ${page.url()}`);
  await assertRussian(page, 'codename page');
  await assertTexts(page, 'codename page', ['nav.exit', 'new.heading', 'new.continue']);
  await assertCommon(page, 'codename page');
  const cn = page.locator('.codename, #codename, ol.words').first();
  check(await cn.count() > 0, 'codename page: no element with class "words" or "codename"');
  const codename = (await cn.innerText()).trim().replace(/\s+/g, ' ');
  const words = codename.split(' ');
  check(words.length === 7, `codename page: the codename has ${words.length} words: ${codename}`);
  check(words.every((w) => /^[\u0400-\u04FF-]+$/.test(w)), `codename page: the Russian codename is not Cyrillic words: ${codename}`);
  await shot(page, 'codename-ru.png');

  // practise: type the codename back (word 3 wrong, then right); nothing is stored
  await practise(page, words);

  // continue
  const cont = page.locator('form[action*="/new"] [type=submit], form[action*="/new"] button').first();
  check(await cont.count() > 0, 'codename page: no continue button');
  await Promise.all([page.waitForLoadState('load'), cont.click()]);
  if (!new URL(page.url()).pathname.endsWith('/inbox')) await page.goto(`${inst.url}/inbox`);
  await assertRussian(page, 'inbox');
  await assertTexts(page, 'inbox', ['nav.exit', 'intake.heading', 'compose.send']);
  await assertCommon(page, 'inbox');

  // intake form: first choice of every question, a message in Russian
  const form = page.locator('form[action*="/send"]');
  check(await form.count() === 1, 'inbox: no form posting to /send');
  const radios = await form.locator('input[type=radio]').all();
  const seen = new Set();
  for (const r of radios) {
    const name = await r.getAttribute('name');
    if (seen.has(name)) continue;
    seen.add(name);
    await r.check();
  }
  const boxes = await form.locator('input[type=checkbox]').all();
  if (boxes.length) await boxes[0].check();
  for (const s of await form.locator('select').all()) {
    const vals = await s.locator('option').evaluateAll((os) => os.map((o) => o.value).filter((v) => v));
    if (vals.length) await s.selectOption(vals[0]);
  }
  for (const t of await form.locator('input[type=text]').all()) await t.fill('Ростовская область');
  const ta = form.locator('textarea');
  check(await ta.count() > 0, 'inbox: the intake form has no message field');
  await ta.first().fill('Здравствуйте. Мне нужна помощь, чтобы выехать. У меня есть загранпаспорт.');
  check(seen.size + boxes.length + (await form.locator('select').count()) > 0, 'inbox: the intake form has no questions');
  await shot(page, 'inbox-ru.png');
  const send = form.locator('[type=submit], button').last();
  await Promise.all([page.waitForLoadState('load'), send.click()]);
  resp = null;
  const sentText = await assertRussian(page, 'sent page');
  await assertCommon(page, 'sent page');
  await assertTexts(page, 'sent page', ['nav.exit', 'inbox.sent']);
  check(!/ошибк/i.test(sentText.slice(0, 400)), `sent page: looks like an error:\n${sentText.slice(0, 400)}`);
  await shot(page, 'sent-ru.png');
  log(`sent; the page says: ${sentText.replace(/\s+/g, ' ').slice(0, 120)}`);

  // quick exit
  const exit = page.locator('a[href*="/exit"], form[action*="/exit"] [type=submit], form[action*="/exit"] button').first();
  await Promise.all([page.waitForLoadState('load'), exit.click()]);
  log(`quick exit went to ${page.url()}`);
  await page.goto(`${inst.url}/inbox`);
  check(new URL(page.url()).pathname.endsWith('/login'), `after quick exit /inbox shows ${page.url()}, not the login page`);
  const cookies = await ctx.cookies();
  for (const c of cookies) check(c.expires === -1, `cookie ${c.name} outlives the session (expires ${c.expires})`);

  // the English landing for the README
  const en = await browser.newContext({ javaScriptEnabled: false, viewport: { width: 390, height: 844 }, isMobile: true, locale: 'en-US' });
  en.on('request', (req) => { if (!req.url().startsWith(origin + '/')) foreign.push(req.url()); });
  const pen = await en.newPage();
  pen.on('console', onConsole);
  en.on('response', (r) => { if (r.status() >= 400) failed.push(`${r.status()} ${r.url()}`); });
  resp = await pen.goto(`${inst.url}/?lang=en`);
  check(resp.status() === 200, `GET /?lang=en answered ${resp.status()}`);
  check(/[A-Za-z]{20}/.test((await pen.locator('body').innerText()).replace(/\s/g, '')), 'landing (en): no English text');
  await shot(pen, 'landing-en.png');

  check(foreign.length === 0, `requests to other origins: ${foreign.join(', ')}`);
  // The browser asks for /favicon.ico by itself (Playwright does not report
  // that request); a 404 there is the one "Failed to load resource" console
  // error allowed, once per context, if /favicon.ico is indeed a 404.
  check(failed.length === 0, `requests that failed: ${failed.join(', ')}`);
  const fav = await fetch(`${inst.url}/favicon.ico`);
  let allowed = fav.status === 404 ? 2 : 0;
  const badConsole = consoleMsgs.filter((m) => {
    if (allowed > 0 && m.includes('Failed to load resource') && m.includes('404')) { allowed--; return false; }
    return true;
  });
  check(badConsole.length === 0, `console errors or warnings (a CSP violation?):\n${badConsole.join('\n')}`);
  await stopServer();
  const err = fs.readFileSync(inst.errPath, 'utf8');
  const san = err.search(/ERROR: (Address|Leak)Sanitizer|runtime error:/);
  check(san < 0, `sanitizer report from refuge serve:\n${err.slice(Math.max(0, san - 200), san + 3000)}`);
}

async function stopServer() {
  if (!server || server.exitCode !== null || server.signalCode !== null) return;
  const done = new Promise((r) => server.on('exit', r));
  server.kill('SIGTERM');
  await Promise.race([done, new Promise((r) => setTimeout(r, 30000))]);
}

let status = 0;
const t0 = Date.now();
try {
  await main();
  console.log(`PASS browser journey (${((Date.now() - t0) / 1000).toFixed(1)}s)`);
} catch (e) {
  console.log(`FAIL browser journey: ${e.message}`);
  status = 1;
} finally {
  if (browser) await browser.close().catch(() => {});
  await stopServer();
  if (process.env.REFUGE_TEST_KEEP !== '1') fs.rmSync(tmp, { recursive: true, force: true });
  else console.log(`kept ${tmp}`);
}
process.exit(status);
