// desk.mjs - the caseworker's desk (refuge desk) in a real Chromium with
// JavaScript off, on a 360 px wide screen, in English, Russian and Ukrainian: a person
// writes (through the person's pages, in the same browser engine), the first
// admin starts `refuge desk --no-open`, the test opens the printed one-time
// link, syncs, finds the case on the board, opens it, replies and moves it
// to "verifying" with the keyboard only (focus + Enter), adds a tag and a
// note; a second caseworker (Bob, enrolled and approved before the person
// wrote) starts his own `refuge desk` on his own home, presses Sync now and
// sees the stage, the tag, the reply and the note on his board and case
// page; the person reads the reply on their page (and not the note); then
// Alice locks her desk.
// Asserts: no sideways scrolling at 360 px, no <script> on any desk page, no
// console error or warning (a CSP violation would show), no request to
// another origin, the token does not stay in the address bar, the session
// cookie is HttpOnly + SameSite=Strict + a browser-session cookie.
// The team page: invite from the desk, a second caseworker enrolls with the
// token shown, the admin approves by typing the fingerprint read out.
// With JavaScript ON in one more context (autoRefresh): the board refreshes
// itself after a background sync (Bob's tag appears without a click), not
// while Alice types in the filter; a hostile PDF (JavaScript on open, a
// /Launch action, markup as its author) previews as pictures, no dialog, no
// console message. Saves desk-board-{en,ru,uk}.png, desk-case-{en,ru,uk}.png,
// desk-file-{en,ru,uk}.png and desk-team-{en,ru,uk}.png into
// $SCREENSHOTS_DIR (default docs/screenshots/).
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { contrastFailures } from './contrast.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '..', '..');
const bin = process.env.REFUGE_BIN || path.join(repo, 'build-san', 'refuge');
const shots = path.resolve(repo, process.env.SCREENSHOTS_DIR || path.join('docs', 'screenshots'));
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'refuge-desk-browser-'));
const WIDTH = 360;
const procs = [];
let browser = null;

function fail(msg) { throw new Error(msg); }
function check(cond, msg) { if (!cond) fail(msg); }
function log(msg) { console.log('  ' + msg); }
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

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
    s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
  });
}

async function waitFor(fn, what, ms = 60000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) fail(`timed out: ${what}`);
    await sleep(100);
  }
}

function spawnLogged(args, env, name) {
  const outPath = path.join(tmp, `${name}.out`);
  const fd = fs.openSync(outPath, 'a');
  const p = spawn(bin, args, { env: { ...process.env, ...env }, stdio: ['ignore', fd, fd] });
  fs.closeSync(fd);
  p.exited = null;
  p.on('exit', (code, sig) => { p.exited = code ?? sig; });
  p.outPath = outPath;
  procs.push(p);
  return p;
}

async function startInstance() {
  const data = path.join(tmp, 'data');
  const helpText = spawnSync(bin, ['server', 'init', '--help'], { encoding: 'utf8' });
  const args = ['server', 'init', '--data', data];
  if (((helpText.stdout || '') + (helpText.stderr || '')).includes('--kdf-ops')) args.push('--kdf-ops', '1', '--kdf-mem', '8');
  const initOut = refuge(args);
  const m = initOut.match(/--token[ =]+['"]?([A-Za-z0-9_\-+/=.]{16,})/);
  check(m, `refuge server init printed no enrollment token:\n${initOut}`);
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const srv = spawnLogged(['serve', '--data', data, '--listen', `127.0.0.1:${port}`,
    ...(process.getuid() === 0 ? ['--allow-root'] : [])], {}, 'serve');
  await waitFor(() => new Promise((resolve) => {
    if (srv.exited !== null) fail(`server exited:\n${fs.readFileSync(srv.outPath, 'utf8').slice(-2000)}`);
    const c = net.connect(port, '127.0.0.1', () => { c.destroy(); resolve(true); });
    c.on('error', () => resolve(false));
  }), 'the server listens');
  const passfile = path.join(tmp, 'passphrase');
  fs.writeFileSync(passfile, 'desk browser test passphrase\n', { mode: 0o600 });
  const env = { REFUGE_HOME: path.join(tmp, 'staff'), REFUGE_PASSPHRASE_FILE: passfile };
  refuge(['init', '--server', url, '--token', m[1], '--name', 'Alice'], env);
  log(`instance on ${url}, Alice enrolled`);
  return { url, env, srv };
}

function newContext() {
  return browser.newContext({
    javaScriptEnabled: false,
    viewport: { width: WIDTH, height: 760 },
    deviceScaleFactor: 1,
    isMobile: true,
    hasTouch: true,
    locale: 'en-US',
  });
}

// The person writes a first message through the person's pages: every
// radio group and select gets its first choice, text fields "test", the
// message box the text.
async function personWrites(inst, text, files = [], keep = false) {
  const ctx = await newContext();
  const page = await ctx.newPage();
  await page.goto(`${inst.url}/new?lang=en`);
  await Promise.all([page.waitForLoadState('load'), page.locator('form[action$="/new"] button').first().click()]);
  if (!new URL(page.url()).pathname.endsWith('/inbox')) await page.goto(`${inst.url}/inbox`);
  const form = page.locator('form[action$="/send"]');
  check(await form.count() === 1, `no /send form on ${page.url()}`);
  const seen = new Set();
  for (const r of await form.locator('input[type=radio]').all()) {
    const n = await r.getAttribute('name');
    if (!seen.has(n)) { seen.add(n); await r.check(); }
  }
  for (const s of await form.locator('select').all()) {
    const vals = await s.locator('option').evaluateAll((os) => os.map((o) => o.value).filter((v) => v));
    if (vals.length) await s.selectOption(vals[0]);
  }
  for (const t of await form.locator('input[type=text]').all()) await t.fill('test');
  for (const t of await form.locator('textarea').all()) await t.fill(text);
  if (files.length) await form.locator('input[type=file]').first().setInputFiles(files);
  await Promise.all([page.waitForLoadState('load'), form.locator('button[type=submit], button:not([type])').last().click()]);
  log('the person wrote');
  if (keep) return { ctx, page };
  await ctx.close();
}

let contrastChecked = false;
async function assertDeskPage(page, what) {
  const m = await page.evaluate(() => {
    const d = document.documentElement;
    let worst = null;
    let right = 0;
    for (const el of document.body.querySelectorAll('*')) {
      const r = el.getBoundingClientRect();
      if (r.width > 0 && r.right > right) { right = r.right; worst = el.tagName.toLowerCase() + (el.className ? '.' + el.className : ''); }
    }
    return { scroll: d.scrollWidth, client: d.clientWidth, right: Math.ceil(right), worst };
  });
  check(m.scroll <= m.client, `${what}: scrolls sideways at ${WIDTH}px (scrollWidth ${m.scroll})`);
  check(m.right <= m.client, `${what}: ${m.worst} reaches ${m.right}px, past the ${m.client}px screen`);
  // the only script the desk has is the board's /board.js (empty element,
  // no inline code); every other page has none
  const scripts = await page.locator('script').evaluateAll((ss) => ss.map((x) => `${x.getAttribute('src')}|${x.textContent}`));
  const isBoard = new URL(page.url()).pathname === '/';
  check(scripts.length === (isBoard ? 1 : 0) && scripts.every((x) => x === '/board.js|'),
    `${what}: unexpected <script> elements: ${JSON.stringify(scripts)}`);
  if (!contrastChecked) { // the checker itself, once: it must catch grey on white
    const p2 = await page.context().newPage();
    await p2.setContent('<body style="background:#fff"><p style="color:#aaa">faint</p><p style="color:#595959">dark enough</p></body>');
    const seen = await contrastFailures(p2);
    await p2.close();
    check(seen.length === 1 && seen[0].includes('faint'), `the contrast check does not work: ${seen.join('; ')}`);
    contrastChecked = true;
  }
  const low = await contrastFailures(page);
  check(low.length === 0, `${what}: text below WCAG AA contrast:\n${low.join('\n')}`);
}

async function shot(page, name) {
  fs.mkdirSync(shots, { recursive: true });
  await page.screenshot({ path: path.join(shots, name), fullPage: true });
  log(`screenshot ${path.relative(repo, path.join(shots, name))}`);
  if (process.env.DESK_SHOTS_WIDE === '1') { // for looking at them at desktop width (not kept in docs/)
    const vp = page.viewportSize();
    await page.setViewportSize({ width: 1280, height: 800 });
    await page.screenshot({ path: path.join(shots, name.replace('.png', '-wide.png')), fullPage: true });
    await page.setViewportSize(vp);
  }
}

// Keyboard only: focus the control, press Enter, wait for the next page.
async function pressEnterOn(page, locator) {
  await locator.focus();
  await Promise.all([page.waitForLoadState('load'), page.waitForEvent('framenavigated'), page.keyboard.press('Enter')]);
}

// ---- two caseworkers (issue 9, deskbench helper)

// Alice invites NAME; NAME enrolls in a home of their own and Alice approves
// the fingerprint NAME's `refuge fingerprint` prints; both sync.
function enrollSecond(inst, name) {
  const out = refuge(['staff', 'invite'], inst.env);
  const line = out.split('\n').find((l) => l.includes('init') && l.includes('--token')) || '';
  const tok = line.match(/--token[ =]+['"]?([A-Za-z0-9_\-+/=.]{16,})/);
  check(tok, `refuge staff invite printed no init line:\n${out}`);
  const env = { REFUGE_HOME: path.join(tmp, `staff-${name.toLowerCase()}`), REFUGE_PASSPHRASE_FILE: inst.env.REFUGE_PASSPHRASE_FILE };
  refuge(['init', '--server', inst.url, '--token', tok[1], '--name', name], env);
  const fp = refuge(['fingerprint'], env).match(/\d{5}(?: \d{5}){7}/);
  check(fp, `refuge fingerprint printed no fingerprint for ${name}`);
  refuge(['staff', 'approve', name, '--fingerprint', fp[0]], inst.env);
  refuge(['sync'], inst.env);
  refuge(['sync'], env);
  log(`${name} enrolled and approved`);
  return { env, name };
}

// Starts `refuge desk` for env; resolves to {desk, link, origin}.
async function startDesk(env, name) {
  const port = await freePort();
  const desk = spawnLogged(['desk', '--no-open', '--port', String(port), '--sync-every', '0'], env, name);
  const link = await waitFor(() => {
    if (desk.exited !== null) fail(`${name}'s desk exited:\n${fs.readFileSync(desk.outPath, 'utf8')}`);
    const m = fs.readFileSync(desk.outPath, 'utf8').match(/http:\/\/127\.0\.0\.1:\d+\/open\?t=[A-Za-z0-9_-]+/);
    return m && m[0];
  }, `${name}'s desk prints its link`);
  return { desk, link, origin: `http://127.0.0.1:${port}` };
}

// On the case page: open "Assign, tag, due date, note" with the keyboard,
// add a tag and a note.
async function tagAndNote(page, tag, note) {
  const summary = page.locator('details.controls summary');
  if (await summary.count()) { await summary.focus(); await page.keyboard.press('Enter'); }
  await page.locator('#tag').fill(tag);
  await pressEnterOn(page, page.locator('form:has(#tag) button'));
  check((await page.locator('main').innerText()).includes(tag), `the tag ${tag} is shown`);
  if (await summary.count() && !(await page.locator('#note').isVisible())) { await summary.focus(); await page.keyboard.press('Enter'); }
  await page.locator('#note').fill(note);
  await pressEnterOn(page, page.locator('form:has(#note) button'));
  check((await page.locator('main').innerText()).includes(note), 'the note is shown');
}

// Bob's own desk (another process, Bob's home and keys), in another browser
// context: after Sync now, the board and the case page show what Alice did.
async function secondDeskSeesChanges(bob, cid, want) {
  const { desk, link, origin } = await startDesk(bob.env, 'desk-bob');
  const ctx = await newContext();
  const page = await ctx.newPage();
  await page.goto(link);
  check(new URL(page.url()).origin === origin, `Bob's link opened ${page.url()}`);
  await pressEnterOn(page, page.locator('form[action="/sync"] button'));
  const board = await page.locator('main').innerText();
  check(board.includes(cid), `Bob's board lists the case after the sync:\n${board.slice(0, 1500)}`);
  const row = page.locator('li.case', { has: page.locator(`a.id:text-is("${cid}")`) });
  const rowText = await row.innerText();
  check(rowText.includes(want.stage) && rowText.includes(want.tag),
    `Bob's board shows the stage ${want.stage} and the tag ${want.tag}:\n${rowText}`);
  await assertDeskPage(page, "Bob's board");
  await pressEnterOn(page, row.locator('a.id'));
  const body = await page.locator('main').innerText();
  for (const [what, text] of [['the stage', want.stage], ['the reply', want.reply], ['the tag', want.tag], ['the note', want.note], ["Alice's name", 'Alice']])
    check(body.includes(text), `Bob's case page shows ${what} (${text}):\n${body.slice(0, 2500)}`);
  await assertDeskPage(page, "Bob's case");
  await pressEnterOn(page, page.locator('form[action="/lock"] button'));
  await waitFor(() => desk.exited !== null, "Bob's desk exits after Lock", 30000);
  check(desk.exited === 0, `Bob's desk exited with ${desk.exited}`);
  await ctx.close();
  log("Bob's desk shows Alice's stage, reply, tag and note after Sync now");
}

// The board's automatic refresh (board.js), with JavaScript ON in this one
// context: Alice's desk syncs in the background every second; Bob tags the
// case from his CLI; Alice's board shows the tag without a click and without
// reloading the page. While Alice types in the filter form, it does not
// refresh; once she leaves the form, it does. No console error (a CSP
// violation would show) and no request to another origin.
async function autoRefresh(inst, bob, cid) {
  const port = await freePort();
  const desk = spawnLogged(['desk', '--no-open', '--port', String(port), '--sync-every', '1'], inst.env, 'desk-live');
  const link = await waitFor(() => {
    if (desk.exited !== null) fail(`the refreshing desk exited:\n${fs.readFileSync(desk.outPath, 'utf8')}`);
    const m = fs.readFileSync(desk.outPath, 'utf8').match(/http:\/\/127\.0\.0\.1:\d+\/open\?t=[A-Za-z0-9_-]+/);
    return m && m[0];
  }, 'the refreshing desk prints its link');
  const origin = `http://127.0.0.1:${port}`;
  const ctx = await browser.newContext({ javaScriptEnabled: true, viewport: { width: WIDTH, height: 760 }, locale: 'en-US' });
  const msgs = [];
  const foreign = [];
  ctx.on('request', (req) => { if (!req.url().startsWith(origin + '/')) foreign.push(req.url()); });
  const page = await ctx.newPage();
  page.on('console', (m) => { if (m.type() === 'error' || m.type() === 'warning') msgs.push(`${m.type()}: ${m.text()}`); });
  page.on('pageerror', (e) => msgs.push(`pageerror: ${e}`));
  page.on('dialog', (d) => { msgs.push(`dialog: ${d.message()}`); d.dismiss().catch(() => {}); });
  await page.goto(link);
  const row = () => page.locator('li.case', { has: page.locator(`a.id:text-is("${cid}")`) });
  await waitFor(async () => (await row().count()) === 1, "Alice's board lists the case", 30000);
  await assertDeskPage(page, 'board with JavaScript on');
  await page.evaluate(() => { window.rfNoReload = 1; });
  let navigations = 0;
  page.on('framenavigated', (f) => { if (f === page.mainFrame()) navigations++; });

  refuge(['tag', cid, 'bobs-tag'], bob.env);
  refuge(['sync'], bob.env);
  await waitFor(async () => (await row().innerText()).includes('bobs-tag'),
    "Bob's tag appears on Alice's board without a click", 30000);
  check(navigations === 0 && await page.evaluate(() => window.rfNoReload === 1),
    'the list was refreshed in place, the page was not reloaded');

  // typing in the filter form: no refresh until she leaves it
  await page.locator('#f-q').focus();
  await page.keyboard.type('flat');
  const before = await page.locator('#board-live').getAttribute('data-refreshed');
  refuge(['tag', cid, 'while-typing'], bob.env);
  refuge(['sync'], bob.env);
  await sleep(8000); // several syncs and polls
  check(!(await row().innerText()).includes('while-typing') &&
    await page.locator('#board-live').getAttribute('data-refreshed') === before &&
    await page.locator('#f-q').inputValue() === 'flat',
  'no refresh while typing in the filter (the typed text is kept)');
  await page.locator('#f-q').fill('');
  await page.locator('h1').click();
  await page.evaluate(() => document.activeElement && document.activeElement.blur());
  await waitFor(async () => (await row().innerText()).includes('while-typing'),
    'after leaving the filter form, the board refreshes', 30000);
  // the hostile PDF's page, with JavaScript on: its pages are pictures,
  // nothing of it runs (no dialog, no console message), its name escaped
  await page.goto(`${origin}/case/${cid}?lang=en`);
  await Promise.all([page.waitForLoadState('load'), page.locator('a', { hasText: 'letter.pdf' }).click()]);
  const pdfText = await page.locator('main').innerText();
  check(pdfText.includes('PDF document') && pdfText.includes('Page 1 of 2'),
    `the hostile PDF's page: a PDF, page 1 of 2:\n${pdfText.slice(0, 1500)}`);
  check(pdfText.includes("author's name") && !pdfText.includes('alert(1)'), "the PDF's author is warned of, never shown");
  const img = page.locator('.preview img');
  await waitFor(async () => img.evaluate((i) => i.complete && i.naturalWidth > 0), 'the PDF page picture loads', 30000);
  check(await img.evaluate((i) => i.naturalWidth) === 1600, 'the PDF page is drawn 1600 px wide');
  await assertDeskPage(page, 'hostile PDF (JavaScript on)');
  await Promise.all([page.waitForLoadState('load'), page.locator('a[rel="next"]').click()]);
  check((await page.locator('main').innerText()).includes('Page 2 of 2'), 'the next page of the PDF');
  await waitFor(async () => page.locator('.preview img').evaluate((i) => i.complete && i.naturalWidth > 0), 'page 2 loads', 30000);
  check(!msgs.some((m) => m.includes('pdfjs')), 'nothing of the PDF ran');
  await page.goto(`${origin}/?lang=en`);
  const badJs = msgs.filter((m) => !(m.includes('Failed to load resource') && m.includes('404')));
  check(badJs.length === 0, `console errors, warnings or dialogs with JavaScript on:\n${badJs.join('\n')}`);
  check(foreign.length === 0, `requests to other origins: ${foreign.join(', ')}`);
  await page.locator('form[action="/lock"] button').click();
  await waitFor(() => desk.exited !== null, 'the refreshing desk exits after Lock', 30000);
  await ctx.close();
  log("JavaScript on: Bob's change appears on Alice's board without a click; not while she types; a hostile PDF's pages are pictures, nothing of it runs");
}

async function main() {
  check(fs.existsSync(bin), `no refuge binary at ${bin}`);
  const inst = await startInstance();
  browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const bob = enrollSecond(inst, 'Bob'); // before the person writes: sealed to both
  const message = 'Please help: we need to leave the city this week.';
  // a photo with GPS coordinates and a camera serial in its EXIF (built by
  // tests/e2e/test_media.py's make_jpeg); app1 is its EXIF segment
  const made = spawnSync('python3', ['-c',
    'import sys, json; sys.path.insert(0, sys.argv[1]); from test_media import make_jpeg, make_pdf; ' +
    'j, a = make_jpeg(b"SN4471920", b"iccDeskBrowserTest"); ' +
    'p = make_pdf(2, catalog_extra=b"/OpenAction<</S/JavaScript/JS(app.alert(\'pdfjs\');console.log(\'pdfjs\'))>>' +
    '/AA<</WC<</S/Launch/F(/bin/sh)>>>>", info=b"/Author(<script>alert(1)</script>)"); ' +
    'print(json.dumps({"jpeg": j.hex(), "app1": a.hex(), "pdf": p.hex()}))', path.join(repo, 'tests', 'e2e')],
  { encoding: 'utf8' });
  check(made.status === 0, `cannot build the test photo: ${made.stderr}`);
  const photo = JSON.parse(made.stdout);
  const jpeg = Buffer.from(photo.jpeg, 'hex');
  const app1 = Buffer.from(photo.app1, 'hex');
  // and a hostile PDF: JavaScript on open, a /Launch action, markup as its author
  const hostilePdf = Buffer.from(photo.pdf, 'hex');
  const person = await personWrites(inst, message, [{ name: 'flat.jpg', mimeType: 'image/jpeg', buffer: jpeg },
    { name: 'letter.pdf', mimeType: 'application/pdf', buffer: hostilePdf }], true);

  const deskPort = await freePort();
  const desk = spawnLogged(['desk', '--no-open', '--port', String(deskPort), '--sync-every', '0'], inst.env, 'desk');
  const link = await waitFor(() => {
    if (desk.exited !== null) fail(`the desk exited:\n${fs.readFileSync(desk.outPath, 'utf8')}`);
    const m = fs.readFileSync(desk.outPath, 'utf8').match(/http:\/\/127\.0\.0\.1:\d+\/open\?t=[A-Za-z0-9_-]+/);
    return m && m[0];
  }, 'the desk prints its link');
  const origin = `http://127.0.0.1:${deskPort}`;

  const ctx = await newContext();
  const foreign = [];
  const consoleMsgs = [];
  ctx.on('request', (req) => { if (!req.url().startsWith(origin + '/')) foreign.push(req.url()); });
  const page = await ctx.newPage();
  page.on('console', (m) => { if (m.type() === 'error' || m.type() === 'warning') consoleMsgs.push(`${m.type()}: ${m.text()}`); });
  page.on('pageerror', (e) => consoleMsgs.push(`pageerror: ${e}`));

  await page.goto(link);
  check(!page.url().includes('t='), `the token stays in the address bar: ${page.url()}`);
  const cookies = await ctx.cookies();
  const c = cookies.find((k) => k.name === 'rf_desk');
  check(c && c.httpOnly && c.sameSite === 'Strict' && c.expires === -1 && c.domain === '127.0.0.1',
    `the session cookie: ${JSON.stringify(cookies)}`);

  await pressEnterOn(page, page.locator('form[action="/sync"] button'));
  const caseLink = page.locator('a.id');
  check(await caseLink.count() === 1, `the board lists one case:\n${(await page.locator('body').innerText()).slice(0, 1500)}`);
  const cid = (await caseLink.innerText()).trim();
  await assertDeskPage(page, 'board (en)');
  check(await page.locator('.badge.new').count() === 1, 'the case is marked new');
  await shot(page, 'desk-board-en.png');
  await page.goto(`${origin}/?lang=ru`);
  check((await page.locator('h1').innerText()).includes('Обращения'), 'the board in Russian');
  await assertDeskPage(page, 'board (ru)');
  await shot(page, 'desk-board-ru.png');
  await page.goto(`${origin}/?lang=uk`);
  check((await page.locator('h1').innerText()).includes('Звернення'), 'the board in Ukrainian');
  await assertDeskPage(page, 'board (uk)');
  await shot(page, 'desk-board-uk.png');

  await page.goto(`${origin}/?lang=en`);
  await pressEnterOn(page, page.locator('a.id'));
  check(new URL(page.url()).pathname === `/case/${cid}`, `Enter on the case link opened ${page.url()}`);
  check((await page.locator('main').innerText()).includes(message), 'the case page shows the message');
  await assertDeskPage(page, 'case (en)');

  // reply, keyboard only
  await page.locator('#text').focus();
  await page.keyboard.type('We read you. Someone will write back today.');
  await pressEnterOn(page, page.locator('form[action$="/reply"] button'));
  const body = await page.locator('main').innerText();
  check(body.includes('Reply sent') && body.includes('We read you.'), `the reply is sent and shown:\n${body.slice(0, 1500)}`);
  // stage, keyboard only
  await page.locator('#stage').focus();
  await page.locator('#stage').selectOption('verifying');
  await pressEnterOn(page, page.locator('form[action$="/stage"] button'));
  check((await page.locator('main').innerText()).includes('Stage changed'), 'the stage is changed');
  await assertDeskPage(page, 'case after reply and stage (en)');
  await shot(page, 'desk-case-en.png');
  await page.goto(`${origin}/case/${cid}?lang=ru`);
  await assertDeskPage(page, 'case (ru)');
  await shot(page, 'desk-case-ru.png');
  await page.goto(`${origin}/case/${cid}?lang=uk`);
  check((await page.locator('main').innerText()).includes(message), 'the case page in Ukrainian');
  await assertDeskPage(page, 'case (uk)');
  await shot(page, 'desk-case-uk.png');
  log('board and case in en, ru and uk; reply and stage with the keyboard');

  // the file page: warning, byte-exact download, stripped copy (keyboard only)
  await page.goto(`${origin}/case/${cid}?lang=en`);
  await pressEnterOn(page, page.locator(`a[href^="/case/${cid}/file/"]`).first());
  check(/\/case\/[a-z0-9]+\/file\/\d+$/.test(new URL(page.url()).pathname), `Enter on the file link opened ${page.url()}`);
  const fileText = await page.locator('main').innerText();
  check(fileText.includes('identifying information') && fileText.includes('location (GPS coordinates)'),
    `the file page warns of the GPS position:\n${fileText.slice(0, 1500)}`);
  check(await page.locator('.preview img').count() === 1, 'the photo is previewed');
  await assertDeskPage(page, 'file (en)');
  const fileUrl = page.url();
  const saved = async (locator, what) => {
    const [dl] = await Promise.all([page.waitForEvent('download'), (async () => { await locator.focus(); await page.keyboard.press('Enter'); })()]);
    const p = await dl.path();
    check(p, `${what}: the browser saved nothing`);
    const bytes = fs.readFileSync(p);
    return { bytes, name: dl.suggestedFilename() };
  };
  const orig = await saved(page.locator('a.button[href$="/download"]'), 'download');
  check(orig.bytes.equals(jpeg), `the download is byte-exact (${orig.bytes.length} vs ${jpeg.length} bytes)`);
  check(orig.name === 'flat.jpg', `the download is named ${orig.name}`);
  await page.goto(fileUrl);
  const clean = await saved(page.locator('form[action$="/strip"] button'), 'stripped copy');
  const want = Buffer.concat([jpeg.subarray(0, jpeg.indexOf(app1)), jpeg.subarray(jpeg.indexOf(app1) + app1.length)]);
  check(clean.bytes.equals(want) && !clean.bytes.includes(Buffer.from('SN4471920')),
    'the stripped copy is the original less its EXIF (no GPS, no serial), byte for byte');
  check(clean.name === 'flat-clean.jpg', `the stripped copy is named ${clean.name}`);
  await page.goto(fileUrl);
  await shot(page, 'desk-file-en.png');
  await page.goto(fileUrl.replace(/\?.*$/, '') + '?lang=ru');
  check((await page.locator('main').innerText()).includes('место (координаты GPS)'), 'the warning in Russian');
  await assertDeskPage(page, 'file (ru)');
  await shot(page, 'desk-file-ru.png');
  await page.goto(fileUrl.replace(/\?.*$/, '') + '?lang=uk');
  check((await page.locator('main').innerText()).includes('місце (координати GPS)'), 'the warning in Ukrainian');
  await assertDeskPage(page, 'file (uk)');
  await shot(page, 'desk-file-uk.png');
  log('file page in en, ru and uk: warning, byte-exact download, stripped copy');
  // the team page: invite from the desk, Carol enrolls with the token it
  // shows, then waits; the screenshots; approve by typing the fingerprint
  // Carol reads out (keyboard only)
  await page.goto(`${origin}/team?lang=en`);
  check((await page.locator('h1').innerText()).includes('Team'), 'the team page');
  await pressEnterOn(page, page.locator('form[action="/team/invite"] button'));
  const initLine = await page.locator('.invite .token code').last().innerText();
  const tm = initLine.match(/--token ([A-Za-z0-9_-]+)/);
  check(tm, `the invite shows the init line: ${initLine}`);
  await assertDeskPage(page, 'team after invite (en)');
  const carolEnv = { ...inst.env, REFUGE_HOME: path.join(tmp, 'carol') };
  refuge(['init', '--server', inst.url, '--token', tm[1], '--name', 'Carol'], carolEnv);
  const carolFp = refuge(['fingerprint'], carolEnv).match(/\d{5}(?: \d{5}){7}/)[0];
  const aliceFp = refuge(['fingerprint'], inst.env).match(/\d{5}(?: \d{5}){7}/)[0];
  await page.goto(`${origin}/team?lang=en`);
  const team = await page.locator('main').innerText();
  check(team.includes(aliceFp) && team.includes('Carol') && !team.includes(carolFp),
    `the team page: Alice's fingerprint, Carol waiting (her server-side fingerprint not shown):\n${team.slice(0, 1500)}`);
  check(team.includes('audit log is verified'), `the audit result:\n${team.slice(-1500)}`);
  await assertDeskPage(page, 'team (en)');
  await shot(page, 'desk-team-en.png');
  await page.goto(`${origin}/team?lang=ru`);
  check((await page.locator('h1').innerText()).includes('Команда'), 'the team page in Russian');
  await assertDeskPage(page, 'team (ru)');
  await shot(page, 'desk-team-ru.png');
  await page.goto(`${origin}/team?lang=uk`);
  check((await page.locator('h1').innerText()).includes('Команда'), 'the team page in Ukrainian');
  await assertDeskPage(page, 'team (uk)');
  await shot(page, 'desk-team-uk.png');
  await page.goto(`${origin}/team?lang=en`);
  await page.locator('form[action="/team/approve"] input[name="fingerprint"]').focus();
  await page.keyboard.type(carolFp);
  await pressEnterOn(page, page.locator('form[action="/team/approve"] button'));
  const approved = await page.locator('main').innerText();
  check(approved.includes('Approved') && approved.includes(carolFp), `Carol approved:\n${approved.slice(0, 1500)}`);
  log('team page in en, ru and uk; invite from the desk, approve by typing the fingerprint');
  // a tag and a note, then the second caseworker's desk and the person
  await page.goto(`${origin}/case/${cid}?lang=en`);
  const tag = 'interpreter';
  const note = 'Called the shelter; a bed is free from Friday.';
  await tagAndNote(page, tag, note);
  log('Alice tagged the case and added a note');
  await secondDeskSeesChanges(bob, cid, { stage: 'verifying', reply: 'We read you.', tag, note });
  await person.page.goto(`${inst.url}/inbox?lang=en`);
  const inbox = await person.page.locator('body').innerText();
  check(inbox.includes('We read you. Someone will write back today.'), `the person reads the reply:\n${inbox.slice(0, 1500)}`);
  check(!inbox.includes(note), "the person does not see the caseworkers' note");
  await person.ctx.close();
  log('the person reads the reply on their page (and not the note)');

  await page.goto(`${origin}/?lang=en`);
  await pressEnterOn(page, page.locator('form[action="/lock"] button'));
  check((await page.locator('h1').innerText()).toLowerCase().includes('locked'), 'Lock shows the locked page');
  await waitFor(() => desk.exited !== null, 'the desk exits after Lock', 30000);
  check(desk.exited === 0, `the desk exited with ${desk.exited}`);
  await ctx.close();

  await autoRefresh(inst, bob, cid);

  check(foreign.length === 0, `requests to other origins: ${foreign.join(', ')}`);
  const bad = consoleMsgs.filter((m) => !(m.includes('Failed to load resource') && m.includes('404')));
  check(bad.length === 0, `console errors or warnings (a CSP violation?):\n${bad.join('\n')}`);
  const out = fs.readFileSync(desk.outPath, 'utf8');
  const san = out.search(/ERROR: (Address|Leak)Sanitizer|runtime error:/);
  check(san < 0, `sanitizer report from refuge desk:\n${out.slice(Math.max(0, san - 200), san + 3000)}`);
}

let status = 0;
const t0 = Date.now();
try {
  await main();
  console.log(`PASS browser desk (${((Date.now() - t0) / 1000).toFixed(1)}s)`);
} catch (e) {
  console.log(`FAIL browser desk: ${e.message}`);
  status = 1;
} finally {
  if (browser) await browser.close().catch(() => {});
  for (const p of procs) if (p.exited === null) p.kill('SIGTERM');
  await sleep(500);
  if (process.env.REFUGE_TEST_KEEP !== '1') fs.rmSync(tmp, { recursive: true, force: true });
  else console.log(`kept ${tmp}`);
}
process.exit(status);
