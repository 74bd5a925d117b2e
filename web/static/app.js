// statelab dashboard: polls the runner's feed once a second and draws its
// two sides (two strategies of keeping a sign-in) next to each other on the
// same scales. Which sides they are comes from the feed: the page keys every
// number by the side's name and words every event from the side's
// properties (where its sessions live), never from the name.
// Plain JavaScript and hand-written SVG: no libraries, nothing from the
// internet, so it works in a classroom with no network.
//
// Honesty rules: every number drawn is one the runner counted. Rates are
// differences of two counted totals divided by the time between the two
// samples; nothing is interpolated or smoothed. A missing value (a replica
// that did not answer its count) is drawn as a gap, not as zero.
'use strict';

(() => {
  // The browser keeps the last HISTORY_S seconds of samples (the runner
  // keeps 900, one a second). Bounded so a 10-minute run with 8 replicas a
  // side redraws in a few milliseconds.
  const HISTORY_S = 300;
  const POLL_MS = 1000;
  const FEED_TIMEOUT_MS = 4000;
  // A feed from before strategies has no `sides`: it always ran these two.
  const LEGACY_SIDES = [
    { name: 'stateful', strategy: 'stateful', server: 'stateful', sessions: 'memory', store: { name: 'memory', services: [], shared: false, revocable: true }, affinity: 'none', credential: 'cookie', own_secrets: false, where: 'sessions live in each replica’s memory' },
    { name: 'stateless', strategy: 'stateless', server: 'stateless', sessions: '', affinity: 'none', credential: '', own_secrets: false, where: 'the token carries the user; replicas keep nothing' },
  ];

  // Okabe-Ito.
  const C = {
    blue: '#0072B2', vermillion: '#D55E00', orange: '#E69F00', green: '#009E73',
    sky: '#56B4E9', purple: '#CC79A7', yellow: '#F0E442', black: '#000000', grey: '#6b6b6b',
  };
  // Errors by kind: a colour AND a fill pattern each, so they differ in grey too.
  const ERR_KINDS = [
    { k: 'session_lost', label: '401 session lost', color: C.vermillion, pat: 'solid' },
    { k: 'login_required', label: '401 login required', color: C.orange, pat: 'hatch' },
    { k: 'errors_4xx', label: 'other 4xx', color: C.purple, pat: 'dots' },
    { k: 'errors_5xx', label: '5xx', color: C.black, pat: 'cross' },
    { k: 'conn_errors', label: 'no answer', color: C.sky, pat: 'hlines' },
    { k: 'timeouts', label: 'timeout (no answer by the deadline)', color: C.grey, pat: 'vlines' },
  ];
  // Event markers: a symbol and a word each, not only a colour. The words,
  // symbols and palette names come with the feed (kinds): the same table
  // the runner validates scenarios and the report words its charts from.
  let EVENT_STYLE = {};
  const learnKinds = (kinds) => {
    if (!kinds) return;
    EVENT_STYLE = {};
    for (const k of kinds) EVENT_STYLE[k.action] = { sym: k.symbol, word: k.word, color: C[k.color] || C.grey, busy: k.busy };
  };
  const eventStyle = (kind) => EVENT_STYLE[kind] || { sym: '•', word: kind, color: C.grey };

  // The chart rows, top to bottom; each is drawn once per side, with one
  // caption under the pair. The sessions strips come right after the
  // losses, where a restart's loss is plain to see without scrolling;
  // caption under the pair: what the chart shows and why it moves.
  // Heights share out the screen's height by weight, between min and max,
  // so the page fills a projector and still fits a laptop. The projector
  // view (?view=projector) keeps only the rows marked proj, larger, under a
  // shorter title (ptitle) where the full one would crowd out the legend,
  // and without the sentences: the teacher says them.
  const ROWS = [
    { id: 'events', proj: true },
    { id: 'ok', title: 'Successful requests / s', ptitle: 'Successful requests / s (secondary)', w: 1.25, min: 70, max: 190, proj: true,
      cap: 'Requests answered 2xx each second; it dips when users must sign in again or their requests fail.' },
    { id: 'loss', title: 'Sessions lost / s', w: 1, min: 56, max: 160, proj: true,
      cap: '401s to users who believed they were signed in; each spike is a replica’s memory going away.' },
    { id: 'sessions', title: 'Per replica: sessions held in memory, and CPU', ptitle: 'Sessions per replica', proj: true,
      cap: 'Each replica’s own count: in use (dark, used in the last 10 s) and held (light); it drops to zero when the replica goes. Purple: its CPU.' },
    { id: 'errors', title: 'Errors by kind / s', w: 0.9, min: 56, max: 150,
      cap: 'Requests that failed each second, by kind; 5xx and “no answer” come from killed or missing replicas.' },
    { id: 'latency', title: 'Latency, each second', w: 1.05, min: 70, max: 170,
      cap: 'How long users waited each second (p50, p99); sign-in storms and restarts show as bumps.' },
    { id: 'up', title: 'Replicas up', w: 0.5, min: 40, max: 80,
      cap: 'Replica processes running and ready; it steps at a scale event and dips while one is replaced.' },
  ];
  const projector = new URLSearchParams(location.search).get('view') === 'projector';

  // TOTALS are the columns of the totals, outcomes first: what the users
  // got done, and who had to sign in again; then, secondary and labelled
  // so, the traffic it took (a chattier journey makes more requests, not
  // more work done). Every value is one the runner counted; a rate is the
  // difference of two counted totals over the last RATE_S seconds. proj:
  // kept in the projector view, whose first chart, successful requests a
  // second, says it is secondary instead (the header beside the totals
  // needs the room); bad: marked when above zero.
  const RATE_S = 10;
  const TOTALS = [
    { k: 'journeys_completed', label: 'journeys done', proj: true,
      title: 'journeys a user finished, from its first step to its last: what the users got done' },
    { k: 'borrows_per_s', label: 'borrows / s', rate: 'borrows', proj: true,
      title: `books borrowed each second, over the last ${RATE_S} s` },
    { k: 'relogins', label: 'signed in again', bad: true, proj: true,
      title: 'times a user who believed they were signed in had to sign in again' },
    { k: 'sessions_lost', label: 'sessions lost', bad: true, proj: true,
      title: 'sessions the users were still using that the server no longer had' },
    { k: 'cart_items_lost', label: 'cart items lost', bad: true, title: 'books put in a cart that were gone at checkout' },
    { k: 'requests_per_s', label: 'requests / s', rate: 'requests', secondary: true,
      title: `requests sent each second, over the last ${RATE_S} s: traffic, not work done` },
    { k: 'requests', label: 'requests', secondary: true },
    { k: 'availability', label: 'availability', secondary: true, title: 'requests answered 2xx, of all but the 409s' },
    { k: 'timeouts', label: 'timeouts', bad: true, secondary: true },
    { k: 'retries_saved', label: 'saved by a retry', secondary: true,
      title: 'requests a replica died with, or could not take, that the balancer (or the user, with the same Idempotency-Key) sent again and another replica answered' },
  ];
  const totalsShown = () => TOTALS.filter((c) => !projector || c.proj);
  const shownRows = () => ROWS.filter((r) => !projector || r.proj);
  // The plots' text follows the page's type size (style.css sizes it by
  // the screen's width), so a projector gets larger labels; k scales the
  // room they need. Set by scaleToType().
  let k = 1;
  let LANE_H = 56;
  const M = { l: 58, r: 54, t: 6, b: 6 }; // same margins everywhere: the x axes line up
  // PROJ_FLOOR_H is the least height, in CSS pixels, a chart of the
  // projector view gives up to a long "what just happened"; at 1280×720
  // it has 120 px or more otherwise (TestProjectorView measures it).
  const PROJ_FLOOR_H = 90;
  // With a class (--class), the class panel takes a band of the screen
  // too: the charts give up to PROJ_CLASS_FLOOR_H rather than scroll.
  const PROJ_CLASS_FLOOR_H = 56;
  function scaleToType() {
    k = parseFloat(getComputedStyle(document.documentElement).fontSize) / 16.3 || 1;
    M.l = Math.round(58 * k);
    M.r = Math.round(54 * k);
    // Two rows of pills over the time axis' labels.
    LANE_H = Math.round(2 * (Math.round(17 * k) + 2) + 20 * k);
  }

  const $ = (sel, root = document) => root.querySelector(sel);
  const esc = (s) => String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]));
  const fmtInt = (v) => Math.round(v).toLocaleString('en-US');
  const fmtRate = (v) => (v == null ? '–' : v >= 100 ? fmtInt(v) : v >= 10 ? v.toFixed(0) : v.toFixed(1).replace(/\.0$/, ''));
  const fmtMS = (v) => (v == null ? '–' : v >= 1000 ? (v / 1000).toFixed(v >= 10000 ? 0 : 1) + ' s' : v >= 10 ? v.toFixed(0) + ' ms' : v.toFixed(1) + ' ms');
  const fmtTick = (v) => (Number.isInteger(v) ? fmtInt(v) : v.toFixed(1));
  const fmtClock = (d) => d.toTimeString().slice(0, 8);
  const replicaNo = (id) => (String(id).match(/(\d+)$/) || [, id])[1];

  const st = {
    meta: null, // scenario, duration, users
    now: null, // the newest sample
    samples: [], // raw samples of the last HISTORY_S seconds
    sides: [], // the feed's sides in column order, each with its column index i
    sidesKey: '', // their names, to notice a runner started with other sides
    points: [], // per column: per-second values derived from consecutive samples
    events: [], // every event record the runner returned
    answeredAt: null,
    failingSince: null, // the first failed poll of the current run of failures
    busy: null, // the control in flight
    override: null, // a control's failure, shown until the next event
    runnerMsg: '',
    timer: 0,
    inFlight: false,
    h: { ok: 100, loss: 80, errors: 80, latency: 90, up: 48 }, // plot heights, from layout()
    cpuMax: 0.1, // cores at the top of a CPU strip without an enforced limit
    stripH: 26,
    whatTight: false, // the projector's what-just-happened line needs the smaller type
  };

  // ---- layout --------------------------------------------------------------

  const grid = $('#grid');
  let cells = []; // per column: the chart cells by row id

  // sidesOf returns the feed's sides in column order, each with its index.
  function sidesOf(body) {
    const given = Array.isArray(body.sides) && body.sides.length ? body.sides : LEGACY_SIDES;
    return given.map((d, i) => ({
      name: String(d.name), strategy: d.strategy || d.name, server: d.server || '', sessions: d.sessions || '', store: d.store || null,
      affinity: d.affinity || '', credential: d.credential || '', own_secrets: !!d.own_secrets, where: d.where || '', i,
    }));
  }

  // properties says a side's strategy in one line, for the heading's tooltip.
  function properties(sd) {
    const p = [sd.server || 'unknown server'];
    if (sd.sessions) p.push('sessions: ' + sd.sessions);
    if (sd.credential) p.push('credential: ' + sd.credential);
    if (sd.affinity) p.push('balancer affinity: ' + sd.affinity);
    if (sd.own_secrets) p.push('each replica has its own secret');
    return (sd.strategy !== sd.name ? sd.strategy + ' — ' : '') + p.join(' · ');
  }

  // buildGrid lays out one column per side, and the totals' rows, from the
  // feed's sides. Each side's colour and shape follow its column, not its
  // name, so any pair reads the same way.
  function buildGrid() {
    grid.replaceChildren();
    cells = st.sides.map(() => ({}));
    for (const sd of st.sides) {
      const head = document.createElement('div');
      head.className = `col-head col-${sd.i}`;
      head.dataset.side = sd.name;
      head.dataset.col = String(sd.i);
      head.title = properties(sd);
      head.innerHTML = `<h2>${esc(sd.name)}</h2>` +
        (sd.own_secrets ? '<b class="own-secrets" title="a deliberate misconfiguration">own secrets</b>' : '') +
        `<span>${esc(sd.where)}</span>`;
      grid.append(head);
    }
    for (const row of ROWS) {
      for (const sd of st.sides) {
        const cell = document.createElement('div');
        cell.className = 'cell';
        cell.dataset.side = sd.name;
        cell.dataset.col = String(sd.i);
        cell.dataset.chart = row.id;
        cell.hidden = projector && !row.proj;
        const title = projector && row.ptitle ? row.ptitle : row.title;
        cell.innerHTML = (title ? `<div class="cap"><span class="t" title="${esc(row.cap || '')}">${esc(title)}</span><span class="v"></span></div>` : '') + '<div class="plot"></div>' +
          (row.id === 'up' ? '<p class="addrs"></p>' : '');
        grid.append(cell);
        cells[sd.i][row.id] = cell;
      }
      if (row.cap) {
        const cap = document.createElement('p');
        cap.className = 'chart-caption';
        cap.dataset.chart = row.id;
        cap.hidden = projector;
        cap.textContent = row.cap;
        grid.append(cap);
      }
    }
    const cols = totalsShown();
    const first = cols.findIndex((c) => c.secondary);
    const cls = (c) => (c.secondary ? ` class="secondary${c === cols[first] ? ' sec-start' : ''}"` : '');
    // The full view groups the columns under what they are; the projector
    // has one secondary column, which says so itself.
    const groups = projector || first < 0 ? '' : `<tr class="groups"><th></th><th scope="colgroup" colspan="${first}">what the users got done, and what they lost</th>` +
      `<th scope="colgroup" colspan="${cols.length - first}" class="secondary">traffic (secondary)</th></tr>`;
    $('#totals thead').innerHTML = groups + '<tr><th scope="col"></th>' +
      cols.map((c) => `<th scope="col" data-k="${c.k}"${cls(c)}${c.title ? ` title="${esc(c.title)}"` : ''}>${esc(projector && c.plabel ? c.plabel : c.label)}</th>`).join('') + '</tr>';
    $('#totals tbody').innerHTML = st.sides.map((sd) =>
      `<tr data-side="${esc(sd.name)}" data-col="${sd.i}"><th scope="row"><span class="side-tag col-${sd.i}" title="${esc(properties(sd))}">${esc(sd.name)}</span></th>` +
      cols.map((c) => `<td data-k="${c.k}"${cls(c)}>–</td>`).join('') + '</tr>').join('');
    $('#cost-strip').innerHTML = '<table><tbody>' + st.sides.map((sd) =>
      `<tr data-side="${esc(sd.name)}" data-col="${sd.i}"><th scope="row"><span class="side-tag col-${sd.i}">${esc(sd.name)}</span></th>` +
      COST_STRIP.map((c) => `<td data-cost="${c.k}" title="${esc(c.title)}"></td>`).join('') + '</tr>').join('') + '</tbody></table>';
    const pair = st.sides.map((sd) => sd.name).join(' vs ');
    $('#subtitle').textContent = pair + ', live';
    document.title = 'statelab — ' + pair + ', live';
  }

  // ---- the feed ------------------------------------------------------------

  function reset() {
    st.samples = [];
    st.points = st.sides.map(() => []);
    st.events = [];
    st.override = null;
    st.runnerMsg = '';
  }

  function derive(a, b, name) {
    const A = a.sides && a.sides[name];
    const B = b.sides && b.sides[name];
    const dt = b.elapsed_s - a.elapsed_s;
    if (!A || !B || !(dt > 0)) return null;
    const rate = (k) => Math.max(0, ((B[k] || 0) - (A[k] || 0)) / dt);
    const err = {};
    for (const e of ERR_KINDS) err[e.k] = rate(e.k);
    const win = B.latency_window_ms;
    return {
      t: b.elapsed_s,
      dt,
      ok: rate('ok'),
      offered: rate('offered'),
      sessions: rate('sessions_lost'),
      cart: rate('cart_items_lost'),
      err,
      p50: win ? win.p50 : null,
      p99: win ? win.p99 : null,
      up: (B.replicas || []).length,
      reps: (B.replicas || []).map((r) => ({
        id: r.id, s: r.sessions == null ? null : r.sessions, u: r.sessions_in_use == null ? null : r.sessions_in_use,
        // CPU since the previous sample: a share of the replica's limit
        // when the kernel enforces one, else cores.
        cpu: r.cpu_share != null ? r.cpu_share : null, cores: r.cpu_cores != null ? r.cpu_cores : null,
      })),
      paused: !!b.paused,
    };
  }

  function ingest(body) {
    const last = st.samples[st.samples.length - 1];
    // A runner that started again begins at 0 s: forget the old run.
    if (last && body.now && body.now.elapsed_s + 0.5 < last.elapsed_s) {
      reset();
      return false;
    }
    const sides = sidesOf(body);
    const key = JSON.stringify(sides);
    if (key !== st.sidesKey) {
      const had = st.sidesKey !== '';
      st.sides = sides;
      st.sidesKey = key;
      reset();
      buildGrid();
      // Other sides mid-run: a new runner; fetch its history from the start.
      if (had && last) return false;
    }
    learnKinds(body.kinds);
    st.meta = { scenario: body.scenario, duration: body.duration_s || 0, users: body.users, manual: !!body.manual, next: body.next || null, openLoop: body.open_loop || null, cpuLimit: body.replica_cpu || null, network: body.network || null };
    for (const s of body.history || []) {
      const prev = st.samples[st.samples.length - 1];
      if (prev && s.elapsed_s <= prev.elapsed_s) continue;
      st.samples.push(s);
      if (prev) {
        for (const sd of st.sides) {
          const p = derive(prev, s, sd.name);
          if (p) st.points[sd.i].push(p);
        }
      }
    }
    st.now = body.now || st.now;
    st.events = body.events || [];
    const newest = st.samples.length ? st.samples[st.samples.length - 1].elapsed_s : 0;
    const cutoff = newest - HISTORY_S;
    while (st.samples.length > 1 && st.samples[0].elapsed_s < cutoff) st.samples.shift();
    for (const pts of st.points) {
      while (pts.length && pts[0].t - pts[0].dt < cutoff) pts.shift();
    }
    return true;
  }

  async function poll() {
    if (st.inFlight) return;
    st.inFlight = true;
    clearTimeout(st.timer);
    const last = st.samples[st.samples.length - 1];
    const url = '/api/feed?history=' + (last ? last.elapsed_s : 0);
    let again = false;
    try {
      const res = await fetch(url, { cache: 'no-store', signal: AbortSignal.timeout(FEED_TIMEOUT_MS) });
      if (!res.ok) throw new Error('HTTP ' + res.status);
      const body = await res.json();
      document.dispatchEvent(new CustomEvent('statelab:feed', { detail: body })); // class.js's panel
      again = !ingest(body);
      st.answeredAt = new Date();
      st.failingSince = null;
    } catch (err) {
      if (!st.failingSince) st.failingSince = new Date();
    }
    st.inFlight = false;
    render();
    st.timer = setTimeout(poll, again ? 0 : POLL_MS);
  }

  // ---- controls ------------------------------------------------------------

  // What the page says while a control runs: the kinds' own words, and
  // those of the controls that are not kinds of event.
  const CONTROL_WORDS = {
    'scale-up': 'adding a replica on both sides…',
    'scale-down': 'removing a replica on both sides…',
    next: 'firing the next event of the scenario…',
  };
  const controlWord = (action) => CONTROL_WORDS[action] || eventStyle(action).busy || action + '…';

  // pendingWord names the event a manual run waits on.
  const pendingWord = (e) => (e.action === 'scale' ? 'scale to ' + e.replicas : eventStyle(e.action).word);

  async function control(action) {
    if (st.busy) return;
    const n = $('#replica-pick').value || '1';
    st.busy = controlWord(action).replace('%n', n);
    st.override = null;
    render();
    if (action === 'next' && st.meta && st.meta.next) st.busy = `firing the next event: ${pendingWord(st.meta.next)}…`;
    const q = action === 'restart' || action === 'crash' ? '?replica=' + encodeURIComponent(n) : '';
    try {
      const res = await fetch('/api/control/' + action + q, { method: 'POST', signal: AbortSignal.timeout(75000) });
      let body = {};
      try { body = await res.json(); } catch (_) { /* not JSON: say the status */ }
      if (res.ok && body.success) {
        st.runnerMsg = body.message || '';
      } else {
        st.override = { text: body.message || 'the runner answered ' + res.status, events: st.events.length };
        st.runnerMsg = '';
      }
    } catch (err) {
      st.override = { text: 'the runner did not answer the control (' + err.message + ')', events: st.events.length };
    }
    st.busy = null;
    render();
    poll();
  }

  // ---- events in words -----------------------------------------------------

  // groupEvents merges the records of one event (one per side and replica)
  // into one marker: same kind, same source, started within two seconds.
  function groupEvents(events) {
    const groups = [];
    for (const e of events) {
      let g = groups.find((g) => g.kind === e.kind && g.source === e.source && Math.abs(g.at - e.at_s) < 2);
      if (!g) {
        g = { kind: e.kind, source: e.source, at: e.at_s, recs: [] };
        groups.push(g);
      }
      g.recs.push(e);
      g.at = Math.min(g.at, e.at_s);
    }
    for (const g of groups) g.note = commonNote(g.recs);
    groups.sort((a, b) => a.at - b.at);
    return groups;
  }

  // commonNote is the scenario's note for an event: the note every record
  // carries, or, where a side put its own words first ("no session store to
  // restart: …; the scenario's note"), the last part they all share.
  function commonNote(recs) {
    const notes = recs.map((r) => r.note || '');
    if (notes.every((n) => n === notes[0])) return notes[0];
    const tails = notes.map((n) => (n.includes('; ') ? n.slice(n.lastIndexOf('; ') + 2) : null));
    return tails.every((t) => t != null && t === tails[0]) ? tails[0] : '';
  }

  // lastSessions is the newest count a replica of the named side reported before t.
  function lastSessions(name, id, t) {
    for (let i = st.samples.length - 1; i >= 0; i--) {
      const s = st.samples[i];
      if (s.elapsed_s > t) continue;
      for (const r of ((s.sides || {})[name] || {}).replicas || []) {
        if (r.id === id && r.sessions != null) return r.sessions;
      }
    }
    return null;
  }

  const plural = (n, one, many) => (n === 1 ? one : many);

  // inProcess: the side keeps its sessions in its replicas' memory, so a
  // replica that goes takes them along. Decided by the side's properties,
  // never by its name.
  const inProcess = (sd) => sd.server === 'stateful' && !(sd.store && sd.store.shared);

  // carried says what each request brings instead of a server-side session.
  function carried(sd) {
    switch (sd.credential) {
      case 'apikey': return 'each request carries its API key';
      case 'jwt': return 'each request carries its signed JWT';
      case 'cookie': return 'each request carries its cookie';
      default: return 'each request carries its signed token';
    }
  }

  // storeService is the program a side's session store needs beside its
  // replicas (redis-server), '' for one that needs none; inCookie says
  // whether its store keeps each session in the client's cookie (shared by
  // every replica, with nothing running beside them). Both come from what
  // the store says of itself (strategy.Store), not from its name.
  const storeService = (sd) => (sd.store && sd.store.services.length ? sd.store.services[0] : '');
  const inCookie = (sd) => !!(sd.store && sd.store.shared && !sd.store.services.length);

  // nothingWent says why a replica's going cost no session on this side,
  // or returns '' when it held them (sessions in process memory).
  function nothingWent(sd, many) {
    const it = many ? 'them' : 'it';
    if (sd.server === 'stateless') return `<b class="kept">${many ? 'they hold' : 'it holds'} no sessions, so nothing was lost</b>`;
    if (storeService(sd)) return `<b class="kept">sessions live outside the process, in the shared ${esc(storeService(sd))}, so nothing went with ${it}</b>`;
    if (inCookie(sd)) return `<b class="kept">sessions live outside the process, sealed in each client’s cookie, so nothing went with ${it}</b>`;
    return '';
  }

  // storeless says where a side without a shared session store keeps them.
  function storeless(sd) {
    if (sd.server === 'stateless') return 'its replicas hold no sessions; ' + carried(sd);
    if (inCookie(sd)) return 'each session is sealed in its client’s cookie';
    return 'each replica holds its sessions in its own memory';
  }

  // heldClause says what went with one replica that kept sessions in
  // memory: n held, u of them in use (null where the replica did not say).
  // The idle rest were left behind by users who had signed in again; they
  // went too, but nobody missed them.
  function heldClause(n, u) {
    if (n == null) return '<b class="loss">the sessions it held went with it</b> (how many was not counted: it missed its last count)';
    if (n === 0) return 'it held no sessions, so none were lost';
    if (u == null) return `<b class="loss">${fmtInt(n)} ${plural(n, 'session was', 'sessions were')} lost with it</b>`;
    u = Math.min(u, n);
    const idle = n - u;
    return `<b class="loss">${fmtInt(u)} ${plural(u, 'session', 'sessions')} in use ${plural(u, 'was', 'were')} lost with it</b>` +
      (idle > 0 ? ` (and ${fmtInt(idle)} idle, left behind by earlier sign-ins)` : '');
  }
  const num = (v) => (v == null ? null : v);

  const OWN_SECRETS = ' (and each replica signs with its own secret, so what one replica signed the others reject)';

  // describeSide says what one event did to one side, from that side's
  // records and properties; '' when there is nothing to say.
  function describeSide(g, sd, all) {
    const name = esc(sd.name);
    const failed = all.filter((r) => r.error).map((r) => ' (failed: ' + esc(r.error) + ')').join('');
    if (g.kind === 'restart-store') {
      if (!storeService(sd)) return `${name}: no session store to restart: ${storeless(sd)}${failed}`;
      const n = all.map((r) => r.sessions_held).find((v) => v != null);
      return `${name}: the shared ${esc(storeService(sd))} restarted: <b class="loss">every session in ${esc(sd.store.name)}${n != null ? ' (' + fmtInt(n) + ')' : ''} was lost</b>${failed}`;
    }
    const recs = all.filter((r) => r.replica);
    if (!recs.length) return failed ? `${name}: nothing done${failed}` : '';
    const ids = recs.length > 2
      ? name + '-' + recs.map((r) => esc(replicaNo(r.replica))).join(', ')
      : recs.map((r) => esc(r.replica)).join(', ');
    const many = recs.length > 1;
    const kept = nothingWent(sd, many);
    let out;
    if (g.kind === 'restart' || g.kind === 'crash') {
      const verb = g.kind === 'restart' ? 'restarted' : 'was killed (SIGKILL) and started again';
      if (many) {
        let went = '<b class="loss">the sessions each held went with it</b>';
        if (recs.every((r) => r.sessions_held != null)) {
          const held = recs.reduce((a, r) => a + r.sessions_held, 0);
          const inUse = recs.every((r) => r.sessions_in_use != null) ? recs.reduce((a, r) => a + Math.min(r.sessions_in_use, r.sessions_held), 0) : null;
          went = inUse == null
            ? `<b class="loss">${fmtInt(held)} ${plural(held, 'session', 'sessions')} went with them</b>`
            : `<b class="loss">${fmtInt(inUse)} ${plural(inUse, 'session', 'sessions')} in use went with them</b>` + (held > inUse ? ` (and ${fmtInt(held - inUse)} idle)` : '');
        }
        // The projector leaves out which replicas, as it does the
        // scenario's note: its line must fit in two lines.
        out = `every ${name} replica restarted in turn${projector ? '' : ` (${ids})`}: ` + (kept || went);
      } else {
        const r = recs[0];
        out = `replica ${ids} ${verb}: ` + (kept || heldClause(num(r.sessions_held), num(r.sessions_in_use)));
      }
    } else if (g.kind === 'scale-out') {
      out = `${ids} ${plural(recs.length, 'was', 'were')} added`;
    } else if (g.kind === 'scale-in') {
      out = `${ids} ${plural(recs.length, 'was', 'were')} removed: `;
      if (kept) {
        out += kept;
      } else if (recs.every((r) => r.sessions_held != null)) {
        // Each replica's own last word, counted after it was drained.
        const held = recs.reduce((a, r) => a + r.sessions_held, 0);
        const inUse = recs.every((r) => r.sessions_in_use != null) ? recs.reduce((a, r) => a + Math.min(r.sessions_in_use, r.sessions_held), 0) : null;
        out += inUse == null
          ? `<b class="loss">${fmtInt(held)} ${plural(held, 'session', 'sessions')} held there went with ${plural(recs.length, 'it', 'them')}</b>`
          : `<b class="loss">${fmtInt(inUse)} ${plural(inUse, 'session', 'sessions')} in use went with ${plural(recs.length, 'it', 'them')}</b>` +
            (held > inUse ? ` (and ${fmtInt(held - inUse)} idle, left behind by earlier sign-ins)` : '');
      } else {
        const known = recs.map((r) => lastSessions(sd.name, r.replica, g.at)).filter((v) => v != null);
        const sum = known.reduce((a, b) => a + b, 0);
        out += known.length
          ? `<b class="loss">${fmtInt(sum)} ${plural(sum, 'session', 'sessions')} held there went with ${plural(recs.length, 'it', 'them')}</b> (its last count)`
          : `<b class="loss">the sessions held there went with ${plural(recs.length, 'it', 'them')}</b> (how many was not counted)`;
      }
    } else {
      out = `${name}: ${esc(g.kind)} ${ids}`;
    }
    if (sd.own_secrets && g.kind !== 'scale-out') out += OWN_SECRETS;
    return out + failed;
  }

  function describeGroup(g) {
    const when = `at ${g.at.toFixed(0)} s`;
    const who = g.source === 'control' ? 'your button' : 'the scenario';
    const head = `${when} (${who}${g.note && g.source !== 'control' && !projector ? ': ' + esc(g.note) : ''}) — `;
    if (g.kind === 'pause') return head + 'the simulated users are paused on both sides.';
    if (g.kind === 'client-restart') {
      const r = g.recs[0];
      const n = r && r.users ? `${fmtInt(r.users)} of ${fmtInt((st.meta && st.meta.users) || 0)} users on each side` : 'some users on each side';
      return head + `${n} lost everything their browser kept: <b class="loss">the cookie or token, and the cart</b>, whichever side kept it. ` +
        'The server-side sessions stay behind, idle: nobody will come back for them.';
    }
    if (g.kind === 'resume') return head + 'the simulated users carry on.';
    const parts = [];
    for (const sd of st.sides) {
      const mine = g.recs.filter((r) => r.side === sd.name);
      if (!mine.length) {
        // The runner records a side when it is done with it; a rolling
        // restart of a side that drains its sessions takes longer.
        parts.push(`<span class="pending">${esc(sd.name)}: still at it…</span>`);
        continue;
      }
      const part = describeSide(g, sd, mine);
      if (part) parts.push(part);
    }
    return head + (parts.length ? parts.join('; ') + '.' : esc(g.kind) + '.');
  }

  // ---- drawing helpers -----------------------------------------------------

  function niceMax(v, floor) {
    v = Math.max(v || 0, floor || 0);
    if (v <= 0) return 1;
    const e = Math.pow(10, Math.floor(Math.log10(v)));
    const f = v / e;
    return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 2.5 ? 2.5 : f <= 5 ? 5 : 10) * e;
  }

  function xDomain() {
    const t = st.samples.length ? st.samples[st.samples.length - 1].elapsed_s : 0;
    // A manual run has no schedule: the axis grows with the run.
    const dur = st.meta ? (st.meta.manual ? Math.ceil((t + 5) / 30) * 30 : st.meta.duration) : 0;
    const x1 = Math.max(Math.min(dur, HISTORY_S), t, 10);
    return [Math.max(0, x1 - HISTORY_S), x1];
  }

  function xTicks(x0, x1) {
    const span = x1 - x0;
    const step = [5, 10, 15, 30, 60, 120].find((s) => span / s <= 9) || 300;
    const out = [];
    for (let v = Math.ceil(x0 / step) * step; v <= x1 + 1e-9; v += step) out.push(v);
    return out;
  }

  const fmtT = (v) => (v >= 120 && v % 60 === 0 ? v / 60 + ' min' : v + ' s');

  // frame returns the scales of one plot of width w and height h.
  function frame(w, h, yMax, opts = {}) {
    const [x0, x1] = xDomain();
    const pw = w - M.l - M.r;
    const ph = h - M.t - M.b;
    const sx = (t) => M.l + ((t - x0) / (x1 - x0)) * pw;
    let sy;
    if (opts.log) {
      const l0 = Math.log10(opts.yMin), l1 = Math.log10(yMax);
      sy = (v) => M.t + (1 - (Math.log10(Math.min(Math.max(v, opts.yMin), yMax)) - l0) / (l1 - l0)) * ph;
    } else {
      sy = (v) => M.t + (1 - Math.min(v, yMax) / yMax) * ph;
    }
    return { w, h, x0, x1, pw, ph, sx, sy, yMax, top: M.t, bottom: M.t + ph };
  }

  function axes(f, yTicks, yFmt) {
    let s = '<g class="axis">';
    for (const v of xTicks(f.x0, f.x1)) {
      const x = f.sx(v).toFixed(1);
      s += `<line class="grid-line" x1="${x}" x2="${x}" y1="${f.top}" y2="${f.bottom}"/>`;
    }
    for (const [i, v] of yTicks.entries()) {
      const y = f.sy(v).toFixed(1);
      s += `<line class="${v === 0 ? 'zero-line' : 'grid-line'}" x1="${M.l}" x2="${M.l + f.pw}" y1="${y}" y2="${y}"/>`;
      s += `<text x="${M.l - 7}" y="${y}" dy=".35em" text-anchor="end">${esc(yFmt(v, i))}</text>`;
    }
    return s + '</g>';
  }

  function linePath(f, pts, get) {
    let d = '';
    let pen = false;
    for (const p of pts) {
      const v = get(p);
      if (v == null || p.t < f.x0) { pen = false; continue; }
      d += (pen ? 'L' : 'M') + f.sx(p.t).toFixed(1) + ' ' + f.sy(v).toFixed(1);
      pen = true;
    }
    return d;
  }

  function areaPath(f, pts, get) {
    let d = '';
    let run = [];
    const flush = () => {
      if (run.length > 1) {
        d += 'M' + run[0][0] + ' ' + f.bottom + run.map(([x, y]) => 'L' + x + ' ' + y).join('') + 'L' + run[run.length - 1][0] + ' ' + f.bottom + 'Z';
      }
      run = [];
    };
    for (const p of pts) {
      const v = get(p);
      if (v == null || p.t < f.x0) { flush(); continue; }
      run.push([f.sx(p.t).toFixed(1), f.sy(v).toFixed(1)]);
    }
    flush();
    return d;
  }

  // bars draws one bar per sample interval, from the previous sample to this one.
  function bars(f, pts, get, fill) {
    let d = '';
    for (const p of pts) {
      const v = get(p);
      if (!v) continue;
      const xa = f.sx(Math.max(p.t - p.dt, f.x0));
      const xb = f.sx(p.t);
      const y = f.sy(v);
      d += `M${xa.toFixed(1)} ${f.bottom}H${Math.max(xb - 0.5, xa + 1).toFixed(1)}V${y.toFixed(1)}H${xa.toFixed(1)}Z`;
    }
    return d ? `<path d="${d}" fill="${fill}"/>` : '';
  }

  // patternDefs defines the error fills under ids made from prefix: the
  // column's number, as a side's name may hold characters an id should not.
  function patternDefs(prefix) {
    let s = '<defs>';
    for (const e of ERR_KINDS) {
      const id = `pat-${prefix}-${e.k}`;
      const c = e.color;
      let body;
      switch (e.pat) {
        case 'hatch': body = `<rect width="6" height="6" fill="#fff"/><path d="M-1 1l2-2M0 6l6-6M5 7l2-2" stroke="${c}" stroke-width="2.4"/>`; break;
        case 'dots': body = `<rect width="6" height="6" fill="#fff"/><circle cx="3" cy="3" r="1.9" fill="${c}"/>`; break;
        case 'cross': body = `<rect width="6" height="6" fill="${c}"/><path d="M0 0l6 6M6 0l-6 6" stroke="#fff" stroke-width="1"/>`; break;
        case 'hlines': body = `<rect width="6" height="6" fill="#fff"/><path d="M0 1.5h6M0 4.5h6" stroke="${c}" stroke-width="1.8"/>`; break;
        case 'vlines': body = `<rect width="6" height="6" fill="#fff"/><path d="M1.5 0v6M4.5 0v6" stroke="${c}" stroke-width="1.8"/>`; break;
        default: body = `<rect width="6" height="6" fill="${c}"/>`;
      }
      s += `<pattern id="${id}" width="6" height="6" patternUnits="userSpaceOnUse">${body}</pattern>`;
    }
    return s + '</defs>';
  }

  function swatch(sd, e) {
    return `<svg viewBox="0 0 12 12" aria-hidden="true">${patternDefs('c' + sd.i + '-sw')}<rect x=".75" y=".75" width="10.5" height="10.5" fill="url(#pat-c${sd.i}-sw-${e.k})" stroke="${e.color}" stroke-width="1.5"/></svg>`;
  }

  // Paused spans and event markers, drawn under (bands) and over (lines) every chart.
  function pausedSpans() {
    const spans = [];
    let start = null;
    for (const s of st.samples) {
      if (s.paused && start == null) start = s.elapsed_s;
      if (!s.paused && start != null) { spans.push([start, s.elapsed_s]); start = null; }
    }
    if (start != null) spans.push([start, st.samples[st.samples.length - 1].elapsed_s]);
    return spans;
  }

  function underlay(f, sd, groups) {
    let s = '';
    for (const [a, b] of pausedSpans()) {
      if (b < f.x0) continue;
      const xa = f.sx(Math.max(a, f.x0));
      s += `<rect x="${xa.toFixed(1)}" y="${f.top}" width="${Math.max(f.sx(b) - xa, 2).toFixed(1)}" height="${f.ph}" fill="#000" opacity=".07"/>`;
    }
    // How long each event took on this side: a graceful restart drains first.
    for (const g of groups) {
      // One band per side: the records of a rolling restart share a start.
      const took = Math.max(0, ...g.recs.filter((r) => r.side === sd.name).map((r) => r.took_ms || 0));
      const r = g.recs.find((r) => r.side === sd.name);
      if (r && took > 0) {
        const b = r.at_s + took / 1000;
        if (b < f.x0) continue;
        const xa = f.sx(Math.max(r.at_s, f.x0));
        s += `<rect class="took" x="${xa.toFixed(1)}" y="${f.top}" width="${Math.max(f.sx(b) - xa, 1.5).toFixed(1)}" height="${f.ph}" fill="${eventStyle(g.kind).color}" opacity=".10"/>`;
      }
    }
    return s;
  }

  function overlay(f, groups) {
    let s = '';
    for (const g of groups) {
      if (g.at < f.x0) continue;
      const x = f.sx(g.at).toFixed(1);
      s += `<line class="marker-line" x1="${x}" x2="${x}" y1="${f.top - 2}" y2="${f.bottom + 2}" stroke="${eventStyle(g.kind).color}"/>`;
    }
    return s;
  }

  function svg(w, h, inner, attrs = '') {
    return `<svg viewBox="0 0 ${w} ${h}" width="${w}" height="${h}" ${attrs}>${inner}</svg>`;
  }

  function setCap(cell, html) {
    const v = cell.querySelector('.cap .v');
    if (v && v.innerHTML !== html) v.innerHTML = html;
  }

  // ---- the charts ----------------------------------------------------------

  function visible(pts, x0) {
    let i = 0;
    while (i < pts.length && pts[i].t < x0) i++;
    return pts.slice(i);
  }

  function maxOf(get, x0) {
    let m = 0;
    for (const pts of st.points) for (const p of visible(pts, x0)) m = Math.max(m, get(p) || 0);
    return m;
  }

  function drawEvents(sd, cell, w, groups) {
    const h = LANE_H;
    const f = frame(w, h, 1);
    let s = '<g class="axis">';
    for (const v of xTicks(f.x0, f.x1)) {
      const x = f.sx(v).toFixed(1);
      s += `<line class="grid-line" x1="${x}" x2="${x}" y1="${h - 4}" y2="${h}"/><text x="${x}" y="${h - 6}" text-anchor="middle">${fmtT(v)}</text>`;
    }
    s += '</g>';
    // Pills, staggered on two rows when they would overlap.
    const rowsEnd = [-Infinity, -Infinity];
    let markers = '';
    for (const g of groups) {
      if (g.at < f.x0) continue;
      const es = eventStyle(g.kind);
      const mine = g.recs.filter((r) => r.side === sd.name && r.replica);
      let label = es.sym + ' ' + es.word;
      const sideDone = g.recs.some((r) => r.side === sd.name || r.side === 'both');
      if (!sideDone) label += '…'; // this side's part is still under way (a drain takes a while)
      else if (g.kind === 'restart' || g.kind === 'crash') label += mine.length > 1 ? ' all' : mine.length ? ' #' + replicaNo(mine[0].replica) : '';
      else if (g.kind === 'scale-out' && mine.length) label += ' +' + mine.length;
      else if (g.kind === 'scale-in' && mine.length) label += ' −' + mine.length;
      if (g.source === 'control') label += ' · live';
      const x = f.sx(g.at);
      // The full label where it fits on one of two rows, else only the symbol.
      const place = (text) => {
        const tw = text.length * 8.2 * k + 12;
        const left = Math.min(Math.max(x - 6, 0), w - tw);
        const row = rowsEnd[0] < left ? 0 : rowsEnd[1] < left ? 1 : -1;
        return { text, tw, left, row };
      };
      let p = place(label);
      if (p.row < 0) {
        p = place(es.sym);
        if (p.row < 0) p.row = rowsEnd[0] <= rowsEnd[1] ? 0 : 1;
      }
      const { tw, left, row } = p;
      label = p.text;
      rowsEnd[row] = left + tw + 3;
      const ph = Math.round(17 * k);
      const y = 1 + row * (ph + 2);
      const light = es.color === C.orange || es.color === C.sky || es.color === C.yellow;
      markers += `<g class="marker pill${light ? ' light' : ''}" data-kind="${esc(g.kind)}" data-source="${esc(g.source)}" data-at="${g.at.toFixed(1)}">` +
        `<line x1="${x.toFixed(1)}" x2="${x.toFixed(1)}" y1="${y + ph / 2}" y2="${h}" stroke="${es.color}" stroke-width="2" stroke-dasharray="5 3"/>` +
        `<rect x="${left.toFixed(1)}" y="${y}" width="${tw.toFixed(1)}" height="${ph}" rx="4" fill="${es.color}"/>` +
        `<text x="${(left + 6).toFixed(1)}" y="${(y + ph * 0.77).toFixed(1)}">${esc(label)}</text><title>${describeGroup(g).replace(/<[^>]+>/g, '')}</title></g>`;
    }
    let paused = '';
    for (const [a, b] of pausedSpans()) {
      if (b < f.x0) continue;
      const xa = f.sx(Math.max(a, f.x0));
      paused += `<rect x="${xa.toFixed(1)}" y="0" width="${Math.max(f.sx(b) - xa, 2).toFixed(1)}" height="${h}" fill="#000" opacity=".07"/>`;
    }
    cell.querySelector('.plot').innerHTML = svg(w, h, paused + s + markers, `data-n="${groups.length}"`);
  }

  function drawOK(sd, cell, w, groups, yMax) {
    const h = st.h.ok;
    const f = frame(w, h, yMax);
    const pts = visible(st.points[sd.i], f.x0);
    const last = pts[pts.length - 1];
    let s = underlay(f, sd, groups) + axes(f, [0, yMax / 2, yMax], fmtTick);
    s += `<path d="${areaPath(f, pts, (p) => p.ok)}" fill="${C.blue}" opacity=".16"/>`;
    // With an open-loop load, what was asked for beside what got through:
    // the gap between the two lines is the load the side did not carry.
    const open = !!(st.meta && st.meta.openLoop);
    if (open) s += `<path class="offered" d="${linePath(f, pts, (p) => p.offered)}" fill="none" stroke="${C.black}" stroke-width="2" stroke-dasharray="6 4" stroke-linejoin="round"/>`;
    s += `<path d="${linePath(f, pts, (p) => p.ok)}" fill="none" stroke="${C.blue}" stroke-width="2.6" stroke-linejoin="round"/>`;
    if (last) s += `<text class="end-label" x="${f.sx(last.t) + 6}" y="${f.sy(last.ok)}" dy=".35em" fill="${C.blue}">${fmtRate(last.ok)}</text>`;
    s += overlay(f, groups);
    cell.querySelector('.plot').innerHTML = svg(w, h, s, `data-n="${pts.length}"` + (last && open ? ` data-offered="${last.offered.toFixed(1)}" data-ok="${last.ok.toFixed(1)}"` : ''));
    const tot = nowOf(sd);
    setCap(cell, !last ? 'waiting for the first second…' : open
      ? `<span class="legend-item"><span class="swatch blue">━</span> ok <b>${fmtRate(last.ok)}</b>/s</span><span class="legend-item"><span>╍</span> offered <b>${fmtRate(last.offered)}</b>/s</span>`
      : `now <b>${fmtRate(last.ok)}</b>/s` + (projector ? '' : ` · total ok <b>${fmtInt(tot ? tot.ok : 0)}</b>`));
  }

  function drawLoss(sd, cell, w, groups, yMax) {
    const h = st.h.loss;
    const f = frame(w, h, yMax);
    const pts = visible(st.points[sd.i], f.x0);
    let s = underlay(f, sd, groups) + axes(f, [0, yMax / 2, yMax], fmtTick);
    s += bars(f, pts, (p) => p.sessions, C.vermillion);
    // Cart items: a line with diamonds, where there were any.
    if (pts.some((p) => p.cart > 0)) s += `<path d="${linePath(f, pts, (p) => p.cart)}" fill="none" stroke="${C.black}" stroke-width="1.6" stroke-dasharray="4 2"/>`;
    for (const p of pts) {
      if (!p.cart) continue;
      const x = f.sx(p.t), y = f.sy(p.cart);
      s += `<path d="M${x.toFixed(1)} ${(y - 5).toFixed(1)}l5 5-5 5-5-5z" fill="${C.orange}" stroke="#000" stroke-width="1.2"/>`;
    }
    s += overlay(f, groups);
    const tot = nowOf(sd);
    const sl = tot ? tot.sessions_lost : 0, ci = tot ? tot.cart_items_lost : 0;
    cell.querySelector('.plot').innerHTML = svg(w, h, s, `data-n="${pts.length}" data-sessions-lost="${sl}" data-cart-items-lost="${ci}"`);
    setCap(cell, `<span class="legend-item"><span class="swatch vermillion">▮</span> sessions <b>${fmtInt(sl)}</b>${projector ? '' : ' total'}</span>` +
      `<span class="legend-item"><span class="swatch orange outlined">◆</span> cart items${projector ? '' : ' lost'} <b>${fmtInt(ci)}</b>${projector ? '' : ' total'}</span>`);
  }

  function drawErrors(sd, cell, w, groups, yMax) {
    const h = st.h.errors;
    const f = frame(w, h, yMax);
    const pts = visible(st.points[sd.i], f.x0);
    let s = patternDefs('c' + sd.i) + underlay(f, sd, groups) + axes(f, [0, yMax / 2, yMax], fmtTick);
    // Stacked bars, in the legend's order from the bottom up.
    const paths = ERR_KINDS.map(() => '');
    for (const p of pts) {
      let base = 0;
      const xa = f.sx(Math.max(p.t - p.dt, f.x0)).toFixed(1);
      const xb = Math.max(f.sx(p.t) - 0.5, f.sx(Math.max(p.t - p.dt, f.x0)) + 1).toFixed(1);
      ERR_KINDS.forEach((e, i) => {
        const v = p.err[e.k];
        if (!v) return;
        const y0 = f.sy(base), y1 = f.sy(base + v);
        base += v;
        paths[i] += `M${xa} ${y0.toFixed(1)}H${xb}V${y1.toFixed(1)}H${xa}Z`;
      });
    }
    ERR_KINDS.forEach((e, i) => {
      if (paths[i]) s += `<path d="${paths[i]}" fill="url(#pat-c${sd.i}-${e.k})" stroke="${e.color}" stroke-width=".6"/>`;
    });
    s += overlay(f, groups);
    cell.querySelector('.plot').innerHTML = svg(w, h, s, `data-n="${pts.length}"`);
    const tot = nowOf(sd);
    const items = tot ? ERR_KINDS.filter((e) => tot[e.k] > 0) : [];
    setCap(cell, items.length
      ? items.map((e) => `<span class="legend-item">${swatch(sd, e)}${esc(e.label)} <b>${fmtInt(tot[e.k])}</b></span>`).join('')
      : tot ? '<b>none</b> counted' : '');
  }

  function drawLatency(sd, cell, w, groups, yMin, yMax) {
    const h = st.h.latency;
    const f = frame(w, h, yMax, { log: true, yMin });
    const pts = visible(st.points[sd.i], f.x0);
    const ticks = [];
    for (let v = yMin; v <= yMax * 1.0001; v *= 10) ticks.push(v);
    const crowded = f.ph / Math.max(ticks.length - 1, 1) < 18;
    let s = underlay(f, sd, groups) + axes(f, ticks, (v, i) => (crowded && i % 2 ? '' : fmtMS(v).replace('.0 ', ' ')));
    s += `<path d="${linePath(f, pts, (p) => p.p50)}" fill="none" stroke="${C.blue}" stroke-width="2.6" stroke-linejoin="round"/>`;
    s += `<path d="${linePath(f, pts, (p) => p.p99)}" fill="none" stroke="${C.vermillion}" stroke-width="2.6" stroke-dasharray="7 4" stroke-linejoin="round"/>`;
    const last = [...pts].reverse().find((p) => p.p50 != null);
    if (last) {
      let y50 = f.sy(last.p50), y99 = f.sy(last.p99);
      if (y50 - y99 < 15) { const mid = (y50 + y99) / 2; y50 = mid + 7.5; y99 = mid - 7.5; }
      s += `<text class="end-label" x="${f.sx(last.t) + 6}" y="${y50}" dy=".35em" fill="${C.blue}">p50</text>`;
      s += `<text class="end-label" x="${f.sx(last.t) + 6}" y="${y99}" dy=".35em" fill="${C.vermillion}">p99</text>`;
    }
    s += overlay(f, groups);
    cell.querySelector('.plot').innerHTML = svg(w, h, s, `data-n="${pts.length}"`);
    setCap(cell, last
      ? `<span class="legend-item"><span class="swatch blue">━</span> p50 <b>${fmtMS(last.p50)}</b></span><span class="legend-item"><span class="swatch vermillion">╍</span> p99 <b>${fmtMS(last.p99)}</b></span>`
      : '');
  }

  function drawUp(sd, cell, w, groups, yMax) {
    const h = st.h.up;
    const f = frame(w, h, yMax);
    const pts = visible(st.points[sd.i], f.x0);
    let s = underlay(f, sd, groups) + axes(f, [0, yMax], (v) => String(v));
    let d = '';
    let prev = null;
    for (const p of pts) {
      const x = f.sx(p.t).toFixed(1), y = f.sy(p.up).toFixed(1);
      d += prev == null ? `M${f.sx(Math.max(p.t - p.dt, f.x0)).toFixed(1)} ${y}H${x}` : `V${y}H${x}`;
      prev = p;
    }
    s += `<path d="${d}" fill="none" stroke="${C.green}" stroke-width="3"/>`;
    const last = pts[pts.length - 1];
    if (last) s += `<text class="end-label" x="${f.sx(last.t) + 6}" y="${f.sy(last.up)}" dy=".35em" fill="${C.green}">${last.up}</text>`;
    s += overlay(f, groups);
    cell.querySelector('.plot').innerHTML = svg(w, h, s, `data-n="${pts.length}"`);
    const now = nowOf(sd);
    setCap(cell, now ? `<b>${(now.replicas || []).length}</b> now` : '');
    const addrs = cell.querySelector('.addrs');
    const html = addrLine(sd);
    if (addrs && addrs.innerHTML !== html) addrs.innerHTML = html;
  }

  // hostPort splits an address into its host and its :port.
  function hostPort(a) {
    const i = String(a).lastIndexOf(':');
    return i < 0 ? [String(a), ''] : [a.slice(0, i), a.slice(i)];
  }

  // addrLine lists the side's replicas in service with the address each
  // listens on and, with links, the address of the link its balancer
  // reaches it through; the host said once when they all share it.
  function addrLine(sd) {
    const reps = nowReplicas(sd).filter((r) => r.addr);
    if (!reps.length) return '';
    const hosts = new Set(reps.flatMap((r) => [hostPort(r.addr)[0], ...(r.link ? [hostPort(r.link)[0]] : [])]));
    const one = hosts.size === 1 ? [...hosts][0] : null;
    const short = (a) => esc(one ? hostPort(a)[1] : a);
    return (one ? `on <b>${esc(one)}</b>: ` : '') + reps.map((r) =>
      `<span class="addr" data-replica="${esc(r.id)}">#${esc(replicaNo(r.id))} ${short(r.addr)}${r.link ? ` <small>(link ${short(r.link)})</small>` : ''}</span>`).join(' · ');
  }

  // addrOf says where a replica listens, for its strip's tooltip.
  function addrOf(sd, id) {
    const r = nowReplicas(sd).find((r) => r.id === id);
    return r && r.addr ? `${id} listens on ${r.addr}` + (r.link ? `; its balancer reaches it through the link ${r.link}` : '') : id;
  }

  // replicaOrder lists every replica seen in the window, by number.
  function replicaOrder(sd, x0) {
    const ids = new Set();
    for (const p of visible(st.points[sd.i], x0)) for (const r of p.reps) ids.add(r.id);
    for (const r of nowReplicas(sd)) ids.add(r.id);
    return [...ids].sort((a, b) => (+replicaNo(a) - +replicaNo(b)) || a.localeCompare(b));
  }

  const nowOf = (sd) => (st.now && st.now.sides && st.now.sides[sd.name]) || null;
  const nowReplicas = (sd) => (nowOf(sd) || {}).replicas || [];

  // noSessionsNote says, in a replica's strip, why there is nothing to count.
  function noSessionsNote(sd) {
    if (sd.server === 'stateless') return 'keeps no sessions: ' + carried(sd);
    if (storeService(sd)) return 'keeps no sessions in memory: they live in the shared ' + storeService(sd);
    if (inCookie(sd)) return 'keeps no sessions in memory: each client’s cookie carries its sealed session';
    return 'reports no session count';
  }

  function drawSessions(sd, cell, w, groups, yMax) {
    const [x0] = xDomain();
    const pts = visible(st.points[sd.i], x0);
    const order = replicaOrder(sd, x0);
    const up = new Set(nowReplicas(sd).map((r) => r.id));
    // A strip for every side whose replicas count their sessions; a side
    // that keeps them in memory gets one even before its first count, so
    // a missed count shows as a gap.
    const counted = pts.some((p) => p.reps.some((r) => r.s != null)) || nowReplicas(sd).some((r) => r.sessions != null) || inProcess(sd);
    const h = Math.max(order.length, 1) * st.stripH + 4;
    const f = frame(w, h, 1);
    const cpuSeen = pts.some((p) => p.reps.some((r) => r.cpu != null || r.cores != null));
    let s = underlay(f, sd, groups);
    if (!order.length) s += `<text class="note" x="${M.l}" y="18">no replica running</text>`;
    order.forEach((id, i) => {
      const top = 2 + i * st.stripH;
      const sf = { ...f, top: top + 3, bottom: top + st.stripH - 2, ph: st.stripH - 5 };
      sf.sy = (v) => sf.bottom - (Math.min(v, yMax) / yMax) * sf.ph;
      const get = (p) => { const r = p.reps.find((r) => r.id === id); return r ? r.s : null; };
      const getU = (p) => { const r = p.reps.find((r) => r.id === id); return r ? r.u : null; };
      const gone = !up.has(id);
      s += `<g class="strip" data-replica="${esc(id)}"`;
      const lastVal = [...pts].reverse().map(get).find((v) => v != null);
      const lastU = [...pts].reverse().map(getU).find((v) => v != null);
      s += ` data-last="${lastVal == null ? '' : lastVal}" data-in-use="${lastU == null ? '' : lastU}">`;
      s += `<line class="zero-line" x1="${M.l}" x2="${M.l + f.pw}" y1="${sf.bottom}" y2="${sf.bottom}"/>`;
      s += `<g><title>${esc(addrOf(sd, id))}</title><text class="strip-label${gone ? ' gone' : ''}" x="${M.l - 7}" y="${sf.bottom - 4}" text-anchor="end">#${esc(replicaNo(id))}</text></g>`;
      if (counted) {
        // Held, idle ones included: a light area. In use: a dark line.
        s += `<path d="${areaPath(sf, pts, get)}" fill="${C.green}" opacity=".25"/>`;
        s += `<path d="${linePath(sf, pts, get)}" fill="none" stroke="${C.green}" stroke-width="1" opacity=".6"/>`;
        s += `<path class="in-use" d="${linePath(sf, pts, getU)}" fill="none" stroke="#006b4f" stroke-width="2.6"/>`;
        if (gone) s += `<text class="note" x="${M.l + f.pw + 6}" y="${sf.bottom - 4}">gone</text>`;
        else if (lastVal != null) s += `<text class="end-label" x="${M.l + f.pw + 6}" y="${sf.bottom - 4}" fill="#006b4f">${lastU == null ? fmtInt(lastVal) : fmtInt(lastU) + '/' + fmtInt(lastVal)}</text>`;
      } else if (i === 0 && !cpuSeen) {
        s += `<text class="note" x="${M.l + 8}" y="${sf.bottom - 5}">${esc(noSessionsNote(sd))}</text>`;
      } else if (!cpuSeen) {
        s += `<text class="note" x="${M.l + 8}" y="${sf.bottom - 5}">${gone ? 'gone' : 'keeps no sessions'}</text>`;
      } else if (gone) {
        s += `<text class="note" x="${M.l + f.pw + 6}" y="${sf.bottom - 4}">gone</text>`;
      }
      s += cpuStrip(sf, pts, id, gone);
      s += '</g>';
    });
    s += overlay({ ...f, top: 2, bottom: h - 2 }, groups);
    // What each restart, crash or removal took with it, counted by the
    // replica itself just before: the number next to the drop.
    for (const g of groups) {
      if (g.at < f.x0 || !['restart', 'crash', 'scale-in'].includes(g.kind)) continue;
      for (const r of g.recs) {
        if (r.side !== sd.name || !r.replica) continue;
        const i = order.indexOf(r.replica);
        // What went with it: the sessions in use where the replica said,
        // else all it held.
        const held = r.sessions_held != null ? r.sessions_held : g.kind === 'scale-in' ? lastSessions(sd.name, r.replica, g.at) : null;
        const n = r.sessions_in_use != null && held != null ? Math.min(r.sessions_in_use, held) : held;
        if (i < 0 || !n) continue;
        const y = 2 + i * st.stripH + st.stripH / 2 + 5;
        s += `<text class="loss-label" x="${(f.sx(g.at) + 4).toFixed(1)}" y="${y.toFixed(1)}" data-replica="${esc(r.replica)}">−${fmtInt(n)}</text>`;
      }
    }
    cell.querySelector('.plot').innerHTML = svg(w, h, s, `data-n="${pts.length}" data-counted="${counted ? 1 : 0}"`);
    // Short, so the legend stands whole beside the title, which says
    // "sessions" already; the scales run from 0 to the strip's top.
    const cpuCap = !cpuSeen ? '' : limited()
      ? `<span class="legend-item"><span class="swatch purple">━</span> CPU, top = its limit</span>`
      : `<span class="legend-item"><span class="swatch purple">━</span> CPU 0–${fmtCores(st.cpuMax)} cores</span>`;
    setCap(cell, (counted
      ? `<span class="legend-item"><span class="swatch green">▮</span> in use / held 0–${fmtInt(yMax)}</span>`
      : cpuSeen ? '' : 'nothing to count') + cpuCap);
  }

  // limited reports whether the kernel holds every replica to a CPU limit.
  const limited = () => !!(st.meta && st.meta.cpuLimit && st.meta.cpuLimit.enforced);
  const fmtCores = (v) => (v >= 1 ? v.toFixed(1) : v.toFixed(2));

  // cpuStrip draws one replica's CPU use over time in its strip, as a share
  // of its limit (the strip's top is the limit, so a line along the top is
  // a saturated replica) or, without an enforced limit, in cores; and its
  // latest value at the right.
  function cpuStrip(sf, pts, id, gone) {
    const lim = limited();
    const get = (p) => {
      const r = p.reps.find((r) => r.id === id);
      if (!r) return null;
      return lim ? r.cpu : r.cores;
    };
    const top = lim ? 1 : st.cpuMax;
    const cf = { ...sf, sy: (v) => sf.bottom - (Math.min(v, top * 1.15) / top) * sf.ph };
    const last = [...pts].reverse().map(get).find((v) => v != null);
    if (last == null) return '';
    let s = `<path class="cpu" d="${linePath(cf, pts, get)}" fill="none" stroke="${C.purple}" stroke-width="2.2" stroke-linejoin="round"/>`;
    if (!gone) {
      const text = lim ? `cpu ${Math.round(100 * last)}%` : `cpu ${fmtCores(last)}`;
      s += `<text class="cpu-label${lim && last >= 0.95 ? ' hot' : ''}" x="${(M.l + sf.pw - 4).toFixed(1)}" y="${(sf.top + 10).toFixed(1)}" text-anchor="end" data-replica="${esc(id)}" data-cpu="${last.toFixed(3)}">${text}</text>`;
    }
    return s;
  }

  // ---- what each side pays --------------------------------------------------

  const fmtUS = (v) => (v >= 1000 ? (v / 1000).toFixed(v >= 10000 ? 0 : 1) + ' ms' : v >= 10 ? v.toFixed(0) + ' µs' : v.toFixed(1) + ' µs');
  const fmtTrips = (v) => (v === 0 ? '0' : v >= 10 ? v.toFixed(0) : v.toFixed(1));
  // measured says whether the replicas have identified anyone yet: before
  // that, identification and round trips per request are not measured
  // (not zero).
  const measured = (c) => c.identifications > 0;
  // bytesParts says what of the mean request the sign-in took: the
  // credential's bytes and, where the runner counts them apart, the
  // balancer's routing cookie's.
  function bytesParts(c) {
    const parts = [];
    if (c.credential_bytes_mean != null) parts.push(`credential ${fmtInt(c.credential_bytes_mean)} B`);
    if (c.routing_cookie_bytes_mean > 0) parts.push(`routing ${fmtInt(c.routing_cookie_bytes_mean)} B`);
    return parts.join(' + ');
  }

  // COST_ROWS are the cost panel's lines, read from each side's costs in the
  // feed (the runner measures them; nothing here is computed from what a
  // credential should cost). A row is left out when no side has its value;
  // zero: a measured 0 is a value (no round trip), not a blank.
  const COST_ROWS = [
    { label: 'request bytes, median', get: (c) => c.request_bytes_p50,
      fmt: (v, c) => fmtInt(v) + (c.credential_bytes_mean != null ? ` <small>${fmtInt(v - c.credential_bytes_mean - (c.routing_cookie_bytes_mean || 0))} without the ${c.routing_cookie_bytes_mean > 0 ? 'credential and routing cookie' : 'credential'}</small>` : '') },
    { label: 'bytes over a whole journey, median', get: (c) => c.journey_bytes_p50, fmt: (v) => fmtInt(v) },
    // The median: the mean also holds the moments a busy machine made a
    // replica wait, which no credential is to blame for.
    { label: 'identifying the caller, median per request', get: (c) => c.identify_us_p50 || c.identify_us_mean, fmt: (v) => (v >= 10 ? v.toFixed(0) : v.toFixed(1)) + ' µs' },
    { label: 'replica CPU per request', get: (c) => (c.balanced_requests > 0 ? c.server_cpu_per_request_us : null),
      fmt: (v, c) => fmtUS(v) + (c.store_cpu_per_request_us > 0 ? ` <small>+ ${fmtUS(c.store_cpu_per_request_us)} in its session store</small>` : '') },
    { label: 'shared-service round trips per request', zero: true, get: (c) => (measured(c) && c.shared_round_trips_per_request != null ? c.shared_round_trips_per_request : null), fmt: fmtTrips },
    { label: 'authenticated reads, p50 / p99', get: (c) => c.read_latency_ms && c.reads ? c.read_latency_ms.p50 : null, fmt: (v, c) => fmtMS(v) + ' / ' + fmtMS(c.read_latency_ms.p99) },
  ];
  const hasCost = (r, c) => { const v = c ? r.get(c) : null; return v != null && (r.zero ? v >= 0 : v > 0); };

  function renderCosts() {
    const box = $('#costs');
    const costs = st.sides.map((sd) => (nowOf(sd) || {}).costs || null);
    box.hidden = projector || !costs.some((c) => c);
    if (box.hidden) return;
    const head = '<th scope="col"></th>' + st.sides.map((sd) => `<th scope="col"><span class="side-tag col-${sd.i}">${esc(sd.name)}</span></th>`).join('');
    if (box.querySelector('thead tr').innerHTML !== head) box.querySelector('thead tr').innerHTML = head;
    const rows = COST_ROWS.filter((r) => costs.some((c) => hasCost(r, c))).map((r) =>
      `<tr><th scope="row">${esc(r.label)}</th>` + costs.map((c) => `<td>${hasCost(r, c) ? r.fmt(r.get(c), c) : '–'}</td>`).join('') + '</tr>').join('');
    const body = box.querySelector('tbody');
    if (body.innerHTML !== rows) body.innerHTML = rows;
  }

  // COST_STRIP is the projector's one line a side of what it pays per
  // request, from the same costs as the panel: the bytes a request takes
  // and the credential's part (the mean request, so the parts add up), the
  // replicas' time to identify the caller, their CPU, and their calls to a
  // shared service. '–' where the run has not measured it yet.
  const COST_STRIP = [
    { k: 'bytes', title: 'the mean request on the wire, and what its credential (and the balancer’s routing cookie) took of it',
      get: (c) => (c.request_bytes_mean > 0 ? `<b>${fmtInt(c.request_bytes_mean)} B</b>` + (bytesParts(c) ? ` <small>(${bytesParts(c)})</small>` : '') : null) },
    { k: 'identify', title: 'the replicas’ median time to find out who was asking (statelab_identify_seconds)',
      get: (c) => (measured(c) ? `identify <b>${fmtUS(c.identify_us_p50 || c.identify_us_mean)}</b>` : null) },
    { k: 'cpu', title: 'the replicas’ CPU time (and their session store’s) per request the balancer handed them',
      get: (c) => (c.balanced_requests > 0 && c.server_cpu_per_request_us > 0
        ? `CPU <b>${fmtUS(c.server_cpu_per_request_us)}</b>` + (c.store_cpu_per_request_us > 0 ? ` <small>+ ${fmtUS(c.store_cpu_per_request_us)} store</small>` : '') : null) },
    { k: 'trips', title: 'calls a replica made to a shared service (redis, the database) per request it identified, counted by the replica',
      get: (c) => (measured(c) && c.shared_round_trips_per_request != null ? `<b>${fmtTrips(c.shared_round_trips_per_request)}</b> shared round trips` : null) },
  ];

  function renderCostStrip() {
    const box = $('#cost-strip');
    const costs = st.sides.map((sd) => (nowOf(sd) || {}).costs || null);
    box.hidden = !projector || !costs.some((c) => c);
    if (box.hidden) return;
    for (const sd of st.sides) {
      const c = costs[sd.i];
      for (const td of box.querySelectorAll(`tr[data-col="${sd.i}"] td`)) {
        const e = COST_STRIP.find((e) => e.k === td.dataset.cost);
        const html = (c && e.get(c, sd)) || `<span class="na">${esc(e.k)} –</span>`;
        if (td.innerHTML !== html) td.innerHTML = html;
      }
    }
  }

  // ---- the whole page --------------------------------------------------------

  // rateOf is a side's rate of one of its counted totals over the last
  // RATE_S seconds of samples (fewer at the start of a run): the difference
  // of the two totals over the time between them. null before two samples,
  // and when the runner does not count that total.
  function rateOf(sd, key) {
    const n = st.samples.length;
    if (n < 2) return null;
    const b = st.samples[n - 1];
    let a = st.samples[n - 2];
    for (let i = n - 2; i >= 0 && b.elapsed_s - st.samples[i].elapsed_s <= RATE_S + 0.5; i--) a = st.samples[i];
    const A = a.sides && a.sides[sd.name], B = b.sides && b.sides[sd.name];
    const dt = b.elapsed_s - a.elapsed_s;
    if (!A || !B || !(dt > 0) || A[key] == null || B[key] == null) return null;
    return Math.max(0, (B[key] - A[key]) / dt);
  }

  // totalOf is one column's value for a side and its text: '–' before the
  // side's first sample, '—' for what this runner does not count.
  function totalOf(sd, t, c) {
    if (!t) return { v: null, text: '–' };
    if (c.rate) {
      const v = rateOf(sd, c.rate);
      return { v, text: v == null ? (t[c.rate] == null ? '—' : '–') : fmtRate(v) };
    }
    switch (c.k) {
      case 'availability':
        return { v: t.availability, text: (t.requests - t.conflicts > 0) ? (100 * t.availability).toFixed(1) + ' %' : '–' };
      case 'retries_saved': {
        // Both counted: the balancer's retries a replica answered, and the
        // users' own resends (same Idempotency-Key) that one answered.
        const v = (t.lb_retries_saved || 0) + (t.user_retries_saved || 0);
        return { v, text: fmtInt(v) };
      }
      default: {
        const v = t[c.k];
        return { v, text: v == null ? '—' : fmtInt(v) };
      }
    }
  }

  function renderTotals() {
    const cols = totalsShown();
    for (const sd of st.sides) {
      const row = $(`#totals tr[data-col="${sd.i}"]`);
      if (!row) continue;
      const t = nowOf(sd);
      for (const td of row.querySelectorAll('td')) {
        const c = cols.find((c) => c.k === td.dataset.k);
        if (!c) continue;
        const { v, text } = totalOf(sd, t, c);
        const cls = [c.secondary ? 'secondary' : '', c === cols.find((c) => c.secondary) ? 'sec-start' : '', c.bad && v != null ? (v > 0 ? 'bad' : 'good') : ''].filter(Boolean).join(' ');
        if (td.textContent !== text) td.textContent = text;
        if (td.className !== cls) td.className = cls;
      }
    }
  }

  // netWords says what lies between the lab's processes, from the feed's
  // network: where they run and the delay every link holds the bytes for,
  // each way (a round trip across one costs twice it). The projector says
  // only the delay, and nothing when there is none.
  function netWords(n) {
    if (!n) return '';
    const lat = +n.latency_ms || 0, jit = +n.jitter_ms || 0;
    const delay = lat > 0 ? `links <b>+${fmtMS(lat)}</b>${projector ? '' : ' each way'}` + (jit > 0 ? ` ± ${fmtMS(jit)}` : '') : 'no delay added';
    if (projector) return lat > 0 ? delay : '';
    const hosts = n.hosts === 'netns' ? 'a host each' + (n.subnet ? ` on <b>${esc(n.subnet)}</b>` : '') : 'one host, loopback';
    return `${hosts} · ${delay}`;
  }
  const netTitle = (n) => (n.hosts === 'netns'
    ? 'every replica, balancer and shared service runs in its own network namespace, joined by one bridge'
    : 'every process runs on this machine and reaches the others over loopback') +
    (n.latency_ms > 0 ? `; every link the lab controls holds the bytes ${n.latency_ms} ms each way, so a round trip across one costs ${2 * n.latency_ms} ms` : '');

  function renderHeader() {
    const m = st.meta;
    if (m) {
      let load = `${esc(m.users)} users a side`;
      if (m.openLoop) load += ` + <b>${fmtRate(m.openLoop.rate)}</b> requests/s offered a side (deadline ${fmtMS(m.openLoop.deadline_ms)})`;
      const lim = m.cpuLimit;
      if (lim && lim.enforced) load += ` · each replica limited to <b title="${esc(lim.mechanism)}, ${esc(lim.quota_us)} µs per ${esc(lim.period_us)} µs">${esc(lim.cpus)} CPU</b> by the kernel (${esc(lim.mechanism)})`;
      else if (lim) load += ` · <b class="warn" title="${esc(lim.reason)}">CPU limit ${esc(lim.cpus)} NOT enforced: replicas unlimited</b>`;
      $('#scenario').innerHTML = `scenario <b>${esc(m.scenario)}</b> · ${load}`;
      const net = $('#net');
      const words = netWords(m.network);
      net.hidden = !words;
      if (net.innerHTML !== words) net.innerHTML = words;
      net.title = m.network ? netTitle(m.network) : '';
      const t = st.now ? st.now.elapsed_s : 0;
      document.body.dataset.elapsed = t.toFixed(1);
      const ph = st.now ? st.now.phase : '';
      let clock = `t = ${t.toFixed(0)} s`;
      if (ph === 'finished' || ph === 'holding') clock += m.manual ? ' · timeline over' : ` · the timeline ended at ${m.duration.toFixed(0)} s`;
      else if (m.manual) clock += projector ? '' : ' · events fired by hand';
      else if (m.duration) clock += ` of ${m.duration.toFixed(0)} s`;
      $('#clock').textContent = clock;
    }
    const phase = st.now ? st.now.phase : '';
    const ph = $('#phase');
    const done = phase === 'finished' || phase === 'holding';
    ph.hidden = !phase || phase === 'running';
    ph.textContent = done ? 'timeline over' : phase === 'waiting' ? (projector ? 'waiting' : 'waiting for Next event') : phase;
    ph.className = 'badge' + (done ? ' done' : '');
    $('#paused').hidden = !(st.now && st.now.paused);

    const banner = $('#banner');
    if (st.failingSince) {
      banner.hidden = false;
      banner.className = 'banner';
      banner.textContent = `runner not answering since ${fmtClock(st.failingSince)} — numbers frozen` +
        (st.answeredAt ? ` (last answer ${fmtClock(st.answeredAt)})` : '');
    } else if (done) {
      banner.hidden = false;
      banner.className = 'banner info';
      banner.textContent = 'The timeline is over: the users stopped, the numbers are final and the report is written. The runner holds the replicas up until Ctrl-C.';
    } else {
      banner.hidden = true;
    }
  }

  function renderControls() {
    const t = st.now;
    const running = !!t && !st.failingSince && !['starting', 'finished', 'holding'].includes(t.phase);
    // The controls act on both sides alike; the first side's count stands for both.
    const n = st.sides.length ? nowReplicas(st.sides[0]).length : 0;
    const off = (id, cond) => { $(id).disabled = !running || !!st.busy || cond; };
    off('#btn-restart', n < 1);
    off('#btn-crash', n < 1);
    off('#btn-scale-up', n >= 16);
    off('#btn-scale-down', n <= 1);
    // Only a side whose sessions live in a service beside the replicas has
    // a store to restart; the button names it.
    const restartable = st.sides.map(storeService).filter(Boolean);
    off('#btn-restart-store', !restartable.length);
    if (restartable.length) $('#btn-restart-store').textContent = '⟲ Restart ' + restartable[0];
    off('#btn-pause', t && t.paused);
    off('#btn-resume', !(t && t.paused));
    off('#btn-client-restart', false);
    // Next event: only in a manual run, and only while an event waits.
    const next = $('#btn-next');
    const m = st.meta;
    next.hidden = !(m && m.manual);
    if (m && m.manual) {
      const pend = m.next;
      next.disabled = !pend || !!st.busy || !!st.failingSince;
      // The projector's is shorter: it stands beside the totals.
      const word = projector ? '▶ Next' : '▶ Next event';
      const text = pend ? `${word}: ${pendingWord(pend)} (${pend.index} of ${pend.of})` : `${word}: none left`;
      if (next.textContent !== text) next.textContent = text;
    }
    const pick = $('#replica-pick');
    if (n > 0 && pick.options.length !== n) {
      const keep = Math.min(+pick.value || 1, n);
      pick.innerHTML = Array.from({ length: n }, (_, i) => `<option value="${i + 1}">${i + 1}</option>`).join('');
      pick.value = String(keep);
    }
  }

  function renderWhat(groups) {
    const box = $('.what-box');
    let html, cls = '';
    if (st.busy) {
      html = esc(st.busy);
      cls = 'pending';
    } else if (st.override && st.override.events === st.events.length) {
      html = esc(st.override.text);
      cls = 'warn';
    } else if (groups.length) {
      html = describeGroup(groups[groups.length - 1]);
    } else {
      html = null;
    }
    if (html != null && $('#what').innerHTML !== html) $('#what').innerHTML = html;
    // The projector gives the line two lines of the screen: a longer one
    // drops its title and steps down to the 18 px floor before it takes a
    // third line from the charts. Measured once per text, at full size.
    if (projector && box.dataset.fitted !== $('#what').innerHTML) {
      box.className = 'what-box';
      box.dataset.fitted = $('#what').innerHTML;
      st.whatTight = box.clientHeight > 2.5 * parseFloat(getComputedStyle(box).lineHeight);
    }
    box.className = 'what-box' + (cls ? ' ' + cls : '') + (projector && st.whatTight ? ' tight' : '');
    const detail = st.runnerMsg && !st.busy ? 'runner: ' + st.runnerMsg : '';
    if ($('#what-detail').textContent !== detail) $('#what-detail').textContent = detail;
  }

  // layout shares the height left on the screen between the plots: what
  // they have now plus the room left under the footer (or minus the
  // overflow). The sessions strips come first, as that is the lesson's
  // picture; then the charts by weight, each between its min and max.
  function layout(x0) {
    const n = Math.max(1, ...st.sides.map((sd) => replicaOrder(sd, x0).length));
    let plots = 0;
    for (const row of shownRows()) {
      const g = cells[0] && cells[0][row.id].querySelector('.plot > svg');
      if (g) plots += g.height.baseVal.value;
    }
    const foot = $('.foot');
    const last = foot.offsetParent ? foot : grid; // the projector view has no footer
    const bottom = last.getBoundingClientRect().bottom + window.scrollY + (projector ? 6 : 16);
    if (projector) {
      // The projector view shares what the screen has left between its
      // three charts alike, the sessions chart's strips at least as tall
      // as their 18 px labels: the screen is filled, and nothing scrolls.
      // At 1280x720 that is at least 120 px a chart, unless what just
      // happened takes a third line (then they give it up to PROJ_FLOOR_H
      // rather than push the last chart off the screen).
      const budget = plots - LANE_H + window.innerHeight - bottom;
      const panel = document.getElementById('class-panel');
      const floor = panel && !panel.hidden ? PROJ_CLASS_FLOOR_H : PROJ_FLOOR_H;
      const each = Math.max(floor, Math.floor(budget / 3));
      st.stripH = Math.max(Math.round(18 * k), Math.floor((each - 4) / n));
      st.h.ok = st.h.loss = Math.max(floor, Math.floor((budget - n * st.stripH - 4) / 2));
      return;
    }
    // Less the events' lane and the strips' padding, which do not grow.
    const budget = plots + window.innerHeight - bottom - LANE_H - 4;
    // A small screen scrolls a little rather than squash the charts flat.
    const shrink = Math.min(1, Math.max(0.7, window.innerHeight / 1000));
    const rows = shownRows().filter((r) => r.w);
    const weights = rows.reduce((a, r) => a + r.w, 0);
    const mins = rows.reduce((a, r) => a + r.min * shrink, 0);
    st.stripH = Math.round(Math.min(40 * k, Math.max(18 * k, (budget - mins * 1.1) / n)));
    const unit = (budget - n * st.stripH) / weights;
    for (const r of rows) st.h[r.id] = Math.round(Math.min(r.max * k, Math.max(r.min * shrink, unit * r.w)));
  }

  function render() {
    const started = performance.now();
    scaleToType();
    renderHeader();
    renderTotals();
    renderControls();
    renderCosts();
    renderCostStrip();
    const groups = groupEvents(st.events);
    renderWhat(groups);

    const [x0] = xDomain();
    layout(x0);
    // Shared scales: one maximum for both sides of each row.
    const yOK = niceMax(maxOf((p) => Math.max(p.ok, st.meta && st.meta.openLoop ? p.offered : 0), x0), 10);
    // Without an enforced limit, every replica's CPU strip has the same
    // scale: the most any replica used in the window.
    st.cpuMax = 0.1;
    for (const pts of st.points) for (const p of visible(pts, x0)) for (const r of p.reps) st.cpuMax = Math.max(st.cpuMax, r.cores || 0);
    st.cpuMax = niceMax(st.cpuMax, 0.1);
    const yLoss = niceMax(Math.max(maxOf((p) => p.sessions, x0), maxOf((p) => p.cart, x0)), 5);
    const yErr = niceMax(maxOf((p) => ERR_KINDS.reduce((a, e) => a + p.err[e.k], 0), x0), 5);
    const latMax = maxOf((p) => p.p99, x0);
    let latMin = Infinity;
    for (const pts of st.points) for (const p of visible(pts, x0)) if (p.p50 != null && p.p50 > 0) latMin = Math.min(latMin, p.p50);
    const yLatMin = Math.pow(10, Math.floor(Math.log10(isFinite(latMin) ? Math.max(latMin, 0.01) : 1)));
    const yLatMax = Math.max(Math.pow(10, Math.ceil(Math.log10(Math.max(latMax, yLatMin * 10)))), yLatMin * 100);
    const yUp = Math.max(4, Math.ceil(maxOf((p) => p.up, x0)));
    let ySess = 0;
    for (const pts of st.points) for (const p of visible(pts, x0)) for (const r of p.reps) ySess = Math.max(ySess, r.s || 0);
    ySess = niceMax(ySess, 10);

    for (const sd of st.sides) {
      const c = cells[sd.i];
      const w = Math.max(280, Math.floor(c.ok.clientWidth));
      drawEvents(sd, c.events, w, groups);
      drawOK(sd, c.ok, w, groups, yOK);
      drawLoss(sd, c.loss, w, groups, yLoss);
      if (!projector) {
        drawErrors(sd, c.errors, w, groups, yErr);
        drawLatency(sd, c.latency, w, groups, yLatMin, yLatMax);
        drawUp(sd, c.up, w, groups, yUp);
      }
      drawSessions(sd, c.sessions, w, groups, ySess);
    }
    // For the browser test: how much the page holds and how long a frame took.
    document.body.dataset.samples = String(st.samples.length);
    document.body.dataset.renderMs = (performance.now() - started).toFixed(1);
  }

  // ---- start -----------------------------------------------------------------

  $('#history-bound').textContent = String(HISTORY_S);
  document.body.classList.toggle('projector', projector);
  document.documentElement.classList.toggle('projector', projector);
  const view = $('#btn-view');
  view.textContent = projector ? '▣ Full view' : '▣ Projector view';
  view.title = projector ? 'every chart and control' : 'fewer, larger charts for the back row: 1280×720 without scrolling';
  view.addEventListener('click', () => {
    const u = new URL(location.href);
    if (projector) u.searchParams.delete('view'); else u.searchParams.set('view', 'projector');
    location.assign(u.toString());
  });
  for (const b of document.querySelectorAll('button[data-action]')) {
    b.addEventListener('click', () => control(b.dataset.action));
  }
  let resizeTimer = 0;
  window.addEventListener('resize', () => { clearTimeout(resizeTimer); resizeTimer = setTimeout(render, 100); });
  render();
  poll();
})();
