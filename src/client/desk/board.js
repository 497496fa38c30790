/*
 * board.js - the desk board's automatic refresh (docs/desk.md, "Automatic
 * refresh"). Served by the desk itself as /board.js, the only script the
 * desk has; the board's CSP allows exactly this file (script-src with its
 * path) and fetches of /board/changes and the board itself (connect-src).
 *
 * Progressive: every action works without it (links and form buttons). It
 * asks /board/changes every few seconds for the local database's change
 * mark; when it differs from the mark the page was rendered with (after a
 * background sync brought something), it fetches the same board URL (the
 * same filters and page) and swaps in the new counts and list. It never
 * reloads while someone is typing in the filter form. Both requests carry
 * X-Refuge-Refresh, so they do not keep the desk from locking when idle.
 * Nothing from the server is evaluated: the new page is parsed with
 * DOMParser (which runs no script) and its escaped elements moved over.
 */
(function () {
  'use strict';
  var EVERY = 3000;     /* ms between two questions */
  var QUIET = 4000;     /* ms after the last key in the filter form */
  var live = document.getElementById('board-live');
  if (!live || !window.fetch || !window.DOMParser) return;
  var mark = live.getAttribute('data-mark');
  var form = document.querySelector('form.filters');
  var lastKey = 0;
  var opts = { credentials: 'same-origin', cache: 'no-store',
               headers: { 'X-Refuge-Refresh': '1' } };

  if (form) {
    form.addEventListener('input', function () { lastKey = Date.now(); });
    form.addEventListener('keydown', function () { lastKey = Date.now(); });
  }

  function typing() {
    var a = document.activeElement;
    if (form && a && form.contains(a) && (a.tagName === 'INPUT' || a.tagName === 'SELECT'))
      return true;
    return Date.now() - lastKey < QUIET;
  }

  function swap(doc) {
    ['board-counts', 'board-live'].forEach(function (id) {
      var now = document.getElementById(id);
      var next = doc.getElementById(id);
      if (now && next) now.replaceWith(document.importNode(next, true));
    });
    live = document.getElementById('board-live');
    if (live) live.setAttribute('data-refreshed', String(Date.now()));
  }

  function reload(next) {
    return fetch(location.pathname + location.search, opts)
      .then(function (r) {
        if (!r.ok) throw new Error('board ' + r.status);
        return r.text();
      })
      .then(function (text) {
        if (typing()) return; /* typed while it loaded: next time */
        swap(new DOMParser().parseFromString(text, 'text/html'));
        mark = next;
      });
  }

  function poll() {
    if (document.hidden) { later(); return; }
    fetch('/board/changes', opts)
      .then(function (r) {
        if (!r.ok) throw new Error('changes ' + r.status);
        return r.json();
      })
      .then(function (j) {
        if (!j || typeof j.mark !== 'string' || j.mark === mark || typing()) return null;
        return reload(j.mark);
      })
      .catch(function () { /* locked or stopped: the page stays as it is */ })
      .then(later);
  }

  function later() { setTimeout(poll, EVERY); }
  later();
})();
