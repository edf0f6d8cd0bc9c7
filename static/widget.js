// steward chat widget. Embed with one tag:
//   <script src="https://steward.example.com/widget.js" data-token="<signed token>" defer></script>
// Options (data- attributes on the tag): data-token (signed user token from
// the host page), data-user (loopback dev mode only), data-title,
// data-open="true" (start open), data-server (defaults to the script's
// origin), data-service-worker (a same-origin URL for web push; defaults to
// /sw.js when the page and the server share an origin).
//
// Plain modern JavaScript, no framework, no build step. Everything from the
// server or the model is put into the page as text nodes; the small Markdown
// subset below builds elements itself and never parses HTML.
(() => {
  "use strict";
  if (window.Steward) return; // embedded twice

  const script = document.currentScript;
  const data = (script && script.dataset) || {};
  const SERVER = new URL(data.server || (script && script.src) || location.href).origin;
  const SAME_ORIGIN = SERVER === location.origin;
  const cfg = {
    token: data.token || null,
    user: data.user || null,
    title: data.title || "Assistant",
    open: data.open === "true",
    serviceWorker: data.serviceWorker || (SAME_ORIGIN ? "/sw.js" : null),
  };
  // Local storage is per user: the token's subject (read, not trusted: the
  // server checks the token), so a refreshed token keeps the same queue.
  const subject = (token) => {
    try {
      return JSON.parse(atob(token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/"))).sub || "";
    } catch { return ""; }
  };
  const storeKey = () => "steward:" + SERVER + ":" + (cfg.token ? "t:" + subject(cfg.token) : "u:" + (cfg.user || ""));
  let STORE_KEY = storeKey();
  const MAX_TEXT = 4000;
  const PING_EVERY_MS = 25000;
  const PONG_WITHIN_MS = 10000;

  // ---------- small helpers ----------
  const el = (tag, attrs, ...children) => {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") node.className = v;
      else if (k === "text") node.textContent = v;
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v === true ? "" : String(v));
    }
    for (const c of children) if (c !== null && c !== undefined) node.append(c);
    return node;
  };
  const saved = () => {
    try { return JSON.parse(localStorage.getItem(STORE_KEY) || "{}"); } catch { return {}; }
  };
  const save = (patch) => {
    try { localStorage.setItem(STORE_KEY, JSON.stringify({ ...saved(), ...patch })); } catch { /* private mode */ }
  };
  const authQuery = () => (cfg.token ? "" : cfg.user ? "user=" + encodeURIComponent(cfg.user) : "");
  const API_TIMEOUT_MS = 15000;
  const api = async (method, path, body) => {
    const q = authQuery();
    const url = SERVER + path + (q ? (path.includes("?") ? "&" : "?") + q : "");
    const headers = {};
    if (cfg.token) headers.Authorization = "Bearer " + cfg.token;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), API_TIMEOUT_MS);
    let res;
    let text;
    try {
      res = await fetch(url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), signal: abort.signal });
      text = await res.text();
    } catch (e) {
      throw new Error(e.name === "AbortError" ? "the server did not answer in time" : "the server could not be reached");
    } finally {
      clearTimeout(timer);
    }
    let json = null;
    try { json = text ? JSON.parse(text) : null; } catch { /* not JSON */ }
    if (!res.ok) {
      const message = (json && json.error && json.error.message) || `the server answered ${res.status}`;
      const error = new Error(message);
      error.status = res.status;
      error.body = json;
      throw error;
    }
    return json;
  };

  // ---------- dates ----------
  const DAY = 86400000;
  const startOfDay = (d) => new Date(d.getFullYear(), d.getMonth(), d.getDate());
  const calendarDays = (a, b) => Math.round((startOfDay(b) - startOfDay(a)) / DAY);
  const plural = (n, word) => `${n} ${word}${n === 1 ? "" : "s"}`;
  const fullDate = (d) =>
    d.toLocaleString(undefined, { weekday: "long", year: "numeric", month: "long", day: "numeric", hour: "2-digit", minute: "2-digit" });
  const shortDate = (d, now) =>
    d.toLocaleDateString(undefined, d.getFullYear() === now.getFullYear()
      ? { month: "short", day: "numeric" }
      : { month: "short", day: "numeric", year: "numeric" });
  /** "due Friday", "due tomorrow", "overdue 2 days"; `late` says overdue. */
  function relativeDue(iso, terminal, now = new Date()) {
    const due = new Date(iso);
    const days = calendarDays(now, due);
    if (!terminal && due < now) {
      const late = -days;
      return { text: late >= 1 ? `overdue ${plural(late, "day")}` : "overdue since " + due.toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit" }), late: true };
    }
    let text;
    if (days === 0) text = "due today";
    else if (days === 1) text = "due tomorrow";
    else if (days === -1) text = "due yesterday";
    else if (days > 1 && days < 7) text = "due " + due.toLocaleDateString(undefined, { weekday: "long" });
    else text = "due " + shortDate(due, now);
    return { text, late: false };
  }

  // ---------- safe Markdown subset ----------
  // Paragraphs, line breaks, # headings, - / * / 1. lists, ``` code blocks,
  // `code`, **bold**, *em* / _em_, [links](https://…). Built as elements.
  function inline(text, parent) {
    const re = /(`[^`\n]+`)|(\*\*[^*\n]+\*\*)|(\*[^*\s][^*\n]*\*|_[^_\s][^_\n]*_)|(\[[^\]\n]+\]\((?:https?:\/\/|mailto:)[^)\s]+\))/g;
    let last = 0;
    for (let m = re.exec(text); m; m = re.exec(text)) {
      if (m.index > last) parent.append(text.slice(last, m.index));
      const t = m[0];
      if (m[1]) parent.append(el("code", { text: t.slice(1, -1) }));
      else if (m[2]) inline(t.slice(2, -2), parent.appendChild(el("strong")));
      else if (m[3]) inline(t.slice(1, -1), parent.appendChild(el("em")));
      else {
        const close = t.indexOf("](");
        const href = t.slice(close + 2, -1);
        parent.append(el("a", { href, target: "_blank", rel: "noopener noreferrer nofollow", text: t.slice(1, close) }));
      }
      last = m.index + t.length;
    }
    if (last < text.length) parent.append(text.slice(last));
  }
  function markdown(source) {
    const root = el("div", { class: "md" });
    const lines = String(source).replace(/\r\n?/g, "\n").split("\n");
    let para = null;
    let list = null;
    const endBlocks = () => { para = null; list = null; };
    for (let i = 0; i < lines.length; i++) {
      const line = lines[i];
      if (/^```/.test(line)) {
        endBlocks();
        const code = [];
        for (i++; i < lines.length && !/^```/.test(lines[i]); i++) code.push(lines[i]);
        root.append(el("pre", {}, el("code", { text: code.join("\n") })));
        continue;
      }
      if (!line.trim()) { endBlocks(); continue; }
      const heading = /^(#{1,3})\s+(.*)$/.exec(line);
      if (heading) {
        endBlocks();
        const h = el("p", { class: "md-h" + heading[1].length });
        inline(heading[2], h.appendChild(el("strong")));
        root.append(h);
        continue;
      }
      const item = /^\s*(?:([-*•])|(\d{1,3})[.)])\s+(.*)$/.exec(line);
      if (item) {
        const tag = item[1] ? "ul" : "ol";
        if (!list || list.tagName.toLowerCase() !== tag) {
          para = null;
          list = el(tag);
          if (item[2] && item[2] !== "1") list.setAttribute("start", item[2]);
          root.append(list);
        }
        const li = list.appendChild(el("li"));
        const task = /^\[( |x|X)\]\s+(.*)$/.exec(item[3]); // "[ ] todo", "[x] done"
        if (task) {
          li.className = "task" + (task[1] === " " ? "" : " task-done");
          li.append(el("span", { class: "box", "aria-hidden": "true", text: task[1] === " " ? "☐ " : "☑ " }),
            el("span", { class: "visually-hidden", text: task[1] === " " ? "to do: " : "done: " }));
        }
        inline(task ? task[2] : item[3], li);
        continue;
      }
      if (list && /^\s{2,}\S/.test(line)) { // continuation of a list item
        const li = list.lastElementChild;
        li.append(el("br"));
        inline(line.trim(), li);
        continue;
      }
      list = null;
      if (!para) para = root.appendChild(el("p"));
      else para.append(el("br"));
      inline(line, para);
    }
    return root;
  }

  // ---------- state ----------
  const state = {
    socket: null,
    status: "offline",
    retry: 0,
    retryTimer: null,
    pingTimer: null,
    pongTimer: null,
    plans: new Map(), // id -> plan
    proposals: new Map(), // id -> proposal view
    planCards: new Map(), // id -> card element in the thread
    proposalCards: new Map(), // id -> card element in the thread
    notified: new Set(), // notification ids shown
    streams: new Map(), // message id -> { bubble, text }
    outgoing: [], // { id, text, status: queued|sent|unsure, el }
    unread: 0,
    open: false,
    view: "chat",
    gen: 0, // bumped with every socket; async work for an old one stops
    lastItem: null, // the last item of the server's thread at the last resync
    awaitAnswer: false, // a message's answer may still be on its way
    answerChecks: 0,
    resyncTimer: null,
    confirmTimer: null,
    signedOut: false,
    settingsDirty: false,
    counter: 0,
    buffer: null, // frames held while resyncing
    syncing: null, // the running resync, if any
    syncAgain: false,
    answered: new Set(), // ids of our messages the server's thread shows an answer for
    shown: new Set(), // ids of user messages in the thread (ours, or from another tab)
    echoed: null, // id of a message from another tab whose answer is still coming
    busy: false, // the server said a turn of ours was running
    epoch: 0, // bumped when the user changes; fetches for an older one are dropped
  };

  // ---------- DOM ----------
  const host = el("div", { id: "steward-widget", "data-state": "offline" });
  const root = host.attachShadow({ mode: "open" });
  root.append(el("link", { rel: "stylesheet", href: SERVER + "/widget.css" }));

  const badge = el("span", { class: "badge", hidden: true, "aria-hidden": "true" });
  const launcher = el("button", {
    class: "launcher", type: "button", "aria-expanded": "false", "aria-controls": "steward-panel",
    "aria-label": "Open chat with " + cfg.title,
    onclick: () => setOpen(!state.open),
  }, el("span", { class: "launcher-icon", "aria-hidden": "true" }), badge);

  const statusLine = el("span", { class: "status", role: "status", "aria-live": "polite", text: "offline" });
  const tabs = {};
  const tab = (name, label) => {
    tabs[name] = el("button", {
      class: "tab", type: "button", role: "tab", id: "steward-tab-" + name, "aria-controls": "steward-view-" + name,
      "aria-selected": String(name === "chat"), tabindex: name === "chat" ? "0" : "-1", text: label,
      onclick: () => showView(name),
    });
    return tabs[name];
  };
  const tablist = el("div", { class: "tabs", role: "tablist", "aria-label": "Views" },
    tab("chat", "Chat"), tab("plans", "My plans"), tab("settings", "Settings"));
  tablist.addEventListener("keydown", (e) => {
    const order = ["chat", "plans", "settings"];
    const at = order.indexOf(state.view);
    if (e.key === "ArrowRight" || e.key === "ArrowLeft") {
      e.preventDefault();
      const next = order[(at + (e.key === "ArrowRight" ? 1 : order.length - 1)) % order.length];
      showView(next);
      tabs[next].focus();
    }
  });
  const closeButton = el("button", { class: "close", type: "button", "aria-label": "Close chat", onclick: () => setOpen(false) }, "×");

  // The thread is a log, but not a live region: a streaming answer or a
  // rebuilt thread would be read again and again. Finished answers,
  // notifications and errors are announced once, through `announcer`.
  const thread = el("div", { class: "thread", role: "log", "aria-live": "off", "aria-label": "Conversation", tabindex: "0" });
  const announcer = el("div", { class: "visually-hidden announcer", role: "status", "aria-live": "polite", "aria-atomic": "true" });
  const announce = (text) => {
    announcer.textContent = "";
    setTimeout(() => { announcer.textContent = text; }, 50);
  };
  const EXAMPLE = "help me onboard Ana Souza, she starts December 1";
  const empty = el("div", { class: "empty" }, el("p", { text: "Hi! Tell me about something you need to get done — for example:" }),
    el("button", { type: "button", class: "example", text: "“" + EXAMPLE + "”", onclick: () => { input.value = EXAMPLE; input.focus(); } }));
  thread.append(empty);
  const input = el("textarea", {
    rows: "1", maxlength: String(MAX_TEXT), placeholder: "Write a message…", "aria-label": "Message", autocomplete: "off",
  });
  const sendButton = el("button", { type: "submit", class: "send", text: "Send" });
  const composer = el("form", { class: "composer" }, input, sendButton);
  const chatView = el("div", { class: "view", id: "steward-view-chat", role: "tabpanel", "aria-labelledby": "steward-tab-chat" },
    thread, composer);

  const plansList = el("div", { class: "plans-list" });
  const plansView = el("div", { class: "view", id: "steward-view-plans", role: "tabpanel", "aria-labelledby": "steward-tab-plans", hidden: true, tabindex: "0" },
    el("h2", { text: "My plans" }), plansList);

  const settingsView = el("div", { class: "view", id: "steward-view-settings", role: "tabpanel", "aria-labelledby": "steward-tab-settings", hidden: true, tabindex: "0" });

  const panel = el("section", { class: "panel", id: "steward-panel", role: "dialog", "aria-label": cfg.title, hidden: true },
    el("header", {}, el("div", { class: "title" }, el("h1", { text: cfg.title }), statusLine), tablist, closeButton),
    chatView, plansView, settingsView, announcer);
  root.append(launcher, panel);
  const phone = window.matchMedia("(max-width: 600px)");
  panel.addEventListener("keydown", (e) => {
    if (e.key === "Escape") { e.stopPropagation(); setOpen(false); return; }
    // On a phone the panel covers the page: Tab stays inside it.
    if (e.key === "Tab" && phone.matches) {
      const focusable = [...panel.querySelectorAll("button, [href], input, select, textarea, [tabindex]:not([tabindex='-1'])")]
        .filter((n) => !n.disabled && n.getClientRects().length);
      const first = focusable[0];
      const last = focusable[focusable.length - 1];
      if (e.shiftKey && root.activeElement === first) { e.preventDefault(); last.focus(); }
      else if (!e.shiftKey && root.activeElement === last) { e.preventDefault(); first.focus(); }
    }
  });
  const syncModal = () => panel.setAttribute("aria-modal", String(phone.matches && state.open));
  phone.addEventListener("change", syncModal);

  function setOpen(open, { focus = true } = {}) {
    state.open = open;
    syncModal();
    panel.hidden = !open;
    launcher.setAttribute("aria-expanded", String(open));
    launcher.setAttribute("aria-label", (open ? "Close" : "Open") + " chat with " + cfg.title);
    host.classList.toggle("is-open", open);
    save({ open });
    if (open) {
      setUnread(0);
      if (state.view === "chat") scrollDown(true);
      if (focus && state.view === "chat") input.focus();
    } else if (focus) {
      launcher.focus();
    }
  }

  function showView(name) {
    state.view = name;
    for (const [n, t] of Object.entries(tabs)) {
      t.setAttribute("aria-selected", String(n === name));
      t.tabIndex = n === name ? 0 : -1;
    }
    chatView.hidden = name !== "chat";
    plansView.hidden = name !== "plans";
    settingsView.hidden = name !== "settings";
    if (name === "plans") renderPlansView();
    if (name === "settings" && !state.settingsDirty) renderSettings();
    if (name === "chat") scrollDown();
  }

  function setUnread(n) {
    state.unread = n;
    badge.hidden = n === 0;
    badge.textContent = n > 9 ? "9+" : String(n);
    save({ unread: n }); // the badge survives moving to another page of the host site
    launcher.setAttribute("aria-label", (state.open ? "Close" : "Open") + " chat with " + cfg.title +
      (n ? `, ${plural(n, "unread notification")}` : ""));
  }

  function setStatus(status, detail) {
    state.status = status;
    host.dataset.state = status;
    panel.dataset.state = status;
    statusLine.textContent = detail || status;
    sendButton.disabled = state.signedOut;
    for (const card of state.proposalCards.values()) syncProposalButtons(card);
  }

  const nearBottom = () => thread.scrollHeight - thread.scrollTop - thread.clientHeight < 80;
  function scrollDown(force) {
    if (force || nearBottom()) requestAnimationFrame(() => { thread.scrollTop = thread.scrollHeight; });
  }
  function append(node) {
    empty.remove();
    const stick = nearBottom();
    thread.append(node);
    if (stick) scrollDown(true);
    return node;
  }
  const stamp = (at) => (at ? el("time", { datetime: at, title: fullDate(new Date(at)) }) : null);

  // ---------- thread items ----------
  function userBubble(text, at) {
    return el("div", { class: "msg user" }, el("span", { class: "who visually-hidden", text: "You:" }), el("p", { class: "text", text }), stamp(at));
  }
  function assistantBubble(text, at) {
    const li = el("div", { class: "msg assistant" }, el("span", { class: "who visually-hidden", text: cfg.title + ":" }), markdown(text), stamp(at));
    return li;
  }
  const NOTIFICATION_LABEL = { due_soon: "Coming up", overdue: "Overdue", idle: "Checking in", reminder: "Reminder", missed: "While you were away" };
  function notificationBubble(n) {
    return el("div", { class: "msg notification kind-" + n.kind, "data-notification-id": n.id },
      el("span", { class: "who", text: NOTIFICATION_LABEL[n.kind] || "Update" }), markdown(n.text), stamp(n.created_at));
  }
  function errorLine(text) {
    return el("div", { class: "msg error", role: "alert" }, el("p", { text }));
  }

  // ---------- plan cards ----------
  const STATUS_LABEL = { pending: "to do", in_progress: "in progress", completed: "done", failed: "failed", cancelled: "cancelled" };
  const STATUS_ICON = { pending: "○", in_progress: "◐", completed: "✓", failed: "!", cancelled: "–" };
  const terminal = (s) => s === "completed" || s === "cancelled";
  function currentStep(plan) {
    if (plan.status !== "active") return null;
    const running = plan.steps.find((s) => s.status === "in_progress");
    if (running) return running;
    const byId = new Map(plan.steps.map((s) => [s.id, s]));
    const ready = plan.steps.filter((s) => s.status === "pending" &&
      (s.depends_on || []).every((d) => !byId.has(d) || terminal(byId.get(d).status)));
    ready.sort((a, b) => (a.due_at ? Date.parse(a.due_at) : Infinity) - (b.due_at ? Date.parse(b.due_at) : Infinity));
    return ready[0] || null;
  }
  function planCard(plan) {
    const done = plan.steps.filter((s) => s.status === "completed").length;
    const counted = plan.steps.filter((s) => s.status !== "cancelled").length;
    const pct = counted ? Math.round((done / counted) * 100) : 0;
    const current = currentStep(plan);
    const byId = new Map(plan.steps.map((s) => [s.id, s]));
    const steps = el("ol", { class: "steps" });
    for (const step of plan.steps) {
      const isCurrent = current && current.id === step.id;
      const li = el("li", { class: `step st-${step.status}${isCurrent ? " current" : ""}`, "data-step-id": step.id,
        "aria-current": isCurrent ? "step" : null },
      el("span", { class: "icon", "aria-hidden": "true", text: STATUS_ICON[step.status] || "○" }),
      el("span", { class: "step-body" },
        el("span", { class: "step-title", text: step.title }),
        el("span", { class: "step-status", text: STATUS_LABEL[step.status] || step.status })));
      const body = li.lastChild;
      if (step.due_at) {
        const due = relativeDue(step.due_at, terminal(step.status) || step.status === "failed");
        body.append(el("span", { class: "due" + (due.late ? " late" : ""), title: fullDate(new Date(step.due_at)), text: due.text }));
      }
      const waiting = (step.depends_on || []).map((d) => byId.get(d)).filter((d) => d && !terminal(d.status));
      if (waiting.length && !terminal(step.status)) {
        body.append(el("span", { class: "waits", text: "waits on " + waiting.map((d) => d.title).join(", ") }));
      }
      if (step.result) body.append(el("span", { class: "result", text: step.result }));
      steps.append(li);
    }
    const closed = plan.status !== "active";
    const statusText = plan.status === "active" ? `${done} / ${counted} done` : plan.status === "done" ? "done" : "cancelled";
    const summary = el("summary", {},
      el("span", { class: "plan-title", text: plan.title }),
      el("span", { class: "plan-state", text: statusText }));
    const fill = el("span");
    fill.style.width = pct + "%"; // CSSOM, allowed under a strict style-src
    const progress = el("div", { class: "progress" },
      el("div", { class: "bar", role: "progressbar", "aria-valuemin": "0", "aria-valuemax": String(counted), "aria-valuenow": String(done),
        "aria-label": `${done} of ${counted} steps done` }, fill),
      el("span", { class: "count", text: `${pct}%` }));
    const next = current ? el("p", { class: "next" }, "Next: ", el("strong", { text: current.title })) : null;
    const details = el("details", { open: !closed }, summary, progress, next, steps);
    return el("article", { class: `plan-card plan-${plan.status}`, "data-plan-id": plan.id, "aria-label": "Plan: " + plan.title }, details);
  }
  function refreshPlanCard(plan) {
    const li = state.planCards.get(plan.id);
    if (!li) return;
    const wasOpen = li.querySelector("details")?.open;
    const card = planCard(plan);
    if (plan.status === "active" && wasOpen === false) card.querySelector("details").open = false;
    li.replaceChildren(card);
  }
  /** Puts the plan's card at the end of the thread (or after `after`). */
  function placePlanCard(planId, after) {
    const plan = state.plans.get(planId);
    if (!plan) return;
    let li = state.planCards.get(planId);
    if (!li) {
      li = el("div", { class: "card-item" });
      state.planCards.set(planId, li);
    }
    li.replaceChildren(planCard(plan));
    if (after && after.parentNode === thread) after.after(li);
    else { answerSlot(); append(li); }
    reveal(li);
  }
  /** Scrolls the thread so the top of `li` is in view. */
  function reveal(li) {
    requestAnimationFrame(() => { thread.scrollTop = Math.max(0, li.offsetTop - 8); });
  }

  // ---------- proposals ----------
  const fmtDay = (iso) => (iso ? shortDate(new Date(iso), new Date()) : "no date");
  function stepName(proposal, id) {
    const plan = proposal.plan_id && state.plans.get(proposal.plan_id);
    const step = plan && plan.steps.find((s) => s.id === id);
    return step ? step.title : id;
  }
  function changeLine(proposal, c) {
    const name = (id) => stepName(proposal, id);
    switch (c.kind) {
      case "plan_created": return ["added", "+", `New plan: ${c.title}`];
      case "plan_renamed": return ["changed", "~", `Rename plan “${c.from}” → “${c.to}”`];
      case "plan_status": return ["changed", "~", `Plan ${c.from} → ${c.to}`];
      case "step_added": return ["added", "+", c.step.title + (c.step.due_at ? ` (due ${fmtDay(c.step.due_at)})` : "")];
      case "step_removed": return ["removed", "−", c.step.title];
      case "step_due": return ["moved", "→", `${name(c.step)}: ${fmtDay(c.from)} → ${fmtDay(c.to)}`];
      case "step_status": return ["changed", "~", `${name(c.step)}: ${STATUS_LABEL[c.from] || c.from} → ${STATUS_LABEL[c.to] || c.to}`];
      case "step_title": return ["changed", "~", `Rename “${c.from}” → “${c.to}”`];
      case "step_deps": return ["changed", "~", `${name(c.step)} waits on: ${(c.to || []).map(name).join(", ") || "nothing"}`];
      case "step_result": return ["changed", "~", `${name(c.step)}: result “${c.to || ""}”`];
      case "reordered": return ["moved", "↕", "Steps reordered: " + (c.to || []).map(name).join(", ")];
      default: return ["changed", "~", c.kind];
    }
  }
  const OUTCOME = {
    accepted: "Confirmed ✓",
    declined: "Declined",
    stale: "Out of date: the plan changed after this was proposed, so it was not applied.",
    superseded: "Replaced by a newer proposal.",
  };
  function proposalCard(p) {
    const changes = el("ul", { class: "changes", "aria-label": "Changes" });
    const created = (p.changes || []).find((c) => c.kind === "plan_created");
    const plan = p.plan_id && state.plans.get(p.plan_id);
    const headline = created ? `New plan: ${created.title}` : plan ? `Change “${plan.title}”` : "Change a plan";
    for (const c of p.changes || []) {
      if (c.kind === "plan_created") continue;
      const [cls, sign, text] = changeLine(p, c);
      changes.append(el("li", { class: "change " + cls }, el("span", { class: "sign", "aria-hidden": "true", text: sign }),
        el("span", { class: "visually-hidden", text: cls + ": " }), el("span", { text })));
    }
    const card = el("article", { class: "proposal-card status-" + p.status, "data-proposal-id": p.id, "aria-label": "Proposal" },
      el("p", { class: "kicker", text: p.status === "open" ? "Please confirm" : "Proposal" }),
      el("h3", { class: "headline", text: headline }), changes);
    // The summary says the same in words: in full when short, folded when long.
    if ((p.changes || []).length <= 3) changes.before(markdown(p.summary));
    else changes.after(el("details", { class: "in-words" }, el("summary", { text: "In words" }), markdown(p.summary)));
    if (p.status === "open") {
      const actions = el("div", { class: "actions" },
        el("button", { type: "button", class: "confirm", text: "Confirm", onclick: () => decide(p.id, true) }),
        el("button", { type: "button", class: "decline", text: "Decline", onclick: () => decide(p.id, false) }),
        el("span", { class: "pending-note", role: "status" }));
      card.append(actions);
    } else {
      card.append(el("p", { class: "outcome", role: "status", tabindex: "-1", text: OUTCOME[p.status] || p.status }));
    }
    return card;
  }
  function syncProposalButtons(li) {
    const busy = li.dataset.busy === "true";
    // aria-disabled, not disabled: a disabled button drops keyboard focus.
    for (const b of li.querySelectorAll(".actions button")) b.setAttribute("aria-disabled", String(busy || state.status !== "online"));
    const note = li.querySelector(".pending-note");
    if (note) note.textContent = busy ? "Sending…" : state.status !== "online" ? "Offline — answer once reconnected" : "";
  }
  function placeProposal(p) {
    state.proposals.set(p.id, p);
    let li = state.proposalCards.get(p.id);
    const fresh = !li;
    if (!li) {
      li = el("div", { class: "card-item" });
      state.proposalCards.set(p.id, li);
    }
    li.dataset.busy = "false";
    const hadFocus = root.activeElement && li.contains(root.activeElement);
    li.replaceChildren(proposalCard(p));
    syncProposalButtons(li);
    if (hadFocus) (li.querySelector(".outcome") || li.querySelector("button"))?.focus();
    if (fresh) { answerSlot(); append(li); }
    // An accepted proposal shows its plan right below it.
    if (p.status === "accepted" && p.plan_id && state.plans.has(p.plan_id) && !state.planCards.has(p.plan_id)) {
      placePlanCard(p.plan_id, li);
    }
    return li;
  }
  function decide(id, accept) {
    const li = state.proposalCards.get(id);
    if (li && li.dataset.busy === "true") return;
    if (!send({ type: "confirm", proposal_id: id, accept })) return;
    if (li) { li.dataset.busy = "true"; syncProposalButtons(li); }
    // No answer at all (a lost frame): the buttons come back.
    clearTimeout(state.confirmTimer);
    state.confirmTimer = setTimeout(settleConfirms, 15000);
  }

  // ---------- My plans ----------
  async function renderPlansView() {
    plansList.replaceChildren(el("p", { class: "muted", text: "Loading…" }));
    const epoch = state.epoch;
    let plans;
    try {
      plans = (await api("GET", "/api/plans?include_closed=true")).plans;
      if (epoch !== state.epoch) return;
    } catch (e) {
      if (epoch !== state.epoch) return;
      plans = [...state.plans.values()];
      if (!plans.length) { plansList.replaceChildren(el("p", { class: "error", role: "alert", text: "Could not load your plans: " + e.message })); return; }
    }
    for (const p of plans) state.plans.set(p.id, p);
    plansList.replaceChildren();
    if (!plans.length) plansList.append(el("p", { class: "muted", text: "No plans yet. Tell me about a goal in the chat." }));
    const order = { active: 0, done: 1, cancelled: 2 };
    plans.sort((a, b) => order[a.status] - order[b.status] || Date.parse(b.updated_at) - Date.parse(a.updated_at));
    for (const p of plans) plansList.append(planCard(p));
  }

  // ---------- settings ----------
  const browserZone = (() => { try { return Intl.DateTimeFormat().resolvedOptions().timeZone; } catch { return null; } })();
  async function renderSettings() {
    settingsView.replaceChildren(el("h2", { text: "Settings" }), el("p", { class: "muted", text: "Loading…" }));
    let prefs;
    const epoch = state.epoch;
    try {
      prefs = await api("GET", "/api/preferences");
      if (epoch !== state.epoch) return;
    } catch (e) {
      if (epoch !== state.epoch) return;
      settingsView.replaceChildren(el("h2", { text: "Settings" }), el("p", { class: "error", role: "alert", text: "Could not load your settings: " + e.message }));
      return;
    }
    const field = (label, control, hint) => el("label", { class: "field" }, el("span", { text: label }), control, hint ? el("small", { text: hint }) : null);
    const zones = (() => { try { return Intl.supportedValuesOf("timeZone"); } catch { return []; } })();
    const zoneList = el("datalist", { id: "steward-zones" }, ...zones.map((z) => el("option", { value: z })));
    const tz = el("input", { name: "time_zone", list: "steward-zones", value: prefs.time_zone, autocomplete: "off", spellcheck: "false" });
    const useBrowser = browserZone && browserZone !== prefs.time_zone
      ? el("button", { type: "button", class: "link", text: `Use this device's zone (${browserZone})`, onclick: () => { tz.value = browserZone; touch("time_zone"); } })
      : null;
    const email = el("input", { name: "email", type: "email", value: prefs.email || "", autocomplete: "email", placeholder: "you@example.com" });
    const emailState = prefs.email ? (prefs.email_verified ? "verified" : "not verified yet: open the link we emailed you") : "";
    const quietOn = el("input", { type: "checkbox", name: "quiet_on", checked: !!prefs.quiet_hours });
    const quietStart = el("input", { type: "time", name: "quiet_start", value: prefs.quiet_hours ? prefs.quiet_hours.start : "22:00", "aria-label": "Quiet hours start" });
    const quietEnd = el("input", { type: "time", name: "quiet_end", value: prefs.quiet_hours ? prefs.quiet_hours.end : "07:00", "aria-label": "Quiet hours end" });
    const freq = el("select", { name: "digest_frequency" }, ...["off", "daily", "weekly"].map((f) => el("option", { value: f, selected: prefs.digest.frequency === f, text: f })));
    const weekdays = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"];
    const weekday = el("select", { name: "digest_weekday", "aria-label": "Digest day" },
      ...weekdays.map((d) => el("option", { value: d, selected: (prefs.digest.weekday || "monday").toLowerCase().startsWith(d.slice(0, 3)), text: d[0].toUpperCase() + d.slice(1) })));
    const dtime = el("input", { type: "time", name: "digest_time", value: prefs.digest.time || "08:00", "aria-label": "Digest time" });
    const syncDigest = () => { weekday.disabled = freq.value !== "weekly"; dtime.disabled = freq.value === "off"; };
    freq.addEventListener("change", syncDigest);
    syncDigest();
    const chEmail = el("input", { type: "checkbox", name: "channel_email", checked: prefs.channels.email });
    const chPush = el("input", { type: "checkbox", name: "channel_push", checked: prefs.channels.push });
    const result = el("p", { class: "result", role: "status", "aria-live": "polite" });
    const pushNote = el("p", { class: "muted push-note", role: "status", "aria-live": "polite" });
    const form = el("form", { class: "settings" },
      el("fieldset", {}, el("legend", { text: "Email" }), field("Address", email, emailState)),
      el("fieldset", {}, el("legend", { text: "Time" }), field("Time zone", tz), useBrowser, zoneList,
        el("label", { class: "check" }, quietOn, " Quiet hours"),
        el("div", { class: "row" }, quietStart, el("span", { text: "to" }), quietEnd)),
      el("fieldset", {}, el("legend", { text: "Digest" }), field("How often", freq), el("div", { class: "row" }, weekday, dtime)),
      el("fieldset", {}, el("legend", { text: "Channels" }),
        el("label", { class: "check" }, chPush, " Browser notifications"),
        el("label", { class: "check" }, chEmail, " Email"),
        el("button", { type: "button", class: "secondary get-notified", text: "Get notified in this browser", onclick: () => enablePush(pushNote, prefs.push_public_key) }),
        pushNote),
      el("div", { class: "actions" }, el("button", { type: "submit", text: "Save" })),
      result,
      el("p", { class: "muted" }, el("a", { href: prefs.calendar_url, target: "_blank", rel: "noopener noreferrer", text: "Add my due dates to a calendar (iCal feed)" })));
    // Only what the user touched is sent: a form left open does not undo a
    // change made meanwhile in the chat ("no more digests").
    const groupOf = (name) => (/^quiet/.test(name) ? "quiet_hours" : /^digest/.test(name) ? "digest" : /^channel/.test(name) ? "channels" : name);
    const touched = new Set();
    function touch(name) { touched.add(groupOf(name)); state.settingsDirty = true; }
    const onEdit = (e) => { if (e.target.name) touch(e.target.name); };
    form.addEventListener("input", onEdit);
    form.addEventListener("change", onEdit);
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      const all = {
        time_zone: tz.value.trim(),
        email: email.value.trim() || null,
        quiet_hours: quietOn.checked ? { start: quietStart.value, end: quietEnd.value } : null,
        digest: freq.value === "off" ? { frequency: "off" }
          : freq.value === "weekly" ? { frequency: "weekly", weekday: weekday.value, time: dtime.value }
            : { frequency: "daily", time: dtime.value },
        channels: { push: chPush.checked, email: chEmail.checked },
      };
      const update = Object.fromEntries(Object.entries(all).filter(([k]) => touched.has(k)));
      if (!Object.keys(update).length) { result.textContent = "Nothing changed."; return; }
      result.className = "result";
      result.textContent = "Saving…";
      try {
        const next = await api("PUT", "/api/preferences", update);
        result.textContent = "Saved." + (next.email && !next.email_verified ? ` We sent a link to ${next.email} to confirm the address.` : "");
        state.settingsDirty = false;
        touched.clear();
      } catch (err) {
        result.className = "result error";
        result.textContent = "Not saved: " + err.message;
      }
    });
    settingsView.replaceChildren(el("h2", { text: "Settings" }), form);
  }
  const b64ToBytes = (s) => {
    const raw = atob((s + "=".repeat((4 - (s.length % 4)) % 4)).replace(/-/g, "+").replace(/_/g, "/"));
    return Uint8Array.from(raw, (c) => c.charCodeAt(0));
  };
  async function enablePush(note, key) {
    const say = (t) => { note.textContent = t; };
    if (!cfg.serviceWorker) return say("Browser notifications need the host page to serve steward's service worker (data-service-worker).");
    if (!("serviceWorker" in navigator) || !("PushManager" in window) || !("Notification" in window)) {
      return say("This browser can't receive push notifications; you will still get them here and by email.");
    }
    try {
      const permission = await Notification.requestPermission();
      if (permission !== "granted") return say("Notifications are blocked for this site; allow them in the browser's site settings.");
      say("Setting up…");
      await navigator.serviceWorker.register(cfg.serviceWorker);
      const reg = await navigator.serviceWorker.ready;
      const publicKey = key || (await api("GET", "/api/push/key")).public_key;
      let sub = await reg.pushManager.getSubscription();
      if (!sub) sub = await reg.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: b64ToBytes(publicKey) });
      const json = sub.toJSON();
      await api("POST", "/api/push/subscribe", { endpoint: json.endpoint, keys: json.keys });
      say("Browser notifications are on for this device.");
    } catch (e) {
      say("Could not turn on browser notifications: " + (e.message || e));
    }
  }

  // ---------- the connection ----------
  // Every socket gets a generation; async work started for one socket checks
  // it after each await and stops if the socket was replaced meanwhile.
  function socketUrl() {
    const u = new URL(SERVER + "/ws");
    u.protocol = u.protocol === "https:" ? "wss:" : "ws:";
    if (cfg.token) u.searchParams.set("token", cfg.token);
    else if (cfg.user) u.searchParams.set("user", cfg.user);
    return u.toString();
  }
  function send(frame) {
    const s = state.socket;
    if (!s || s.readyState !== WebSocket.OPEN || state.status !== "online") return false;
    s.send(JSON.stringify(frame));
    return true;
  }
  function connect() {
    clearTimeout(state.retryTimer);
    if (state.socket || state.signedOut) return;
    state.gen += 1;
    state.buffer = null;
    state.syncing = null;
    setStatus("connecting", state.retry ? "reconnecting…" : "connecting…");
    let socket;
    try {
      socket = new WebSocket(socketUrl());
    } catch {
      scheduleReconnect();
      return;
    }
    state.socket = socket;
    socket.onmessage = (e) => {
      if (state.socket !== socket) return;
      let frame;
      try { frame = JSON.parse(e.data); } catch { return; }
      onFrame(frame);
    };
    socket.onclose = (e) => {
      if (state.socket !== socket) return;
      dropped();
      if (e.code === 4001) {
        // The token expired: the host page hands a fresh one to setToken,
        // which reconnects. Retrying with the old one would be refused.
        setStatus("offline", "session expired — waiting for a new sign-in");
        window.dispatchEvent(new CustomEvent("steward:token-expired"));
        return;
      }
      scheduleReconnect(e.code);
    };
    socket.onerror = () => { /* onclose follows */ };
  }
  /** The socket is gone: what was in flight on it is now of unknown fate. */
  function dropped() {
    state.socket = null;
    state.gen += 1;
    state.buffer = null;
    state.syncing = null;
    clearInterval(state.pingTimer);
    clearTimeout(state.pongTimer);
    clearTimeout(state.resyncTimer);
    for (const o of state.outgoing) if (o.status === "sent") markOutgoing(o, "unsure");
    // A half-streamed answer will not be finished on this socket; the stored
    // answer comes with the resync after reconnecting.
    if (state.streams.size) state.awaitAnswer = true;
    for (const s of state.streams.values()) s.bubble.remove();
    state.streams.clear();
    for (const li of state.proposalCards.values()) { li.dataset.busy = "false"; syncProposalButtons(li); }
  }
  async function scheduleReconnect(code) {
    state.retry += 1;
    // 1 s, 2 s, 4 s … capped at 30 s, with jitter so a restarted server is
    // not hit by every widget at once.
    const base = Math.min(30000, 1000 * 2 ** Math.min(state.retry - 1, 5));
    const wait = Math.round(base / 2 + Math.random() * base / 2);
    setStatus("offline", `offline — retrying in ${Math.ceil(wait / 1000)} s`);
    state.retryTimer = setTimeout(connect, wait);
    if (state.retry >= 2 && code === 1006) {
      // A refused upgrade looks like a dropped connection; REST says why.
      try {
        await api("GET", "/api/preferences");
      } catch (e) {
        if ((e.status === 401 || e.status === 403 || e.status === 400) && !state.socket) {
          setStatus("offline", "can't sign in: " + e.message);
        }
      }
    }
  }
  function startHeartbeat() {
    clearInterval(state.pingTimer);
    state.pingTimer = setInterval(() => {
      if (!send({ type: "ping" })) return;
      clearTimeout(state.pongTimer);
      state.pongTimer = setTimeout(() => { // no answer: the connection is dead
        const s = state.socket;
        if (s) { dropped(); s.close(); scheduleReconnect(); }
      }, PONG_WITHIN_MS);
    }, PING_EVERY_MS);
  }

  function onFrame(frame) {
    // Frames that arrive while the thread is rebuilt are applied after it.
    if (state.buffer && frame.type !== "pong") { state.buffer.push(frame); return undefined; }
    switch (frame.type) {
      case "ready": return onReady(frame);
      case "message": return onMessage(frame);
      case "delta": return onDelta(frame);
      case "reply": return onReply(frame);
      case "plan": return onPlan(frame.plan, frame.shown);
      case "proposal": return placeProposal(frame.proposal);
      case "notification": return onNotification(frame.notification, true);
      case "error": return onError(frame);
      case "pong": clearTimeout(state.pongTimer); return undefined;
      default: return undefined;
    }
  }

  async function onReady(frame, attempt = 0) {
    const gen = state.gen;
    for (const p of frame.plans || []) state.plans.set(p.id, p);
    setStatus("resyncing", "syncing…");
    const synced = await resync(gen);
    if (gen !== state.gen) return; // this socket is gone; its successor resyncs
    if (!synced && attempt < 3) {
      // Keep the socket and try again before sending anything.
      const wait = 1000 * 2 ** attempt;
      setStatus("resyncing", `could not load the conversation; retrying in ${Math.ceil(wait / 1000)} s`);
      setTimer("resyncTimer", () => { if (gen === state.gen) onReady(frame, attempt + 1); }, wait);
      return;
    }
    if (!synced) {
      // Still failing: chat anyway, and say what is missing.
      const line = errorLine("The earlier conversation could not be loaded; new messages still work.");
      line.append(el("button", { type: "button", class: "link", text: "Try again", onclick: () => { line.remove(); resync(state.gen); } }));
      append(line);
    }
    state.retry = 0;
    // What waited while no socket was open counts as unread.
    const waited = frame.notifications || [];
    for (const n of waited) onNotification(n, false);
    if (waited.length && (!state.open || document.hidden)) setUnread(state.unread + waited.length);
    setStatus("online", "online");
    startHeartbeat();
    flushOutgoing();
    state.answerChecks = 0;
    checkForAnswer(gen);
  }

  function setTimer(name, fn, wait) {
    clearTimeout(state[name]);
    state[name] = setTimeout(fn, wait);
  }

  /**
   * Rebuilds the thread from the server's record of the conversation and
   * settles messages whose fate was unknown: there (by id) or sent again.
   * Frames arriving meanwhile are held and applied after. One resync runs
   * at a time; asking again while one runs runs it once more after. False
   * if the conversation could not be loaded or the socket changed.
   */
  function resync(gen) {
    if (state.syncing) {
      state.syncAgain = true;
      return state.syncing;
    }
    if (!state.buffer) state.buffer = [];
    const run = (async () => {
      let ok;
      do {
        state.syncAgain = false;
        ok = await resyncOnce(gen);
      } while (ok && state.syncAgain && gen === state.gen);
      return ok;
    })();
    state.syncing = run;
    run.finally(() => {
      if (state.syncing !== run) return; // the socket changed: it was reset
      state.syncing = null;
      const held = state.buffer || [];
      state.buffer = null;
      for (const f of held) onFrame(f);
    });
    return run;
  }

  async function resyncOnce(gen) {
    let body;
    try {
      body = await api("GET", "/api/conversation?limit=200");
    } catch {
      return false;
    }
    if (gen !== state.gen) return false;
    const hadFocus = root.activeElement && thread.contains(root.activeElement);
    for (const p of body.plans) state.plans.set(p.id, p);
    const proposals = new Map(body.proposals.map((p) => [p.id, p]));
    const streaming = [...state.streams.values()].map((s) => s.bubble);
    const mine = new Map(state.outgoing.map((o) => [o.id, o]));
    const placed = new Set();
    thread.setAttribute("aria-busy", "true");
    thread.replaceChildren();
    state.planCards.clear();
    state.proposalCards.clear();
    state.notified.clear();
    state.answered.clear();
    state.shown.clear();
    state.echoed = null;
    if (!body.items.length) thread.append(empty);
    // A card is shown where the plan was last shown.
    const lastShown = new Map();
    body.items.forEach((item, i) => { if (item.kind === "plan") lastShown.set(item.plan_id, i); });
    let lastUser = null;
    body.items.forEach((item, i) => {
      switch (item.kind) {
        case "user": {
          // One of ours: the server has it. Its bubble takes this place.
          const o = item.id && mine.get(item.id);
          if (o) {
            placed.add(o);
            append(o.el);
            if (o.status !== "sent") { dropOutgoing(o, true); state.awaitAnswer = true; }
          } else {
            append(userBubble(item.text, item.at));
          }
          lastUser = item.id || null;
          if (item.id) state.shown.add(item.id);
          break;
        }
        case "assistant":
          if (lastUser) state.answered.add(lastUser);
          if (!(lastUser && state.streams.has(lastUser))) append(assistantBubble(item.text, item.at));
          break;
        case "notification": onNotification(item.notification, false); break;
        case "plan": if (lastShown.get(item.plan_id) === i) placePlanCard(item.plan_id); break;
        case "proposal": {
          const p = proposals.get(item.proposal_id);
          if (p && !state.proposalCards.has(p.id)) placeProposal(p);
          break;
        }
        default: break;
      }
    });
    // The rest of ours never arrived: they go (again) once online; the
    // server refuses an id it already has, so a resend cannot run twice.
    for (const o of state.outgoing) {
      if (placed.has(o)) continue;
      if (o.status === "unsure") markOutgoing(o, "queued");
      append(o.el);
    }
    for (const b of streaming) if (!b.isConnected) append(b);
    thread.setAttribute("aria-busy", "false");
    state.lastItem = body.items[body.items.length - 1] || null;
    state.busy = !!body.busy;
    scrollDown(true);
    if (hadFocus) thread.focus();
    return true;
  }

  /**
   * After a drop, an answer may still be on its way into the store (its
   * socket is gone): look again while the server says a turn is running,
   * and if none is and no answer came, say so and offer to send again.
   */
  function checkForAnswer(gen) {
    const last = state.lastItem;
    const unanswered = last && last.kind === "user";
    const inFlight = state.streams.size || state.outgoing.some((o) => o.status === "sent");
    if (!state.awaitAnswer || !unanswered || inFlight) {
      state.awaitAnswer = false;
      return;
    }
    if (!state.busy && state.answerChecks >= 2) {
      state.awaitAnswer = false;
      const line = errorLine("No answer arrived for your last message (the connection dropped while it was being answered).");
      line.append(el("button", { type: "button", class: "link", text: "Send again", onclick: () => { line.remove(); queueMessage(last.text, true); } }));
      append(line);
      return;
    }
    if (state.answerChecks >= 60) { state.awaitAnswer = false; return; }
    const wait = Math.min(5000, 1000 * 2 ** state.answerChecks);
    state.answerChecks += 1;
    setTimer("resyncTimer", async () => {
      if (gen !== state.gen || state.status !== "online") return;
      if (await resync(gen)) checkForAnswer(gen);
    }, wait);
  }

  function onPlan(plan, shown) {
    state.plans.set(plan.id, plan);
    if (shown) placePlanCard(plan.id);
    else if (state.planCards.has(plan.id)) refreshPlanCard(plan);
    else {
      const from = [...state.proposals.values()].find((p) => p.plan_id === plan.id && p.status === "accepted");
      if (from && state.proposalCards.has(from.id)) placePlanCard(plan.id, state.proposalCards.get(from.id));
    }
    if (state.view === "plans") renderPlansView();
  }

  function onNotification(n, live) {
    if (state.notified.has(n.id)) return;
    state.notified.add(n.id);
    append(notificationBubble(n));
    if (live) {
      announce((NOTIFICATION_LABEL[n.kind] || "Update") + ": " + n.text);
      if (!state.open || document.hidden) setUnread(state.unread + 1);
    }
  }

  function streamFor(id) {
    let s = state.streams.get(id);
    if (!s) {
      const bubble = el("div", { class: "msg assistant streaming", "aria-busy": "true" }, el("span", { class: "who visually-hidden", text: cfg.title + ":" }), el("div", { class: "md" }));
      const o = state.outgoing.find((x) => x.id === id);
      if (o && o.el.isConnected) o.el.after(bubble); else append(bubble);
      s = { bubble, text: "" };
      state.streams.set(id, s);
    }
    return s;
  }
  /** Cards a turn produces go below its answer: make room for the answer. */
  function answerSlot() {
    const waiting = state.outgoing.find((o) => o.status === "sent");
    const id = waiting ? waiting.id : state.echoed;
    if (id && state.status === "online") streamFor(id);
  }
  /** A message the user sent from another tab or device: shown here too. */
  function onMessage(f) {
    if (state.shown.has(f.id) || state.outgoing.some((o) => o.id === f.id)) return;
    state.shown.add(f.id);
    state.echoed = f.id;
    append(userBubble(f.text, new Date().toISOString()));
    scrollDown();
  }
  function onDelta(f) {
    if (state.answered.has(f.reply_to) && !state.streams.has(f.reply_to)) return; // drawn from the server
    const s = streamFor(f.reply_to);
    s.text += f.text;
    s.bubble.children[1].replaceWith(markdown(s.text));
    scrollDown();
    const o = state.outgoing.find((x) => x.id === f.reply_to);
    if (o) dropOutgoing(o, true);
  }
  function onReply(f) {
    if (state.echoed === f.reply_to) state.echoed = null;
    if (state.answered.has(f.reply_to) && !state.streams.has(f.reply_to)) {
      const o = state.outgoing.find((x) => x.id === f.reply_to);
      if (o) dropOutgoing(o, true);
      return; // the answer is already in the thread, from the server's record
    }
    const s = streamFor(f.reply_to);
    s.bubble.children[1].replaceWith(markdown(f.text));
    s.bubble.classList.remove("streaming");
    s.bubble.setAttribute("aria-busy", "false");
    s.bubble.append(stamp(new Date().toISOString()));
    state.streams.delete(f.reply_to);
    const o = state.outgoing.find((x) => x.id === f.reply_to);
    if (o) dropOutgoing(o, true);
    announce(cfg.title + ": " + f.text.slice(0, 300));
    scrollDown();
  }
  function onError(f) {
    if (f.reply_to && state.echoed === f.reply_to) state.echoed = null;
    if (f.reply_to) {
      const o = state.outgoing.find((x) => x.id === f.reply_to);
      const s = state.streams.get(f.reply_to);
      if (s) { s.bubble.remove(); state.streams.delete(f.reply_to); }
      if (f.code === "duplicate_message") {
        // It arrived before the connection dropped: the server's copy (and
        // its answer) come with a resync.
        if (o) dropOutgoing(o);
        state.awaitAnswer = true;
        state.answerChecks = 0;
        const gen = state.gen;
        setTimer("resyncTimer", async () => {
          if (gen === state.gen && state.status === "online" && await resync(gen)) checkForAnswer(gen);
        }, 300);
        return;
      }
      if (o) {
        dropOutgoing(o, true);
        const retry = f.code === "rate_limited" || f.code === "busy" || f.code === "model_unavailable";
        const line = errorLine(f.message);
        if (retry) {
          line.append(el("button", { type: "button", class: "link", text: "Send again", onclick: () => { line.remove(); queueMessage(o.text, true); } }));
        }
        o.el.after(line);
        announce(f.message);
        return;
      }
    }
    // An error without reply_to answers a confirm (or a bad frame): the
    // proposal buttons work again; a stale proposal's card is updated by
    // the proposal frame that comes with it.
    settleConfirms();
    append(errorLine(f.message));
    announce(f.message);
  }
  function settleConfirms() {
    clearTimeout(state.confirmTimer);
    for (const li of state.proposalCards.values()) {
      if (li.dataset.busy === "true") { li.dataset.busy = "false"; syncProposalButtons(li); }
    }
  }

  // ---------- sending ----------
  // Each tab keeps its queue under its own key with a heartbeat; a tab
  // adopts the queues of tabs that are gone (closed: marked at pagehide;
  // crashed: no heartbeat for 15 s). If two tabs ever send one message, the
  // server runs it once (it refuses an id and text it already has).
  const TAB = Math.random().toString(36).slice(2, 10);
  const BEAT_MS = 5000;
  const queueKey = () => STORE_KEY + ":queue:" + TAB;
  function persistQueue(beat = Date.now()) {
    try {
      if (state.outgoing.length) {
        const items = state.outgoing.map((o) => ({ id: o.id, text: o.text }));
        localStorage.setItem(queueKey(), JSON.stringify({ beat, items }));
      } else {
        localStorage.removeItem(queueKey());
      }
    } catch { /* storage full or blocked: the queue lives in memory only */ }
  }
  function adoptQueues() {
    if (state.signedOut) return;
    const prefix = STORE_KEY + ":queue:";
    const found = [];
    try {
      const keys = [];
      for (let i = 0; i < localStorage.length; i++) {
        const key = localStorage.key(i);
        if (key && key.startsWith(prefix) && key !== queueKey()) keys.push(key);
      }
      for (const key of keys) {
        let entry = null;
        try { entry = JSON.parse(localStorage.getItem(key) || "null"); } catch { /* damaged: drop it */ }
        if (entry && Date.now() - (entry.beat || 0) < 3 * BEAT_MS) continue; // that tab is alive
        if (entry && Array.isArray(entry.items)) found.push(...entry.items);
        localStorage.removeItem(key);
      }
    } catch { return; }
    for (const q of found) {
      if (typeof q.id !== "string" || typeof q.text !== "string" || state.outgoing.some((o) => o.id === q.id)) continue;
      const bubble = userBubble(q.text, null);
      bubble.append(el("span", { class: "delivery" }));
      const o = { id: q.id, text: q.text, status: "unsure", el: bubble };
      state.outgoing.push(o);
      markOutgoing(o, "unsure");
      append(bubble);
    }
    persistQueue();
  }
  function markOutgoing(o, status) {
    o.status = status;
    o.el.dataset.status = status;
    const label = { queued: "waiting to send", sent: "sent", unsure: "checking…" }[status] || "";
    o.el.querySelector(".delivery").textContent = label;
  }
  function dropOutgoing(o, keepBubble) {
    state.outgoing = state.outgoing.filter((x) => x !== o);
    o.el.removeAttribute("data-status");
    const d = o.el.querySelector(".delivery");
    if (d) d.remove();
    if (!keepBubble) o.el.remove();
    persistQueue();
  }
  function queueMessage(text, now) {
    if (state.signedOut) return;
    const id = `w${Date.now().toString(36)}-${TAB}-${(state.counter++).toString(36)}`;
    const bubble = userBubble(text, null);
    bubble.append(el("span", { class: "delivery" }));
    const o = { id, text, status: "queued", el: bubble };
    state.outgoing.push(o);
    markOutgoing(o, "queued");
    append(bubble);
    scrollDown(true);
    persistQueue();
    if (now) flushOutgoing();
  }
  function flushOutgoing() {
    for (const o of state.outgoing) {
      if (o.status !== "queued") continue;
      if (!send({ type: "message", id: o.id, text: o.text })) return;
      markOutgoing(o, "sent");
    }
  }
  composer.addEventListener("submit", (e) => {
    e.preventDefault();
    const text = input.value.trim();
    if (!text) return;
    queueMessage(text, true);
    input.value = "";
    autosize();
  });
  input.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      composer.requestSubmit();
    }
  });
  const autosize = () => {
    input.style.height = "auto";
    input.style.height = Math.min(input.scrollHeight, 140) + "px";
  };
  input.addEventListener("input", autosize);

  /** Forgets everything shown for the current user (another user signs in). */
  function resetForUser() {
    const s = state.socket;
    if (s) { dropped(); s.close(1000, "user changed"); }
    clearTimeout(state.retryTimer);
    clearTimeout(state.resyncTimer);
    for (const o of state.outgoing) o.el.remove();
    state.outgoing = [];
    state.streams.clear();
    state.plans.clear();
    state.proposals.clear();
    state.planCards.clear();
    state.proposalCards.clear();
    state.notified.clear();
    state.awaitAnswer = false;
    state.retry = 0;
    thread.replaceChildren(empty);
    plansList.replaceChildren();
    settingsView.replaceChildren();
    state.settingsDirty = false;
    state.epoch += 1;
    STORE_KEY = storeKey();
    input.disabled = state.signedOut;
    sendButton.disabled = state.signedOut;
    if (!state.signedOut) {
      setUnread(saved().unread || 0);
      adoptQueues();
    }
  }

  document.addEventListener("visibilitychange", () => {
    if (!document.hidden && state.open) setUnread(0);
    if (!document.hidden && !state.socket) connect();
  });
  window.addEventListener("online", () => { if (!state.socket) { state.retry = 0; connect(); } });
  // A closing tab leaves its queue to the next one at once.
  window.addEventListener("pagehide", () => persistQueue(0));
  setInterval(() => { persistQueue(); adoptQueues(); }, BEAT_MS);

  function mount() {
    document.body.append(host);
    setUnread(saved().unread || 0);
    adoptQueues();
    // Reopened as it was, without taking the host page's focus.
    if (cfg.open || saved().open) setOpen(true, { focus: cfg.open });
    connect();
  }
  if (document.body) mount(); else document.addEventListener("DOMContentLoaded", mount);

  // A small API for the host page.
  window.Steward = {
    open: () => setOpen(true),
    close: () => setOpen(false),
    /**
     * A fresh token before the old one expires; if it is another user's,
     * everything shown for the previous user is cleared first.
     */
    setToken: (token) => {
      const next = String(token);
      const changed = subject(next) !== subject(cfg.token || "");
      cfg.token = next;
      cfg.user = null;
      state.signedOut = false;
      if (changed) resetForUser();
      if (!state.socket) { state.retry = 0; connect(); }
    },
    /** Signs out: disconnects and forgets this user's queue and thread here. */
    signOut: async () => {
      // This browser stops getting the user's pushes (best effort).
      try {
        const reg = "serviceWorker" in navigator && (await navigator.serviceWorker.getRegistration());
        const sub = reg && (await reg.pushManager.getSubscription());
        if (sub) {
          await api("DELETE", "/api/push/subscribe", { endpoint: sub.endpoint }).catch(() => {});
          await sub.unsubscribe();
        }
      } catch { /* no push here */ }
      try { localStorage.removeItem(STORE_KEY); localStorage.removeItem(queueKey()); } catch { /* ignore */ }
      state.signedOut = true;
      cfg.token = null;
      cfg.user = null;
      resetForUser();
      setStatus("offline", "signed out");
    },
    send: (text) => { if (String(text).trim()) { setOpen(true); queueMessage(String(text).trim().slice(0, MAX_TEXT), true); } },
    get state() { return state.status; },
  };
})();
