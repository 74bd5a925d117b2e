// statelab student page: a student joins the class with a name and the
// code on the projector, gets an account of their own, and uses both sides
// of the lab through the runner (/s/{side}/…): sign in, search, cart or
// borrow, their borrows, return. After each event the teacher fires, it
// checks each side with a request of the student's own and says what
// happened to them, from that answer: never from what should have
// happened.
// Plain JavaScript, no libraries; every name and title goes in as text.
'use strict';

(() => {
  const ME_POLL_MS = 2000;
  const STORE_KEY = 'statelab-class';
  const $ = (sel, root = document) => root.querySelector(sel);
  const el = (tag, attrs = {}, ...kids) => {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (k === 'text') e.textContent = v;
      else if (k.startsWith('data-')) e.setAttribute(k, v);
      else e[k] = v;
    }
    for (const k of kids) e.append(k);
    return e;
  };
  const plural = (n, one, many) => n + ' ' + (n === 1 ? one : many);

  // What an event did, in the words of a sentence about a replica.
  const VERB = {
    restart: 'restarted', crash: 'crashed', 'rolling-restart': 'restarted', 'scale-in': 'was removed',
    'scale-out': 'was added', 'restart-store': 'lost its session store',
  };

  const saved = (() => {
    try { return JSON.parse(localStorage.getItem(STORE_KEY) || '{}'); } catch (_) { return {}; }
  })();
  const st = {
    student: saved.student || null, // {student_id, name, email, password}
    sides: [], // in the feed's order: per side, what this page knows
    seenSeq: saved.seenSeq || 0,
    checking: false,
    eventSeq: 0, // the event being checked
    kinds: {},
  };
  const save = () => {
    const sides = {};
    for (const s of st.sides) sides[s.name] = { token: s.token, cart: s.bearer ? s.cart : [] };
    localStorage.setItem(STORE_KEY, JSON.stringify({ student: st.student, seenSeq: st.seenSeq, sides }));
  };

  function banner(text) {
    const b = $('#banner');
    b.textContent = text || '';
    b.hidden = !text;
  }

  // A random Idempotency-Key: crypto.randomUUID needs a secure context,
  // which a LAN address over plain HTTP is not.
  function newKey() {
    const b = new Uint8Array(16);
    crypto.getRandomValues(b);
    return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
  }

  // call sends one request to a side through the runner, with the side's
  // credential, and notes who answered. A 401 to a student who was signed
  // in signs them out on the page: the server no longer knows them.
  async function call(s, method, path, body) {
    const headers = {};
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    if (s.bearer && s.token) headers.Authorization = 'Bearer ' + s.token;
    if (method !== 'GET') headers['Idempotency-Key'] = newKey();
    let res;
    try {
      res = await fetch('/s/' + encodeURIComponent(s.name) + path, {
        method, headers, body: body === undefined ? undefined : JSON.stringify(body), credentials: 'same-origin', cache: 'no-store',
      });
    } catch (err) {
      return { status: 0, ok: false, env: { message: 'no answer from the runner (' + err.message + ')' } };
    }
    let env = {};
    try { env = await res.json(); } catch (_) { /* not JSON: say the status */ }
    const replica = res.headers.get('X-Statelab-Replica') || '';
    if (replica) s.replica = replica;
    if (res.status === 401 && !path.startsWith('/api/auth/')) {
      s.signedIn = false;
      s.token = '';
      if (!s.bearer) s.cart = [];
    }
    return { status: res.status, ok: res.ok, env, replica };
  }

  function say(s, text, bad) {
    const m = $('.msg', s.col);
    m.textContent = text;
    m.classList.toggle('bad', !!bad);
  }
  const failed = (r) => (r.env && r.env.message) || 'the side answered ' + r.status;

  async function signIn(s) {
    const path = s.credential === 'cookie' ? '/api/auth/login' : s.credential === 'jwt' ? '/api/auth/token' : '/api/auth/generate-key';
    const r = await call(s, 'POST', path, { email: st.student.email, password: st.student.password });
    if (!r.ok) return say(s, 'Sign-in refused: ' + failed(r), true);
    const d = r.env.data || {};
    s.token = s.bearer ? d.api_key || d.access_token || '' : '';
    s.signedIn = true;
    if (!s.bearer) {
      s.cart = [];
      s.sessionReplica = r.replica;
      await refreshCart(s);
    }
    say(s, s.bearer ? 'Signed in: your ' + (s.credential === 'jwt' ? 'token' : 'key') + ' is in this page, and goes with every request.'
      : 'Signed in: your session lives on the server (' + r.replica + '); this browser keeps only its cookie.');
    save();
    render();
  }

  async function signOut(s) {
    if (!s.bearer) await call(s, 'POST', '/api/auth/logout');
    s.signedIn = false;
    s.token = '';
    s.cart = [];
    say(s, 'Signed out.');
    save();
    render();
  }

  async function refreshCart(s) {
    if (s.bearer) return;
    const r = await call(s, 'GET', '/api/cart');
    if (r.ok && r.env.data) s.cart = r.env.data.items || [];
    return r;
  }

  async function search(s, q) {
    const r = await call(s, 'GET', '/api/books?limit=5&q=' + encodeURIComponent(q));
    const list = $('.results', s.col);
    list.replaceChildren();
    if (!r.ok) return say(s, 'Search failed: ' + failed(r), true);
    for (const b of r.env.data || []) {
      const add = el('button', { type: 'button', text: '+ cart', className: 'small', 'data-act': 'add' });
      const borrow = el('button', { type: 'button', text: 'borrow', className: 'small', 'data-act': 'borrow' });
      add.addEventListener('click', () => addToCart(s, b));
      borrow.addEventListener('click', () => borrowNow(s, b));
      list.append(el('li', {}, el('span', { className: 'title', text: b.title + ' — ' + b.author }), add, borrow));
    }
    say(s, (r.env.data || []).length + ' books found, answered by ' + r.replica + '.');
    render();
  }

  async function addToCart(s, b) {
    if (s.bearer) {
      // A bearer-token side keeps no cart: the client does, here.
      if (!s.cart.some((x) => x.book_id === b.id)) s.cart.push({ book_id: b.id, title: b.title });
      say(s, 'Added to the cart this page keeps: the server holds nothing of it.');
      save();
      return render();
    }
    const r = await call(s, 'POST', '/api/cart/items', { book_id: b.id });
    if (!r.ok) return say(s, 'Not added: ' + failed(r), true);
    s.cart = r.env.data.items || [];
    say(s, 'Added to your cart, which lives in your session on ' + r.replica + '.');
    render();
  }

  async function borrowNow(s, b) {
    const r = await call(s, 'POST', '/api/books/' + b.id + '/borrow');
    say(s, r.ok ? 'Borrowed “' + b.title + '”.' : 'Not borrowed: ' + failed(r), !r.ok);
    render();
  }

  async function checkout(s) {
    if (!s.cart.length) return say(s, 'The cart is empty.');
    const r = s.bearer ? await call(s, 'POST', '/api/borrows', { book_ids: s.cart.map((x) => x.book_id) }) : await call(s, 'POST', '/api/cart/checkout');
    if (!r.ok) return say(s, 'Not borrowed: ' + failed(r), true);
    s.cart = [];
    save();
    say(s, 'Borrowed everything in the cart.');
    await borrows(s);
  }

  async function borrows(s) {
    const r = await call(s, 'GET', '/api/borrows?limit=20');
    const list = $('.borrows', s.col);
    list.replaceChildren();
    if (!r.ok) { say(s, 'Your borrows: ' + failed(r), true); return render(); }
    const out = (r.env.data || []).filter((x) => !x.returned);
    for (const b of out) {
      const ret = el('button', { type: 'button', text: 'return', className: 'small', 'data-act': 'return' });
      ret.addEventListener('click', async () => {
        const rr = await call(s, 'POST', '/api/borrows/' + b.id + '/return');
        say(s, rr.ok ? 'Returned “' + b.book_title + '”.' : 'Not returned: ' + failed(rr), !rr.ok);
        await borrows(s);
      });
      list.append(el('li', { 'data-borrow': String(b.id) }, el('span', { className: 'title', text: b.book_title }), ret));
    }
    say(s, plural(out.length, 'book', 'books') + ' out, answered by ' + r.replica + '.');
    render();
  }

  // ---- after an event ------------------------------------------------------

  // check asks a side, with a request of the student's own, whether it still
  // knows them, and says what the event did to them from the answer.
  async function check(s, ev) {
    const touched = (ev.replicas && ev.replicas[s.name]) || [];
    const verb = VERB[ev.kind] || (st.kinds[ev.kind] || ev.kind);
    const cartBefore = s.cart.length;
    const where = s.bearer ? '' : s.sessionReplica || s.replica;
    if (!s.signedIn) {
      return verdict(s, 'idle', 'You were not signed in here, so there was nothing of yours to lose. Sign in, and watch the next event.');
    }
    const r = s.bearer ? await call(s, 'GET', '/api/me') : await call(s, 'GET', '/api/cart');
    if (r.status === 401) {
      if (s.bearer) return verdict(s, 'lost', 'Your ' + (s.credential === 'jwt' ? 'token' : 'key') + ' was refused by ' + (r.replica || 'the side') + ' (' + (r.env.code || 401) + '): sign in again.');
      const cart = cartBefore ? ' and your cart (' + plural(cartBefore, 'book', 'books') + ') is gone' : ' (your cart was empty)';
      if (where && touched.includes(where)) {
        return verdict(s, 'lost', 'Your session was on ' + where + ', which ' + verb + ': you must sign in again' + cart + '.');
      }
      return verdict(s, 'lost', 'Your session was on ' + (where || 'a replica') + '; ' + (r.replica || 'the replica') + ' answered and does not hold it: you must sign in again' + cart + '.');
    }
    if (!r.ok) {
      verdict(s, 'unknown', 'The side did not answer (' + failed(r) + '); checking again…');
      return false;
    }
    const what = (ev.kind === 'restart' || ev.kind === 'crash' || ev.kind === 'scale-in') && touched.length
      ? touched.join(', ') + ' ' + verb + ', and ' : '';
    if (s.bearer) {
      return verdict(s, 'kept', what + 'nothing happened to your ' + (s.credential === 'jwt' ? 'token' : 'key') + ': ' +
        (s.credential === 'jwt' ? 'any replica checks its signature' : 'any replica checks it against the shared database') + '; ' + r.replica + ' just did.');
    }
    // Where the session lives, from what its store says of itself.
    const home = !s.store || !s.store.shared ? 'your session is on ' + r.replica + ', which kept it'
      : s.store.services.length ? 'your session lives in ' + s.store.name + ', which every replica reads' : 'your session lives in your own cookie';
    return verdict(s, 'kept', what + 'nothing happened to your session: ' + home + '; your cart still holds ' + plural(s.cart.length, 'book', 'books') + '.');
  }

  function verdict(s, kind, text) {
    const v = s.verdictEl;
    v.dataset.verdict = kind;
    $('.said', v).textContent = text;
    v.hidden = false;
    if (kind !== 'unknown') s.judgedSeq = st.eventSeq;
    save();
    render();
    return kind !== 'unknown';
  }

  async function onEvent(ev) {
    if (st.checking) return;
    st.checking = true;
    const word = (st.kinds[ev.kind] || ev.kind);
    $('#event-title').textContent = 'Event ' + ev.seq + ': ' + word + ' at ' + Math.round(ev.at_s) + ' s';
    $('#event-note').textContent = 'Checking each side with a request of yours…';
    st.eventSeq = ev.seq;
    for (const s of st.sides) {
      if (s.judgedSeq === ev.seq) continue;
      s.verdictEl.dataset.verdict = 'checking';
      $('.said', s.verdictEl).textContent = 'checking…';
      s.verdictEl.hidden = false;
    }
    let all = true;
    for (const s of st.sides) {
      if (s.judgedSeq !== ev.seq) all = (await check(s, ev)) && all;
    }
    $('#event-note').textContent = 'What happened to you, from your own request to each side just now:';
    if (all) {
      st.seenSeq = ev.seq;
      save();
    }
    st.checking = false;
  }

  async function pollMe() {
    try {
      const res = await fetch('/api/class/me', { cache: 'no-store', credentials: 'same-origin' });
      if (res.status === 401) {
        // A new run, or the class cookie is gone: join again.
        st.student = null;
        save();
        return showJoin('This browser is not in the class of the runner now running: join again.');
      }
      const env = await res.json();
      banner('');
      const ev = env.data && env.data.last_event;
      if (ev && ev.done && ev.seq > st.seenSeq) await onEvent(ev);
    } catch (err) {
      banner('The runner does not answer (' + err.message + '); retrying…');
    }
    setTimeout(pollMe, ME_POLL_MS);
  }

  // ---- drawing -------------------------------------------------------------

  function buildSides() {
    const box = $('#sides');
    box.replaceChildren();
    $('#verdicts').replaceChildren();
    for (const s of st.sides) {
      s.verdictEl = el('li', { className: 'verdict', 'data-side': s.name, hidden: true }, el('b', { text: s.name + ': ' }), el('span', { className: 'said' }));
      $('#verdicts').append(s.verdictEl);
      const col = el('section', { className: 'side', 'data-side': s.name },
        el('h2', {}, el('span', { text: s.name }), el('small', { text: s.where })),
        el('p', { className: 'status', 'data-k': 'status' }),
        el('div', { className: 'row' },
          el('button', { type: 'button', text: 'Sign in', 'data-act': 'signin' }),
          el('button', { type: 'button', text: 'Sign out', 'data-act': 'signout', className: 'quiet' })),
        el('form', { className: 'search' },
          el('input', { type: 'search', placeholder: 'search the catalogue', 'aria-label': 'search ' + s.name, value: 'the' }),
          el('button', { type: 'submit', text: 'Search' })),
        el('ul', { className: 'results' }),
        el('div', { className: 'cartbox' },
          el('h3', { 'data-k': 'cart-title' }),
          el('ul', { className: 'cart' }),
          el('button', { type: 'button', text: 'Borrow the cart', 'data-act': 'checkout' })),
        el('div', { className: 'row' }, el('button', { type: 'button', text: 'My borrows', 'data-act': 'borrows', className: 'quiet' })),
        el('ul', { className: 'borrows' }),
        el('p', { className: 'msg', 'aria-live': 'polite' }));
      s.col = col;
      $('[data-act="signin"]', col).addEventListener('click', () => signIn(s));
      $('[data-act="signout"]', col).addEventListener('click', () => signOut(s));
      $('[data-act="checkout"]', col).addEventListener('click', () => checkout(s));
      $('[data-act="borrows"]', col).addEventListener('click', () => borrows(s));
      $('form.search', col).addEventListener('submit', (e) => { e.preventDefault(); search(s, $('input', e.target).value); });
      box.append(col);
    }
  }

  function render() {
    $('#who').textContent = st.student ? st.student.name : '';
    for (const s of st.sides) {
      if (!s.col) continue;
      const line = $('.status', s.col);
      line.dataset.signedIn = String(s.signedIn);
      line.dataset.replica = s.replica;
      line.textContent = (s.signedIn ? '● signed in' : '○ not signed in') + (s.replica ? ' · last answer from ' + s.replica : '');
      line.classList.toggle('in', s.signedIn);
      $('[data-k="cart-title"]', s.col).textContent = 'Cart: ' + plural(s.cart.length, 'book', 'books') + (s.bearer ? ' (kept by this page)' : ' (kept in your session)');
      $('.cart', s.col).replaceChildren(...s.cart.map((x) => el('li', { text: x.title })));
      $('[data-act="signin"]', s.col).disabled = s.signedIn;
      $('[data-act="signout"]', s.col).disabled = !s.signedIn;
    }
    document.body.dataset.joined = String(!!st.student);
  }

  function showJoin(msg) {
    $('#lab').hidden = true;
    $('#join').hidden = false;
    $('#join-error').textContent = msg || '';
    const code = new URLSearchParams(location.search).get('code');
    if (code && !$('#code').value) $('#code').value = code;
    (code ? $('#name') : $('#code')).focus();
  }

  async function start() {
    let feed;
    try {
      const res = await fetch('/api/feed', { cache: 'no-store' });
      feed = await res.json();
    } catch (err) {
      banner('The runner does not answer (' + err.message + '): is the lab still running?');
      setTimeout(start, 3000);
      return;
    }
    for (const k of feed.kinds || []) st.kinds[k.action] = k.word;
    const keep = saved.sides || {};
    st.sides = (feed.sides || []).map((d) => ({
      name: d.name, credential: d.credential, sessions: d.sessions, store: d.store, where: d.where, bearer: d.credential !== 'cookie',
      signedIn: false, token: (keep[d.name] || {}).token || '', replica: '', sessionReplica: '', cart: (keep[d.name] || {}).cart || [], col: null,
    }));
    if (!feed.class) {
      banner('This run has no class: the teacher starts it with statelab compare --class.');
      return;
    }
    if (!st.student) return showJoin();
    await enter();
  }

  // enter shows the lab for a student who has joined, with what the runner
  // knows of them on each side.
  async function enter() {
    const res = await fetch('/api/class/me', { cache: 'no-store', credentials: 'same-origin' });
    if (!res.ok) {
      st.student = null;
      save();
      return showJoin('Join again: this browser is not in the class of the runner now running.');
    }
    const me = (await res.json()).data;
    for (const s of st.sides) {
      const m = me.sides[s.name] || {};
      s.signedIn = !!m.signed_in && (!s.bearer || !!s.token);
      s.replica = m.replica || '';
      s.sessionReplica = s.bearer ? '' : s.replica;
    }
    $('#join').hidden = true;
    $('#lab').hidden = false;
    buildSides();
    for (const s of st.sides) if (!s.bearer && s.signedIn) await refreshCart(s);
    if (me.last_event && st.seenSeq === 0) st.seenSeq = me.last_event.seq; // events before joining are not ours
    render();
    pollMe();
  }

  $('#join-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const btn = $('#join-btn');
    btn.disabled = true;
    try {
      const res = await fetch('/api/class/join', {
        method: 'POST', headers: { 'Content-Type': 'application/json' }, credentials: 'same-origin',
        body: JSON.stringify({ code: $('#code').value, name: $('#name').value }),
      });
      const env = await res.json().catch(() => ({}));
      if (res.status !== 201) {
        $('#join-error').textContent = env.message || 'The runner answered ' + res.status;
        return;
      }
      st.student = env.data;
      for (const s of st.sides) { s.token = ''; s.cart = []; }
      save();
      await enter();
    } catch (err) {
      $('#join-error').textContent = 'The runner does not answer (' + err.message + ').';
    } finally {
      btn.disabled = false;
    }
  });

  start();
})();
