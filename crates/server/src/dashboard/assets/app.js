'use strict';
// The dashboard's pages. Every value from the server (app names, config names, log lines) is
// hostile input: elements are built with createElement and filled with textContent only.
(() => {
  const $ = (id) => document.getElementById(id);
  let session = null;

  // ---- building the page ------------------------------------------------------------------

  function el(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === 'class') e.className = v;
      else if (k === 'text') e.textContent = String(v);
      else if (k === 'onclick') e.addEventListener('click', v);
      else if (k === 'onsubmit') e.addEventListener('submit', v);
      else if (k === 'onchange') e.addEventListener('change', v);
      else e.setAttribute(k, v === true ? '' : String(v));
    }
    for (const kid of kids.flat()) {
      if (kid === null || kid === undefined || kid === false) continue;
      e.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
    }
    return e;
  }

  const appPath = (app, rest) => `/apps/${encodeURIComponent(app)}${rest || ''}`;
  const apiPath = (app, rest) => `/v1/apps/${encodeURIComponent(app)}${rest || ''}`;

  function section(id, title, ...kids) {
    return el('section', { id, 'aria-labelledby': `${id}-title` },
      el('h2', { id: `${id}-title`, text: title }), ...kids);
  }

  function table(headers, rows, label) {
    return el('div', { class: 'scroll', role: 'region', 'aria-label': label, tabindex: '0' },
      el('table', {},
        el('thead', {}, el('tr', {}, headers.map((h) => el('th', { scope: 'col', text: h })))),
        el('tbody', {}, rows)));
  }

  function badge(state) {
    return el('span', { class: `badge state-${state}`, text: state });
  }

  function toast(text, isError) {
    const t = $('toast');
    t.textContent = text;
    t.className = isError ? 'toast error' : 'toast';
    t.hidden = false;
    clearTimeout(toast.timer);
    toast.timer = setTimeout(() => { t.hidden = true; }, 6000);
  }

  function duration(seconds) {
    const s = Number(seconds) || 0;
    if (s < 60) return `${s}s`;
    if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
    if (s < 86400) return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
    return `${Math.floor(s / 86400)}d ${Math.floor((s % 86400) / 3600)}h`;
  }

  function when(ts) {
    if (!ts) return '';
    const d = new Date(ts);
    return Number.isNaN(d.getTime()) ? String(ts) : d.toLocaleString();
  }

  function bytes(n) {
    if (n === null || n === undefined) return '–';
    const mb = n / (1024 * 1024);
    return mb >= 1024 ? `${(mb / 1024).toFixed(1)} GB` : `${mb.toFixed(0)} MB`;
  }

  function formationText(formation) {
    const parts = Object.entries(formation || {}).map(([t, n]) => `${t}=${n}`);
    return parts.length ? parts.join(' ') : '–';
  }

  // How many of each process type run: the formation's number, or (for a type it does not
  // name yet) the processes there are.
  function effectiveFormation(info) {
    const out = {};
    const types = Object.keys(info.process_types || {}).filter((t) => t !== 'release');
    for (const t of types) {
      const set = info.formation && Object.prototype.hasOwnProperty.call(info.formation, t);
      out[t] = set ? info.formation[t] : (info.processes || []).filter((p) => p.type === t).length;
    }
    for (const [t, n] of Object.entries(info.formation || {})) if (!(t in out)) out[t] = n;
    return out;
  }

  // Replace `node`'s children with `build()` only when `data` changed, so that focus and
  // scroll survive the refreshes of a page that nothing changed on.
  function renderIfChanged(node, data, build) {
    const key = JSON.stringify(data);
    if (node.dataset.key === key) return;
    node.dataset.key = key;
    const hadFocus = node.contains(document.activeElement) ? document.activeElement.id : null;
    node.replaceChildren(...[build()].flat());
    if (hadFocus && $(hadFocus)) $(hadFocus).focus();
  }

  // Run `step` now and again `ms` after each run ends (never two at once).
  function every(ms, step) {
    const run = async () => {
      try { await step(); } catch (e) { if (e.status !== 401) toast(e.message, true); }
      setTimeout(run, ms);
    };
    run();
  }

  function crumbs(...links) {
    const nav = $('crumbs');
    nav.replaceChildren(...links.map(([text, href]) =>
      href ? el('a', { href, text }) : el('span', { 'aria-current': 'page', text })));
  }

  // ---- the API --------------------------------------------------------------------------

  class HttpError extends Error {
    constructor(status, message) { super(message); this.status = status; }
  }

  async function api(method, path, body) {
    const headers = { 'Accept': 'application/json' };
    if (method !== 'GET' && method !== 'HEAD') headers['X-Dozen-CSRF'] = session ? session.csrf : '';
    let payload;
    if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      payload = JSON.stringify(body);
    }
    const r = await fetch(path, { method, headers, body: payload, credentials: 'same-origin', cache: 'no-store' });
    if (r.status === 401) {
      location.assign('/login');
      throw new HttpError(401, 'not logged in');
    }
    const text = await r.text();
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch (_) { data = null; }
    if (!r.ok) {
      const message = (data && data.error && data.error.message) || `${r.status} ${r.statusText}`;
      throw new HttpError(r.status, message);
    }
    return data;
  }

  // Whether this session's token may change `app` (the server checks again).
  const canChange = (app) => session.scope === 'admin' || (session.scope === 'deploy' && session.app === app);

  function confirmDialog(title, text, action) {
    const dialog = $('confirm');
    $('confirm-title').textContent = title;
    $('confirm-text').textContent = text;
    $('confirm-ok').textContent = action;
    return new Promise((resolve) => {
      dialog.addEventListener('close', () => resolve(dialog.returnValue === 'ok'), { once: true });
      dialog.returnValue = 'cancel';
      dialog.showModal();
      $('confirm-cancel').focus();
    });
  }

  // ---- what an app looks like -------------------------------------------------------------

  async function appOverview(name) {
    const [info, releases, builds, domains] = await Promise.all([
      api('GET', apiPath(name)),
      api('GET', apiPath(name, '/releases')),
      api('GET', apiPath(name, '/builds')),
      api('GET', apiPath(name, '/domains')),
    ]);
    return { info, releases, builds, domains };
  }

  function appState({ info, releases, builds }) {
    if (builds.length && builds[0].status === 'pending') return 'deploying';
    if (releases.some((r) => r.status === 'pending')) return 'deploying';
    const ps = info.processes || [];
    if (ps.some((p) => p.state === 'crashed')) return 'crashed';
    if (ps.some((p) => p.state === 'starting' || p.state === 'restarting' || p.state === 'stopping')) return 'starting';
    if (!ps.length) return info.current_release ? 'idle' : 'new';
    return 'up';
  }

  function webUrl(domains) {
    if (!domains || !domains.default) return null;
    return `http://${domains.default}`;
  }

  function lastDeploy(builds) {
    const done = builds.find((b) => b.status === 'succeeded');
    return done ? when(done.finished_at || done.created_at) : 'never';
  }

  // ---- the apps list ------------------------------------------------------------------------

  function appsPage() {
    document.title = 'Apps · dozen';
    crumbs(['Apps']);
    const body = el('div', { id: 'apps-body' }, el('p', { class: 'muted', text: 'Loading…' }));
    $('main').replaceChildren(el('h1', { text: 'Apps' }), body);
    every(2000, async () => {
      const apps = await api('GET', '/v1/apps');
      const rows = await Promise.all(apps.map(async (a) => {
        try {
          const o = await appOverview(a.name);
          return {
            name: a.name,
            state: appState(o),
            release: o.info.current_release,
            url: webUrl(o.domains),
            formation: formationText(effectiveFormation(o.info)),
            last: lastDeploy(o.builds),
          };
        } catch (e) {
          return { name: a.name, state: 'unknown', release: a.current_release, url: null, formation: '–', last: e.message };
        }
      }));
      renderIfChanged(body, rows, () => {
        if (!rows.length) return el('p', { class: 'muted', text: 'No apps yet: dozen apps:create NAME, then dozen deploy.' });
        return table(['App', 'State', 'Live release', 'Web', 'Formation', 'Last deploy'], rows.map((r) =>
          el('tr', { 'data-app': r.name },
            el('td', {}, el('a', { href: appPath(r.name), class: 'app-link', text: r.name })),
            el('td', {}, badge(r.state)),
            el('td', { class: 'release', text: r.release ? `v${r.release}` : '–' }),
            el('td', {}, r.url ? el('a', { href: r.url, rel: 'noopener noreferrer', text: r.url }) : '–'),
            el('td', { class: 'formation', text: r.formation }),
            el('td', { class: 'when', text: r.last }))), 'Apps');
      });
    });
  }

  // ---- one app ------------------------------------------------------------------------------

  function processRows(processes) {
    return processes.map((p) => el('tr', { 'data-process': p.name },
      el('td', { class: 'mono', text: p.name }),
      el('td', {}, badge(p.state)),
      el('td', { class: 'mono', text: p.port }),
      el('td', { text: `v${p.release}` }),
      el('td', { text: duration(p.for_seconds) }),
      el('td', { text: p.restarts }),
      el('td', { text: p.memory === null || p.memory === undefined ? '–' : `${bytes(p.memory)} of ${bytes(p.memory_limit)}` }),
      el('td', { text: p.cpu_percent === null || p.cpu_percent === undefined ? '–' : `${p.cpu_percent.toFixed(1)}%` })));
  }

  function processTable(processes) {
    if (!processes.length) return el('p', { class: 'muted', text: 'No processes run.' });
    return table(['Process', 'State', 'Port', 'Release', 'For', 'Restarts', 'Memory', 'CPU'], processRows(processes), 'Processes');
  }

  function scaleForm(app, info) {
    const formation = effectiveFormation(info);
    const types = Object.keys(formation);
    if (!types.length) return el('p', { class: 'muted', text: 'Deploy a Procfile to scale its process types.' });
    const inputs = types.map((t) => el('input', {
      id: `scale-${t}`, name: t, type: 'number', min: '0', max: '100', inputmode: 'numeric',
      value: formation[t],
    }));
    const form = el('form', { id: 'scale-form', class: 'scale' },
      types.map((t, i) => el('div', { class: 'field' },
        el('label', { for: `scale-${t}`, text: t }), inputs[i])),
      el('button', { type: 'submit', id: 'scale-submit', 'data-changes': '', text: 'Scale' }));
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      // Only the types whose number changed: the others keep what they run.
      const want = {};
      for (const input of inputs) {
        if (Number(input.value) !== formation[input.name]) want[input.name] = Number(input.value);
      }
      if (!Object.keys(want).length) {
        toast('Nothing to change.');
        return;
      }
      try {
        const f = await api('PATCH', apiPath(app, '/formation'), want);
        toast(`Scaled ${app}: ${formationText(f)}`);
      } catch (e) {
        toast(`Scaling failed: ${e.message}`, true);
      }
    });
    return form;
  }

  function releaseRows(app, releases, mayChange) {
    return releases.map((r) => {
      let action = '';
      if (r.current) action = el('span', { class: 'badge state-up', text: 'live' });
      else if (mayChange && r.status === 'succeeded' && r.slug) {
        action = el('button', {
          type: 'button', class: 'rollback', 'data-changes': '', 'data-version': `v${r.version}`,
          'aria-label': `Roll back to v${r.version}`, text: 'Roll back',
          onclick: async () => {
            const ok = await confirmDialog(`Roll back ${app} to v${r.version}?`,
              `A new release is made from v${r.version}'s slug and config, and rolled out.`, 'Roll back');
            if (!ok) return;
            try {
              const made = await api('POST', apiPath(app, '/rollback'), { version: `v${r.version}` });
              toast(`v${made.version} made from v${r.version}; rolling out`);
            } catch (e) {
              toast(`Rollback failed: ${e.message}`, true);
            }
          },
        });
      }
      return el('tr', { 'data-release': `v${r.version}` },
        el('td', { text: `v${r.version}` }),
        el('td', {}, badge(r.status)),
        el('td', { class: 'description' }, r.description,
          r.failure_reason ? el('div', { class: 'error', text: r.failure_reason }) : null),
        // The API token that made it, or dozen; unknown for releases older than the record.
        el('td', { class: 'by', text: r.created_by || '-' }),
        el('td', { class: 'when', text: when(r.created_at) }),
        el('td', {}, action));
    });
  }

  function configList(app, keys, mayReveal) {
    if (!keys.length) return el('p', { class: 'muted', text: 'No config vars.' });
    return el('ul', { class: 'config' }, keys.map((k, i) => {
      const value = el('code', { class: 'value', hidden: true });
      const reveal = mayReveal ? el('button', {
        type: 'button', class: 'quiet reveal', id: `reveal-${i}`, 'aria-expanded': 'false',
        'aria-label': `Reveal ${k}`, text: 'Reveal',
        onclick: async (ev) => {
          const button = ev.currentTarget;
          if (!value.hidden) {
            value.hidden = true;
            value.textContent = '';
            button.textContent = 'Reveal';
            button.setAttribute('aria-expanded', 'false');
            return;
          }
          try {
            const config = await api('GET', apiPath(app, '/config'));
            value.textContent = Object.prototype.hasOwnProperty.call(config, k) ? config[k] : '(unset)';
            value.hidden = false;
            button.textContent = 'Hide';
            button.setAttribute('aria-expanded', 'true');
          } catch (e) {
            toast(`Could not read ${k}: ${e.message}`, true);
          }
        },
      }) : null;
      return el('li', {}, el('code', { class: 'key', text: k }), reveal, value);
    }));
  }

  function domainList(domains) {
    const all = [];
    if (domains.default) all.push([domains.default, 'default']);
    for (const d of domains.custom || []) all.push([d, 'custom']);
    if (!all.length) return el('p', { class: 'muted', text: 'No domains.' });
    return el('ul', {}, all.map(([d, kind]) => el('li', {},
      el('a', { href: `http://${d}`, rel: 'noopener noreferrer', text: d }), ' ', el('span', { class: 'muted', text: `(${kind})` }))));
  }

  // The add-ons the app owns or is attached to: the service, its plan, and the config var
  // each app reads its URL from (the URL itself is a config value: never shown here).
  function addonTable(app, addons) {
    if (!addons.length) return el('p', { class: 'muted', text: `No add-ons: dozen addons:create SERVICE -a ${app}.` });
    return table(['Add-on', 'Service', 'Plan', 'Owner', 'Attached as', 'Since'], addons.map((a) => el('tr', { 'data-addon': a.name },
      el('td', { class: 'mono', text: a.name }),
      el('td', { text: a.service }),
      el('td', { text: a.plan }),
      el('td', { text: a.app }),
      el('td', {}, (a.attachments || []).map((t) => el('div', {},
        el('code', { text: t.var }), t.app === app ? '' : el('span', { class: 'muted', text: ` on ${t.app}` })))),
      el('td', { class: 'when', text: when(a.created_at) }))), 'Add-ons');
  }

  // The app's log drains as the server counts them; the URL comes with its password (and
  // query) already hidden by the server.
  function drainTable(app, drains) {
    if (!drains.length) return el('p', { class: 'muted', text: `No drains: dozen drains:add URL -a ${app}.` });
    return table(['Drain', 'URL', 'State', 'Delivered', 'Queued', 'Dropped', 'Since'], drains.map((d) => el('tr', { 'data-drain': d.id },
      el('td', { class: 'mono', text: d.id }),
      el('td', { class: 'mono', text: d.url }),
      el('td', { title: d.error || '' }, badge(d.state)),
      el('td', { text: d.delivered }),
      el('td', { text: d.queued }),
      el('td', { text: d.dropped }),
      el('td', { class: 'when', text: when(d.created_at) }))), 'Drains');
  }

  function appPage(app) {
    document.title = `${app} · dozen`;
    crumbs(['Apps', '/'], [app]);
    const mayChange = canChange(app);
    const state = el('span', { id: 'app-state' });
    const head = el('div', { class: 'app-head' },
      el('h1', {}, el('span', { class: 'app-name', text: app }), ' ', state),
      el('nav', { class: 'tabs', 'aria-label': 'App pages' },
        el('a', { href: appPath(app, '/logs'), text: 'Logs' }),
        el('a', { href: appPath(app, '/deploy'), text: 'Deploys' }),
        el('span', { id: 'web-link' })));
    const ps = el('div', { id: 'processes-body' });
    const scale = el('div', { id: 'scale-body' });
    const releases = el('div', { id: 'releases-body' });
    const config = el('div', { id: 'config-body' });
    const domains = el('div', { id: 'domains-body' });
    const addons = el('div', { id: 'addons-body' });
    const drains = el('div', { id: 'drains-body' });
    const parts = [head, section('processes', 'Processes', ps)];
    if (mayChange) parts.push(section('scale', 'Scale', scale));
    parts.push(
      section('releases', 'Releases', releases),
      section('config', 'Config vars', el('p', { class: 'muted', text: mayChange
        ? 'Names only; a value is shown when you reveal it.'
        : 'Names only: this token may not read values.' }), config),
      section('domains', 'Domains', domains),
      section('addons', 'Add-ons', addons),
      section('drains', 'Log drains', drains));
    $('main').replaceChildren(...parts);
    every(2000, async () => {
      const o = await appOverview(app);
      renderIfChanged(state, appState(o), () => badge(appState(o)));
      const url = webUrl(o.domains);
      renderIfChanged($('web-link'), url, () => (url ? el('a', { href: url, rel: 'noopener noreferrer', text: url }) : []));
      ps.replaceChildren(processTable(o.info.processes || []));
      if (mayChange) {
        const shape = effectiveFormation(o.info);
        const editing = scale.contains(document.activeElement) && document.activeElement.tagName === 'INPUT';
        if (!editing) renderIfChanged(scale, shape, () => scaleForm(app, o.info));
      }
      renderIfChanged(releases, o.releases, () => (o.releases.length
        ? table(['Release', 'Status', 'What changed', 'By', 'When', ''], releaseRows(app, o.releases, mayChange), 'Releases')
        : el('p', { class: 'muted', text: 'No releases yet.' })));
      const live = o.releases.find((r) => r.current) || o.releases[0];
      const keys = live ? live.config_keys : [];
      renderIfChanged(config, keys, () => configList(app, keys, mayChange));
      renderIfChanged(domains, o.domains, () => domainList(o.domains));
      const attached = await api('GET', apiPath(app, '/addons'));
      renderIfChanged(addons, attached, () => addonTable(app, attached));
      const sinks = await api('GET', apiPath(app, '/drains'));
      renderIfChanged(drains, sinks, () => drainTable(app, sinks));
    });
  }

  // ---- live logs ----------------------------------------------------------------------------

  const MAX_SHOWN = 2000;
  const MAX_HELD = 5000;

  // A live view of the app's log stream into `list`; `params` picks what the server sends.
  function follow(app, list, statusNode, params) {
    let source = null;
    let paused = false;
    let held = [];
    let dropped = 0;
    let retry = null;

    const status = (text, cls) => { statusNode.textContent = text; statusNode.className = `live ${cls || ''}`; };

    function lineNode(e) {
      const proc = e.proc || '';
      const kind = proc === 'dozen' ? 'platform' : (proc === 'build' ? 'build' : 'app');
      return el('li', { class: `entry ${kind} ${e.stream === 'stderr' ? 'stderr' : ''}` },
        el('time', { datetime: e.ts || '', text: e.ts ? new Date(e.ts).toLocaleTimeString() : '' }),
        el('span', { class: 'proc', text: proc }),
        el('span', { class: 'line', text: e.line === undefined ? '' : String(e.line) }));
    }

    function show(entries) {
      const atBottom = list.scrollTop + list.clientHeight >= list.scrollHeight - 4;
      const frag = document.createDocumentFragment();
      for (const e of entries) frag.append(lineNode(e));
      list.append(frag);
      while (list.childElementCount > MAX_SHOWN) list.firstElementChild.remove();
      if (atBottom) list.scrollTop = list.scrollHeight;
    }

    function connect() {
      clearTimeout(retry);
      if (source) source.close();
      const q = new URLSearchParams();
      for (const [k, v] of Object.entries(params())) if (v) q.set(k, v);
      source = new EventSource(`/dashboard/apps/${encodeURIComponent(app)}/logs?${q}`);
      status('connecting…', 'connecting');
      source.addEventListener('open', () => {
        // The server starts every stream with the recent lines: show them afresh.
        list.replaceChildren();
        held = [];
        status(paused ? 'paused' : 'live', paused ? 'paused' : 'on');
      });
      source.addEventListener('message', (ev) => {
        let e;
        try { e = JSON.parse(ev.data); } catch (_) { e = { proc: '?', line: ev.data }; }
        if (paused) {
          held.push(e);
          if (held.length > MAX_HELD) { held.shift(); dropped += 1; }
          status(`paused (${held.length} new)`, 'paused');
        } else {
          show([e]);
        }
      });
      source.addEventListener('error', async () => {
        if (source.readyState === EventSource.CONNECTING) {
          status('reconnecting…', 'connecting');
          return;
        }
        // Closed: refused (the session ended, or the app is gone), or the server is down.
        source.close();
        status('disconnected; retrying…', 'off');
        try {
          const r = await fetch('/dashboard/session', { credentials: 'same-origin', cache: 'no-store' });
          if (r.status === 401) {
            statusNode.replaceChildren('Your session ended. ', el('a', { href: '/login', text: 'Log in again' }));
            statusNode.className = 'live off';
            return;
          }
        } catch (_) { /* the server is down: retry below */ }
        retry = setTimeout(connect, 2000);
      });
    }

    return {
      connect,
      pause() {
        paused = !paused;
        if (!paused) {
          show(held);
          if (dropped) show([{ proc: 'dozen', line: `${dropped} lines were not kept while paused` }]);
          held = [];
          dropped = 0;
        }
        status(paused ? 'paused' : 'live', paused ? 'paused' : 'on');
        return paused;
      },
    };
  }

  function logsPage(app) {
    document.title = `Logs of ${app} · dozen`;
    crumbs(['Apps', '/'], [app, appPath(app)], ['Logs']);
    const ps = el('select', { id: 'log-ps', name: 'ps' }, el('option', { value: '', text: 'every process' }));
    const source = el('select', { id: 'log-source', name: 'source' },
      el('option', { value: '', text: 'app and platform' }),
      el('option', { value: 'app', text: 'app output only' }),
      el('option', { value: 'dozen', text: 'platform events only' }));
    const pause = el('button', { type: 'button', id: 'log-pause', 'aria-pressed': 'false', text: 'Pause' });
    const clear = el('button', { type: 'button', id: 'log-clear', class: 'quiet', text: 'Clear' });
    const statusNode = el('span', { id: 'log-status', class: 'live', role: 'status' });
    const list = el('ol', { id: 'log-lines', class: 'log', tabindex: '0', 'aria-label': `Log of ${app}` });
    $('main').replaceChildren(
      el('h1', {}, 'Logs of ', el('span', { class: 'app-name', text: app })),
      el('div', { class: 'controls' },
        el('label', { for: 'log-ps', text: 'Process' }), ps,
        el('label', { for: 'log-source', text: 'Source' }), source,
        pause, clear, statusNode),
      list);
    const stream = follow(app, list, statusNode, () => ({ ps: ps.value, source: source.value }));
    ps.addEventListener('change', () => stream.connect());
    source.addEventListener('change', () => stream.connect());
    pause.addEventListener('click', () => {
      const paused = stream.pause();
      pause.textContent = paused ? 'Resume' : 'Pause';
      pause.setAttribute('aria-pressed', String(paused));
    });
    clear.addEventListener('click', () => list.replaceChildren());
    stream.connect();
    // The process filter offers the app's types and processes as they come and go.
    every(5000, async () => {
      const info = await api('GET', apiPath(app));
      const names = new Set();
      for (const t of Object.keys(info.process_types || {})) names.add(t);
      for (const p of info.processes || []) names.add(p.name);
      const have = new Set([...ps.options].map((o) => o.value));
      for (const n of [...names].sort()) if (!have.has(n)) ps.append(el('option', { value: n, text: n }));
    });
  }

  // ---- deploys ------------------------------------------------------------------------------

  function deployPage(app) {
    document.title = `Deploys of ${app} · dozen`;
    crumbs(['Apps', '/'], [app, appPath(app)], ['Deploys']);
    const now = el('div', { id: 'deploy-now', role: 'status' });
    const ps = el('div', { id: 'deploy-processes' });
    const builds = el('div', { id: 'builds-body' });
    const statusNode = el('span', { id: 'log-status', class: 'live' });
    const list = el('ol', { id: 'log-lines', class: 'log', tabindex: '0', 'aria-label': `Build and rollout log of ${app}` });
    $('main').replaceChildren(
      el('h1', {}, 'Deploys of ', el('span', { class: 'app-name', text: app })),
      now,
      section('deploy-log', 'Build and rollout', el('div', { class: 'controls' }, statusNode), list),
      section('deploy-ps', 'Processes', ps),
      section('builds', 'Builds', builds));
    follow(app, list, statusNode, () => ({ source: 'deploy', lines: '500' })).connect();
    every(1500, async () => {
      const o = await appOverview(app);
      const b = o.builds[0];
      const pending = o.releases.find((r) => r.status === 'pending');
      const live = o.releases.find((r) => r.current);
      let text;
      if (b && b.status === 'pending') text = 'Building…';
      else if (pending) text = `Rolling out v${pending.version}: new processes start, take traffic when healthy, then the old ones stop.`;
      else if (b && b.status === 'failed') text = `The last build failed: ${b.error || 'see its log'}`;
      else if (live) text = `v${live.version} is live.`;
      else text = 'Nothing deployed yet: dozen deploy -a APP.';
      renderIfChanged(now, text, () => el('p', { class: 'deploy-state', text }));
      ps.replaceChildren(processTable(o.info.processes || []));
      renderIfChanged(builds, o.builds, () => (o.builds.length
        ? table(['Build', 'Status', 'Started', 'Finished', 'Error'], o.builds.map((x) => el('tr', {},
          el('td', { class: 'mono', text: x.id }),
          el('td', {}, badge(x.status)),
          el('td', { class: 'when', text: when(x.created_at) }),
          el('td', { class: 'when', text: when(x.finished_at) }),
          el('td', { class: 'error', text: x.error || '' }))), 'Builds')
        : el('p', { class: 'muted', text: 'No builds yet.' })));
    });
  }

  // ---- start ---------------------------------------------------------------------------------

  function route() {
    const parts = location.pathname.split('/').filter(Boolean).map(decodeURIComponent);
    if (parts.length === 0) return appsPage();
    if (parts[0] === 'apps' && parts.length === 2) return appPage(parts[1]);
    if (parts[0] === 'apps' && parts.length === 3 && parts[2] === 'logs') return logsPage(parts[1]);
    if (parts[0] === 'apps' && parts.length === 3 && parts[2] === 'deploy') return deployPage(parts[1]);
    $('main').replaceChildren(el('h1', { text: 'Not found' }), el('p', {}, el('a', { href: '/', text: 'Apps' })));
    return undefined;
  }

  document.addEventListener('DOMContentLoaded', async () => {
    try {
      session = await api('GET', '/dashboard/session');
    } catch (e) {
      if (e.status !== 401) $('main').replaceChildren(el('p', { class: 'error', text: e.message }));
      return;
    }
    const scope = session.app ? `${session.scope} on ${session.app}` : session.scope;
    $('who').textContent = `${session.name} (${scope})`;
    const logout = $('logout');
    logout.hidden = false;
    logout.addEventListener('click', async () => {
      try { await api('POST', '/dashboard/logout'); } catch (_) { /* gone anyway */ }
      location.assign('/login');
    });
    route();
  });
})();
