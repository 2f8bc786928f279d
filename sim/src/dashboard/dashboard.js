// kler-sim dashboard (SPEC 8.4). Plain JS, no build step. Every value from
// the API goes into the page as text (textContent), never as HTML. The
// organisation key lives in sessionStorage only and is sent as x-api-key;
// it is never part of a URL that reaches the server.
"use strict";

const KEY_NAME = "kler_sim_org_key";
let orgKey = null;
let refreshing = false;
let again = false;
let stream = null;

// ----- helpers -------------------------------------------------------------

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") e.className = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, String(v));
  }
  for (const c of children) {
    if (c === null || c === undefined) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

function badge(text, cls) {
  return el("span", { class: "badge " + (cls || text) }, text);
}

function time(ts) {
  if (!ts) return "never";
  const d = new Date(ts);
  return isNaN(d) ? String(ts) : d.toLocaleTimeString([], { hour12: false });
}

function randomKey(prefix) {
  const b = new Uint8Array(16);
  crypto.getRandomValues(b);
  return prefix + Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

// "2000", "2000.5", "2000.50" -> "2000.50" (money stays a string of digits).
function wireAmount(text) {
  const m = /^\s*(\d{1,12})(?:\.(\d{1,2}))?\s*$/.exec(text);
  if (!m) return null;
  return m[1].replace(/^0+(?=\d)/, "") + "." + (m[2] || "").padEnd(2, "0");
}

function notice(text, isError) {
  const n = document.getElementById("notice");
  n.textContent = text;
  n.className = isError ? "error" : "";
  n.hidden = false;
}

class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

async function api(method, path, body, headers) {
  const h = Object.assign({ "x-api-key": orgKey }, headers || {});
  if (body !== undefined) h["content-type"] = "application/json";
  const resp = await fetch(path, {
    method,
    headers: h,
    body: body === undefined ? undefined : JSON.stringify(body),
    cache: "no-store",
  });
  let env = null;
  try { env = await resp.json(); } catch (_) { /* not JSON */ }
  if (!resp.ok || !env || env.success !== true) {
    const err = (env && env.error) || {};
    throw new ApiError(resp.status, err.code || "http_" + resp.status, err.message || resp.statusText);
  }
  return env.data;
}

// Every page of a list (the dashboard shows whole lists).
async function all(path) {
  const sep = path.includes("?") ? "&" : "?";
  let out = [];
  for (let page = 0; ; page++) {
    const p = await api("GET", `${path}${sep}page=${page}&size=200`);
    out = out.concat(p.content);
    if (page + 1 >= p.totalPages || page >= 50) return out;
  }
}

// ----- the key ---------------------------------------------------------------

function takeKey() {
  const m = /(?:^#|&)org_key=([^&]*)/.exec(location.hash);
  if (m) {
    sessionStorage.setItem(KEY_NAME, decodeURIComponent(m[1]));
    // Out of the address bar and the history.
    history.replaceState(null, "", location.pathname + location.search);
  }
  return sessionStorage.getItem(KEY_NAME);
}

function askKey(message) {
  stopStream();
  orgKey = null;
  sessionStorage.removeItem(KEY_NAME);
  document.getElementById("login").hidden = false;
  document.getElementById("forget").hidden = true;
  document.getElementById("sessions").replaceChildren();
  document.getElementById("webhooks-section").hidden = true;
  setLive(false, "Not connected");
  if (message) notice(message, true);
}

function start(key) {
  orgKey = key;
  document.getElementById("login").hidden = true;
  document.getElementById("forget").hidden = false;
  listen();
}

// ----- live updates ----------------------------------------------------------

function setLive(on, text) {
  const l = document.getElementById("live");
  l.textContent = text;
  l.className = "badge " + (on ? "online" : "offline");
  l.dataset.live = on ? "yes" : "no";
}

function stopStream() {
  if (stream) stream.abort();
  stream = null;
}

// The event stream, read with fetch so the key travels as a header
// (EventSource cannot send one). Reconnects with a growing delay.
async function listen() {
  let delay = 1000;
  for (;;) {
    const ctl = new AbortController();
    stream = ctl;
    try {
      const resp = await fetch("/v1/dashboard/events", {
        headers: { "x-api-key": orgKey, accept: "text/event-stream" },
        cache: "no-store",
        signal: ctl.signal,
      });
      if (resp.status === 401) {
        askKey("The organisation key was refused.");
        return;
      }
      if (!resp.ok || !resp.body) throw new Error("HTTP " + resp.status);
      setLive(true, "Live");
      delay = 1000;
      const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
      let buf = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += value;
        let i;
        while ((i = buf.indexOf("\n\n")) >= 0) {
          const block = buf.slice(0, i);
          buf = buf.slice(i + 2);
          if (/^event: changed$/m.test(block)) refresh();
        }
      }
    } catch (e) {
      if (ctl.signal.aborted) return;
    }
    if (stream !== ctl) return;
    setLive(false, "Reconnecting…");
    await new Promise((r) => setTimeout(r, delay));
    delay = Math.min(delay * 2, 30000);
    if (stream !== ctl) return;
  }
}

// One refresh at a time; changes during one cause exactly one more.
async function refresh() {
  if (refreshing) { again = true; return; }
  refreshing = true;
  try {
    do {
      again = false;
      await load();
    } while (again && orgKey);
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) askKey("The organisation key was refused.");
    else notice("Could not load: " + e.message, true);
  } finally {
    refreshing = false;
  }
}

async function load() {
  const sessions = await all("/v1/sessions");
  const views = await Promise.all(sessions.map(async (s) => {
    const id = encodeURIComponent(s.session_id);
    const [terminals, payments, recon, balance] = await Promise.all([
      all(`/v1/terminals?session_id=${id}`),
      all(`/v1/payments?session_id=${id}`),
      api("GET", `/v1/reconciliation/${id}`),
      // SPEC 7.7: only a session with a collection account has a balance.
      s.collection_account ? api("GET", `/v1/sessions/${id}/account/balance`) : null,
    ]);
    return { s, terminals, payments, recon, balance };
  }));
  const hooks = await all("/v1/sandbox/webhooks");
  if (!orgKey) return;
  const box = document.getElementById("sessions");
  // Keep what a person is typing across a refresh.
  const typed = {};
  for (const i of box.querySelectorAll("[data-keep]")) typed[i.dataset.keep] = i.value;
  const focused = document.activeElement && document.activeElement.dataset
    ? document.activeElement.dataset.keep : undefined;
  box.replaceChildren(...(views.length ? views.map(sessionView)
    : [el("p", { class: "muted" }, "No sessions yet (POST /v1/sessions creates one).")]));
  for (const i of box.querySelectorAll("[data-keep]")) {
    if (typed[i.dataset.keep] !== undefined) i.value = typed[i.dataset.keep];
    if (i.dataset.keep === focused) i.focus();
  }
  renderWebhooks(hooks);
}

// ----- views -------------------------------------------------------------------

function metricsCell(m) {
  if (!m) return el("td", { class: "muted" }, "none yet");
  const p = (v) => (v === null || v === undefined ? "–" : v + " ms");
  return el("td", { class: "metrics" },
    `✓ ${m.payments_approved} approved · ✗ ${m.payments_declined} declined · ${m.payments_offline} offline`,
    el("br"),
    el("span", { class: "muted" },
      `tap→result p50 ${p(m.tap_to_result_p50_ms)}, p99 ${p(m.tap_to_result_p99_ms)} · ` +
      `reader errors ${m.reader_errors} · printer errors ${m.printer_errors} · link ${m.link_up ? "up" : "DOWN"}`));
}

function chargeForm(s, t) {
  const input = el("input", {
    class: "amount", inputmode: "decimal", placeholder: "0.00",
    "aria-label": `Amount for ${t.terminal_id}`, "data-keep": `amount:${t.terminal_id}`,
    name: "amount",
  });
  const form = el("form", { class: "inline charge", "data-terminal": t.terminal_id },
    el("span", { class: "muted" }, s.currency), input,
    el("button", { type: "submit", disabled: s.status !== "active" }, "Charge"));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const amount = wireAmount(input.value);
    if (!amount || amount === "0.00") {
      notice(`Enter an amount like 2000.00 for ${t.terminal_id}.`, true);
      return;
    }
    const key = randomKey("dash-");
    try {
      const p = await api("POST", "/v1/payments", {
        terminal_id: t.terminal_id, amount, currency: s.currency,
        reference: "DASH-" + key.slice(5, 17).toUpperCase(),
      }, { "Idempotency-Key": key });
      input.value = "";
      notice(`Payment ${p.payment_id} of ${s.currency} ${amount} sent to ${t.terminal_id}.`);
      refresh();
    } catch (e) {
      notice(`Payment refused (${e.code}): ${e.message}`, true);
    }
  });
  return form;
}

function terminalsTable(s, terminals) {
  return el("table", { class: "terminals" },
    el("thead", {}, el("tr", {},
      el("th", {}, "Terminal"), el("th", {}, "Status"), el("th", {}, "Last seen"),
      el("th", { class: "num" }, "Queue"), el("th", { class: "num" }, "Parked"),
      el("th", {}, "Metrics (last heartbeat)"), el("th", {}, "New payment"))),
    el("tbody", {}, ...terminals.map((t) => el("tr", { "data-terminal": t.terminal_id, "data-status": t.status },
      el("td", {}, el("strong", {}, t.label), el("br"), el("span", { class: "mono" }, t.terminal_id)),
      el("td", { class: "status" }, badge(t.status)),
      el("td", {}, time(t.last_seen_at)),
      el("td", { class: "num" }, t.queue_depth),
      el("td", { class: "num" + (t.parked > 0 ? " warn" : "") }, t.parked),
      metricsCell(t.metrics),
      el("td", {}, chargeForm(s, t))))));
}

function paymentsTable(payments) {
  if (!payments.length) return el("p", { class: "muted" }, "No payments yet.");
  return el("table", { class: "payments" },
    el("thead", {}, el("tr", {},
      el("th", {}, "Created"), el("th", {}, "Payment"), el("th", {}, "Kind"), el("th", {}, "Terminal"),
      el("th", { class: "num" }, "Amount"), el("th", {}, "Status"), el("th", {}, "Card / reason"))),
    el("tbody", {}, ...payments.map((p) => {
      const tx = p.transaction;
      const detail = tx
        ? `${tx.card ? tx.card.brand + " •••• " + tx.card.last4 : ""}${tx.payer ? "transfer from " + tx.payer.name + " (" + tx.payer.bank + ")" : ""}${tx.auth_code ? " · auth " + tx.auth_code : ""}${tx.offline ? " · offline" : ""}`
        : (p.reason || "");
      return el("tr", { "data-payment": p.payment_id, "data-status": p.status },
        el("td", { class: "nowrap" }, time(p.created_at)),
        el("td", { class: "mono" }, p.payment_id),
        el("td", {}, p.kind),
        el("td", { class: "mono" }, p.terminal_id),
        el("td", { class: "num nowrap" }, `${p.currency} ${p.amount}`),
        el("td", { class: "status" }, badge(p.status.replace("_", " "), p.status)),
        el("td", { class: "nowrap" }, detail));
    })));
}

function reconView(r, terminals) {
  const tile = (k, v, attrs) => el("div", Object.assign({ class: "tile" }, attrs || {}),
    el("div", { class: "v" }, v), el("div", { class: "k" }, k));
  const ids = new Set(terminals.map((t) => t.terminal_id));
  for (const id of Object.keys(r.by_terminal || {})) ids.add(id);
  return el("div", { class: "recon", "data-successful": r.successful_count },
    el("div", { class: "grid" },
      tile("Total inflow", `${r.currency} ${r.total_inflow}`),
      tile("Approved sales", r.successful_count),
      tile("Pending", r.pending_count),
      tile("Failed", r.failed_count),
      tile(`Refunds (${r.refunds.count})`, `${r.currency} ${r.refunds.total}`),
      tile(`Tips (${r.tips.count})`, `${r.currency} ${r.tips.total}`)),
    el("table", { class: "by-terminal" },
      el("thead", {}, el("tr", {}, el("th", {}, "Terminal"), el("th", { class: "num" }, "Sales"),
        el("th", { class: "num" }, "Total"))),
      el("tbody", {}, ...[...ids].sort().map((id) => {
        const ct = (r.by_terminal || {})[id] || { count: 0, total: "0.00" };
        return el("tr", { "data-terminal": id, "data-count": ct.count },
          el("td", { class: "mono" }, id), el("td", { class: "num" }, ct.count),
          el("td", { class: "num" }, `${r.currency} ${ct.total}`));
      }))),
    el("p", { class: "muted" }, `Reconciled at ${time(r.reconciled_at)}`));
}

// The collection account (SPEC 7.7): what came in by bank transfer, what
// settled payments, and the credits no payment took.
function accountView(s, b, r) {
  const tile = (k, v, attrs) => el("div", Object.assign({ class: "tile" }, attrs || {}),
    el("div", { class: "v" }, v), el("div", { class: "k" }, k));
  const a = s.collection_account;
  const byChannel = r.by_channel || {};
  const channel = (c) => byChannel[c] || { count: 0, total: "0.00" };
  const unmatched = r.unmatched_credits || { count: 0, total: "0.00" };
  return el("div", { class: "account", "data-account": a.account_number,
    "data-collected": b.collected, "data-unmatched": b.unmatched },
    el("p", { class: "muted" }, `${a.bank_name} · ${a.account_number} · ${a.account_name}`),
    el("div", { class: "grid" },
      tile("Collected", `${b.currency} ${b.collected}`),
      tile("Settled payments", `${b.currency} ${b.settled}`),
      tile(`Unmatched credits (${unmatched.count})`, `${b.currency} ${b.unmatched}`,
        { "data-unmatched-count": unmatched.count }),
      tile(`Card sales (${channel("pos").count})`, `${r.currency} ${channel("pos").total}`),
      tile(`Transfer sales (${channel("account").count})`, `${r.currency} ${channel("account").total}`)));
}

function pairForm(s) {
  const code = el("input", {
    class: "code", placeholder: "ABCD2345", maxlength: 8, autocomplete: "off",
    "aria-label": "Pairing code", "data-keep": `code:${s.session_id}`, name: "pairing_code",
  });
  const pick = el("select", {
    "aria-label": "Terminal to pair", name: "terminal_id", "data-keep": `pick:${s.session_id}`,
  },
    ...s.pos_terminals.map((t) => el("option", { value: t.terminal_id }, `${t.label} (${t.terminal_id})`)));
  const form = el("form", { class: "inline pair" },
    el("label", {}, "Code on the terminal ", code), el("label", {}, "as ", pick),
    el("button", { type: "submit", disabled: s.status === "closed" || s.status === "cancelled" }, "Pair"));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const c = code.value.trim().toUpperCase();
    if (!/^[A-Z2-9]{8}$/.test(c)) {
      notice("A pairing code is 8 characters: letters A–Z and digits 2–9.", true);
      return;
    }
    try {
      const r = await api("POST",
        `/v1/sessions/${encodeURIComponent(s.session_id)}/terminals/${encodeURIComponent(pick.value)}/pair`,
        { pairing_code: c });
      code.value = "";
      notice(`Terminal ${r.terminal_id} paired (device ${r.device_id}).`);
    } catch (e) {
      notice(`Pairing refused (${e.code}): ${e.message}`, true);
    }
  });
  return form;
}

function sessionView({ s, terminals, payments, recon, balance }) {
  const close = el("button", {
    type: "button", class: "danger close-session",
    disabled: s.status === "closed" || s.status === "cancelled",
  }, "Close session");
  close.addEventListener("click", async () => {
    if (!confirm(`Close the session "${s.name}"? Its terminals take no new payments.`)) return;
    try {
      await api("PATCH", `/v1/sessions/${encodeURIComponent(s.session_id)}/close`);
      notice(`Session ${s.name} closed.`);
    } catch (e) {
      notice(`Close refused (${e.code}): ${e.message}`, true);
    }
  });
  return el("article", { class: "session", "data-session": s.session_id, "data-status": s.status },
    el("div", { class: "session-head" },
      el("h2", {}, s.name), badge(s.status),
      el("span", { class: "muted" }, `${s.session_id} · ${s.currency} · ${s.external_event_id}`),
      close),
    el("h3", {}, "Terminals"), terminalsTable(s, terminals),
    el("h3", {}, "Pair a terminal"), pairForm(s),
    el("h3", {}, "Reconciliation"), reconView(recon, terminals),
    ...(balance ? [el("h3", {}, "Collection account"), accountView(s, balance, recon)] : []),
    el("h3", {}, "Payments"), paymentsTable(payments));
}

function renderWebhooks(hooks) {
  const sec = document.getElementById("webhooks-section");
  sec.hidden = false;
  const rows = hooks.slice(-100).reverse();
  const body = sec.querySelector("tbody");
  body.replaceChildren(...(rows.length ? rows.map((a) => {
    const result = a.delivered ? badge("delivered")
      : badge(a.status ? `HTTP ${a.status}` : "failed", "failed");
    return el("tr", {
      "data-event": a.event_id, "data-attempt": a.attempt, "data-delivered": a.delivered ? "yes" : "no",
    },
      el("td", {}, time(a.at)), el("td", {}, a.event), el("td", { class: "mono" }, a.event_id),
      el("td", { class: "num" }, a.attempt),
      el("td", {}, result, a.error ? el("span", { class: "muted" }, " " + a.error) : null),
      el("td", { class: "mono" }, a.url));
  }) : [el("tr", {}, el("td", { colspan: 6, class: "muted" }, "No deliveries yet."))]));
}

// ----- start -------------------------------------------------------------------

document.addEventListener("DOMContentLoaded", () => {
  document.getElementById("login").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const k = document.getElementById("org-key").value.trim();
    if (!k) return;
    sessionStorage.setItem(KEY_NAME, k);
    document.getElementById("org-key").value = "";
    document.getElementById("notice").hidden = true;
    start(k);
  });
  document.getElementById("forget").addEventListener("click", () => askKey(null));
  const key = takeKey();
  if (key) start(key); else askKey(null);
});
