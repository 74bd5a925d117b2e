// statelab projector's class panel: in a --class run, the students who
// joined, how many are signed in on each side now, and, at the last event,
// which of them lost their sign-in and their cart, beside what the
// simulated users lost. It draws only what the feed's class field counted
// (each student judged by their own next request), and shows nothing
// without a class. app.js hands it every feed it reads (statelab:feed).
'use strict';

(() => {
  const panel = document.getElementById('class-panel');
  if (!panel) return;
  const MAX_NAMES = 14; // more than fit on a line of the projector: "+N more"
  let drawn = '';

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

  document.addEventListener('statelab:feed', (e) => draw(e.detail));

  function draw(body) {
    const c = body && body.class;
    const key = JSON.stringify(c || null);
    if (key === drawn) return;
    drawn = key;
    if (!c) {
      panel.hidden = true;
      panel.replaceChildren();
      return;
    }
    const order = (body.sides || []).map((s) => s.name).filter((n) => c.sides[n]);
    const ev = c.last_event;
    const words = {};
    for (const k of body.kinds || []) words[k.action] = k.word;

    const join = el('div', { className: 'class-join' });
    if (c.code) {
      join.append(el('img', { src: '/api/class/qr.png', alt: 'QR code of the join address, with the class code', width: 88, height: 88 }));
      join.append(el('div', {},
        el('div', { className: 'class-url', text: (c.join || []).join('  ·  ') }),
        el('div', {}, el('span', { text: 'code ' }), el('b', { className: 'class-code', text: c.code }))));
    }
    join.append(el('div', { className: 'class-count', 'data-students': String(c.students) },
      el('b', { text: String(c.students) }), el('span', { text: ' joined' })));

    const evText = ev ? 'at the ' + (words[ev.kind] || ev.kind) + ' (' + Math.round(ev.at_s) + ' s)' : 'at the last event';
    const head = el('tr', {}, el('th', { scope: 'col', text: 'students' }), el('th', { scope: 'col', text: 'signed in' }),
      el('th', { scope: 'col', text: 'lost their sign-in ' + evText }), el('th', { scope: 'col', text: 'carts lost' }),
      el('th', { scope: 'col', text: 'simulated users since' }));
    const rows = order.map((name) => {
      const sd = c.sides[name];
      const lost = sd.lost_at_last_event || [];
      const names = el('td', { className: 'class-lost', 'data-k': 'lost', 'data-n': String(lost.length) });
      if (!ev) names.append(el('span', { className: 'none', text: 'no event yet' }));
      else if (!lost.length) names.append(el('span', { className: 'none', text: '0 — nobody' }));
      else {
        names.append(el('b', { text: lost.length + ': ' }));
        lost.slice(0, MAX_NAMES).forEach((n, i) => names.append(el('span', { className: 'name', text: n }), i < Math.min(lost.length, MAX_NAMES) - 1 ? ', ' : ''));
        if (lost.length > MAX_NAMES) names.append(el('span', { text: ' +' + (lost.length - MAX_NAMES) + ' more' }));
      }
      if (ev && sd.unheard_at_last_event) names.append(el('span', { className: 'unheard', text: ' (' + sd.unheard_at_last_event + ' not heard from yet)' }));
      const sim = sd.simulated_since_last_event;
      return el('tr', { 'data-side': name },
        el('th', { scope: 'row', text: name }),
        el('td', { 'data-k': 'signed-in', text: String(sd.signed_in) }),
        names,
        el('td', { 'data-k': 'carts', text: ev ? String(sd.carts_lost_at_last_event) : '–' }),
        el('td', { 'data-k': 'simulated', text: sim ? plural(sim.sessions_lost, 'session', 'sessions') + ', ' + plural(sim.cart_items_lost, 'item', 'items') : '–' }));
    });
    const table = el('table', { className: 'class-sides' }, el('thead', {}, head), el('tbody', {}, ...rows));
    panel.replaceChildren(el('h2', { className: 'visually-hidden', text: 'The class' }), join, table);
    panel.hidden = false;
  }
})();
