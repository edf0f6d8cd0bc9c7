// Developer console for steward's /ws protocol. Everything from the server
// is shown with textContent, never as HTML.
"use strict";

const $ = (id) => document.getElementById(id);
const plans = new Map();
let socket = null;
let counter = 0;
const pending = new Map(); // message id -> element showing the streaming reply

function add(kind, text) {
  const li = document.createElement("li");
  li.className = kind;
  li.textContent = text;
  $("thread").appendChild(li);
  li.scrollIntoView({ block: "end" });
  return li;
}

function due(at) {
  if (!at) return "";
  const d = new Date(at);
  return " — due " + d.toLocaleDateString(undefined, { weekday: "short", month: "short", day: "numeric" });
}

function renderPlans() {
  const box = $("plans");
  box.replaceChildren();
  for (const plan of plans.values()) {
    const card = document.createElement("article");
    card.className = "plan " + plan.status;
    const done = plan.steps.filter((s) => s.status === "completed").length;
    const h = document.createElement("h3");
    h.textContent = `${plan.title} (${plan.id}) — ${done}/${plan.steps.length} done, v${plan.version}`;
    card.appendChild(h);
    const list = document.createElement("ol");
    for (const step of plan.steps) {
      const li = document.createElement("li");
      li.className = step.status;
      li.textContent = `${step.title} [${step.status.replace("_", " ")}]${due(step.due_at)}` +
        (step.depends_on.length ? ` — after ${step.depends_on.join(", ")}` : "") +
        (step.result ? ` — ${step.result}` : "");
      list.appendChild(li);
    }
    card.appendChild(list);
    box.appendChild(card);
  }
}

function onFrame(frame) {
  switch (frame.type) {
    case "ready":
      plans.clear();
      for (const p of frame.plans) plans.set(p.id, p);
      renderPlans();
      for (const n of frame.notifications || []) add("assistant", `🔔 ${n.text}`);
      break;
    case "notification":
      add("assistant", `🔔 ${frame.notification.text}`);
      break;
    case "delta": {
      let el = pending.get(frame.reply_to);
      if (!el) { el = add("assistant", ""); pending.set(frame.reply_to, el); }
      el.textContent += frame.text;
      break;
    }
    case "reply": {
      const el = pending.get(frame.reply_to) || add("assistant", "");
      el.textContent = frame.text;
      pending.delete(frame.reply_to);
      break;
    }
    case "plan":
      if (frame.plan.status === "active") plans.set(frame.plan.id, frame.plan);
      else plans.delete(frame.plan.id);
      renderPlans();
      break;
    case "error":
      add("error", `${frame.code}: ${frame.message}`);
      if (frame.reply_to) pending.delete(frame.reply_to);
      break;
    default:
      break;
  }
}

function connect() {
  if (socket) socket.close();
  const user = encodeURIComponent($("user").value.trim() || "demo");
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  socket = new WebSocket(`${scheme}://${location.host}/ws?user=${user}`);
  $("state").textContent = "connecting…";
  socket.onopen = () => { $("state").textContent = "online"; };
  socket.onclose = (e) => { $("state").textContent = `offline (${e.code})`; };
  socket.onmessage = (e) => onFrame(JSON.parse(e.data));
}

$("connect").addEventListener("click", connect);
$("composer").addEventListener("submit", (e) => {
  e.preventDefault();
  const text = $("text").value.trim();
  if (!text || !socket || socket.readyState !== WebSocket.OPEN) return;
  const id = `c${Date.now()}-${counter++}`;
  add("user", text);
  socket.send(JSON.stringify({ type: "message", id, text }));
  $("text").value = "";
});
setInterval(() => {
  if (socket && socket.readyState === WebSocket.OPEN) socket.send('{"type":"ping"}');
}, 30000);
connect();
