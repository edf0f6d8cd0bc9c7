// End-to-end tests of the widget in real headless Chromium (Debian's
// package) driven by playwright-core, against the real steward binary in
// loopback dev mode with the offline engine. Run by `cargo test` through
// tests/it/browser.rs, which runs setup.sh first; or by hand:
//   E2E_STEWARD_BIN=target/debug/steward node --test tests/e2e/
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { createServer } from "node:http";
import { chromium } from "playwright-core";

const BIN = process.env.E2E_STEWARD_BIN;
const CHROMIUM = process.env.E2E_CHROMIUM || "/usr/bin/chromium";
const SHOTS = process.env.E2E_SCREENSHOTS || join(tmpdir(), "steward-screenshots");
const AXE = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");
const ROOT = resolve(fileURLToPath(import.meta.url), "../../..");
const WAIT = 20000; // generous: the whole test suite shares two cores
assert.ok(BIN, "E2E_STEWARD_BIN must point at the steward binary");
mkdirSync(SHOTS, { recursive: true });

const dataDir = mkdtempSync(join(tmpdir(), "steward-e2e-"));
let server = null;
let base = null;
let browser = null;

/** Starts steward on `addr`; resolves with its base URL once it listens. */
function startServer(addr, { data = dataDir, args = [] } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(BIN, ["serve", "--addr", addr, "--data", data, ...args], {
      cwd: ROOT, // the defaults: static/, prompts/, templates/
      env: { ...process.env, RUST_LOG: "warn" },
      stdio: ["ignore", "pipe", "inherit"],
    });
    const timer = setTimeout(() => reject(new Error("steward did not start within 30 s")), 30000);
    let out = "";
    child.stdout.on("data", (chunk) => {
      out += chunk;
      const m = /steward listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(out);
      if (m) { clearTimeout(timer); resolve({ child, url: m[1] }); }
    });
    child.on("exit", (code) => { clearTimeout(timer); reject(new Error(`steward exited with ${code}: ${out}`)); });
  });
}
async function restartOnSamePort() {
  const port = new URL(base).port;
  // The port was just freed; another process could take it, so retry briefly.
  for (let attempt = 0; ; attempt++) {
    try {
      server = (await startServer(`127.0.0.1:${port}`)).child;
      return;
    } catch (e) {
      if (attempt >= 20) throw e;
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}
function killServer() {
  return new Promise((resolve) => {
    if (!server || server.exitCode !== null) return resolve();
    server.removeAllListeners("exit");
    server.once("exit", () => resolve());
    server.kill("SIGKILL");
  });
}

before(async () => {
  const started = await startServer("127.0.0.1:0");
  server = started.child;
  base = started.url;
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    // Without the background-networking flags Chromium keeps dialling
    // Google hosts that this machine's closed network refuses.
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
      "--disable-component-update", "--disable-sync"],
  });
});

after(async () => {
  if (browser) await browser.close();
  await killServer();
  rmSync(dataDir, { recursive: true, force: true });
});

/** A fresh browser profile (its own storage) on the demo page as `user`. */
async function openDemo(user, options = {}) {
  const context = await browser.newContext({ viewport: { width: 1180, height: 820 }, ...options });
  const page = await context.newPage();
  const problems = [];
  page.on("pageerror", (e) => problems.push(e.message));
  page.on("dialog", (d) => { problems.push("dialog: " + d.message()); d.dismiss(); });
  // The pages are served with a strict Content-Security-Policy: the widget
  // must never need anything it forbids.
  page.on("console", (m) => { if (m.type() === "error" && /Content Security Policy/i.test(m.text())) problems.push("csp: " + m.text()); });
  await page.goto(`${base}/?user=${user}`);
  const w = page.locator("#steward-widget");
  await w.locator(".panel[data-state=online]").waitFor({ timeout: WAIT });
  return { context, page, w, problems };
}
const shot = (page, name) => page.screenshot({ path: join(SHOTS, name + ".png") });
async function say(w, text) {
  const box = w.getByRole("textbox", { name: "Message" });
  await box.fill(text);
  await box.press("Enter");
}
/** Thread items as compact text, for comparing whole conversations. */
async function threadText(w) {
  return w.locator(".thread > *").evaluateAll((items) => items.map((li) => {
    if (li.querySelector(".plan-card")) return "plan:" + li.querySelector(".plan-card").dataset.planId;
    if (li.querySelector(".proposal-card")) return "proposal:" + li.querySelector(".proposal-card").dataset.proposalId + ":" + li.querySelector(".outcome, .actions")?.textContent.trim();
    return [...li.classList].join(".") + ":" + (li.querySelector(".text, .md")?.textContent ?? li.textContent).trim();
  }));
}

/** Waits until `text` was delivered (no pending status) and a finished answer follows it. */
function answered(page, text) {
  return page.waitForFunction((t) => {
    const items = [...document.querySelector("#steward-widget").shadowRoot.querySelectorAll(".thread > *")];
    const asked = items.findIndex((li) => li.classList.contains("user") && li.textContent.includes(t));
    return asked >= 0 && !items[asked].dataset.status
      && items.slice(asked + 1).some((li) => li.classList.contains("assistant") && !li.classList.contains("streaming"));
  }, text, { timeout: WAIT });
}
/** How many times the server's record of the conversation holds `text` from the user. */
async function serverCopies(page, user, text) {
  const body = await (await page.request.get(`${base}/api/conversation?user=${user}`)).json();
  return body.items.filter((i) => i.kind === "user" && i.text === text).length;
}

let ana; // the first user's page, kept open across tests

test("a goal becomes a proposal; Confirm shows the plan card with its steps and due dates", async () => {
  ana = await openDemo("ana-e2e");
  const { w, page } = ana;
  await shot(page, "01-demo-page");
  await say(w, "help me onboard Ana Souza, she starts December 1");
  const proposal = w.locator(".proposal-card");
  await proposal.waitFor({ timeout: WAIT });
  await assert.doesNotReject(proposal.getByText("New plan: Onboard Ana Souza").waitFor({ timeout: WAIT }));
  const added = await proposal.locator(".change.added").count();
  assert.ok(added >= 5, `the diff lists the steps being added (${added})`);
  await shot(page, "02-proposal");

  await proposal.getByRole("button", { name: "Confirm" }).click();
  await proposal.locator(".outcome").getByText("Confirmed").waitFor({ timeout: WAIT });
  assert.equal(await proposal.getByRole("button", { name: "Confirm" }).count(), 0, "an answered proposal has no live buttons");
  const card = w.locator(".thread .plan-card");
  await card.waitFor({ timeout: WAIT });
  assert.equal(await card.locator(".plan-title").textContent(), "Onboard Ana Souza");
  const steps = card.locator(".step");
  assert.ok((await steps.count()) >= 5);
  assert.match(await card.locator(".plan-state").textContent(), /^0 \/ \d+ done$/);
  const dues = await card.locator(".due").allTextContents();
  assert.ok(dues.length >= 5 && dues.every((d) => /^(due |overdue )/.test(d)), `relative due dates: ${dues}`);
  assert.equal(await card.locator(".step.current").count(), 1, "the current step stands out");
  assert.ok((await card.locator(".waits").count()) >= 1, "steps say what they wait on");
  await card.evaluate((el) => el.scrollIntoView());
  await shot(page, "03-plan-card");
  assert.deepEqual(ana.problems, []);
});

test("“show my onboarding plan” shows the card in the thread; My plans lists it", async () => {
  const { w, page } = ana;
  await say(w, "show my onboarding plan");
  // The card moves below the question and its answer.
  await page.waitForFunction(() => {
    const items = [...document.querySelector("#steward-widget").shadowRoot.querySelectorAll(".thread > *")];
    const asked = items.findIndex((li) => li.classList.contains("user") && li.textContent.includes("show my onboarding plan"));
    const card = items.findIndex((li) => li.querySelector(".plan-card"));
    return asked >= 0 && card > asked && items.slice(asked + 1, card).some((li) => li.classList.contains("assistant"));
  }, null, { timeout: WAIT });
  assert.equal(await w.locator(".thread .plan-card").count(), 1, "one card per plan, updated in place");
  await shot(page, "04-show-plan");

  await w.getByRole("tab", { name: "My plans" }).click();
  await w.locator("#steward-view-plans .plan-card").first().waitFor({ timeout: WAIT });
  assert.equal(await w.locator("#steward-view-plans .plan-title").first().textContent(), "Onboard Ana Souza");
  await shot(page, "05-my-plans");
  await w.getByRole("tab", { name: "Chat" }).click();
});

test("marking a step done updates the card's progress in place", async () => {
  const { w } = ana;
  await say(w, "mark order laptop and equipment for ana souza as done");
  const card = w.locator(".thread .plan-card");
  await card.locator(".plan-state").getByText(/^1 \/ \d+ done$/).waitFor({ timeout: WAIT });
  await w.locator(".msg.assistant:not(.streaming)", { hasText: "Updated." }).waitFor({ timeout: WAIT });
  assert.equal(await card.locator(".step.st-completed").count(), 1);
  assert.equal(await w.locator(".thread .plan-card").count(), 1);
});

test("a reload shows the same conversation and plan", async () => {
  const { w, page } = ana;
  const beforeReload = await threadText(w);
  await page.reload();
  await w.locator(".panel[data-state=online]").waitFor({ timeout: WAIT });
  await w.locator(".thread .plan-card").waitFor({ timeout: WAIT });
  assert.deepEqual(await threadText(w), beforeReload);
  assert.match(await w.locator(".thread .plan-card .plan-state").textContent(), /^1 \/ \d+ done$/);
});

test("after the server is killed and restarted the widget reconnects, resyncs and sends what was typed offline", async () => {
  const { w, page } = ana;
  const beforeKill = await threadText(w);
  await killServer();
  await w.locator(".panel[data-state=offline]").waitFor({ timeout: WAIT });
  assert.match(await w.locator(".status").textContent(), /offline/);
  await say(w, "list my plans");
  await w.locator(".msg.user[data-status=queued]").waitFor({ timeout: WAIT });
  await shot(page, "06-offline");

  await restartOnSamePort();
  await w.locator(".panel[data-state=online]").waitFor({ timeout: 60000 });
  // The queued message went out once and got one answer.
  await answered(page, "list my plans");
  const now = await threadText(w);
  assert.deepEqual(now.slice(0, beforeKill.length), beforeKill, "nothing lost or duplicated");
  assert.equal(await page.evaluate(() => Object.keys(localStorage).filter((k) => k.includes(":queue:")).length), 0,
    "nothing left in the stored queue");
  assert.equal(now.filter((t) => t.includes("list my plans")).length, 1, "the offline message was sent exactly once");
  // The server's own record agrees.
  assert.equal(await serverCopies(page, "ana-e2e", "list my plans"), 1);
  await shot(page, "07-reconnected");
});

test("a message typed offline in a tab that is then closed is sent once by the next tab", async () => {
  await killServer();
  await ana.w.locator(".panel[data-state=offline]").waitFor({ timeout: WAIT });
  await say(ana.w, "what changed in the onboarding plan?");
  await ana.w.locator(".msg.user[data-status=queued]").waitFor({ timeout: WAIT });
  await ana.page.close();
  await restartOnSamePort();
  const page = await ana.context.newPage();
  page.on("pageerror", (e) => ana.problems.push(e.message));
  await page.goto(`${base}/?user=ana-e2e`);
  const w = page.locator("#steward-widget");
  await w.locator(".panel[data-state=online]").waitFor({ timeout: WAIT });
  await answered(page, "what changed in the onboarding plan?");
  assert.equal(await serverCopies(page, "ana-e2e", "what changed in the onboarding plan?"), 1);
  ana.page = page;
  ana.w = w;
});

test("with two tabs open, a message typed offline in one is sent by that tab alone", async () => {
  const other = await ana.context.newPage();
  other.on("pageerror", (e) => ana.problems.push(e.message));
  await other.goto(`${base}/?user=ana-e2e`);
  const w2 = other.locator("#steward-widget");
  await w2.locator(".panel[data-state=online]").waitFor({ timeout: WAIT });
  // The other tab records every pending bubble it ever shows.
  await other.evaluate(() => {
    window.__pending = [];
    const thread = document.querySelector("#steward-widget").shadowRoot.querySelector(".thread");
    new MutationObserver(() => {
      for (const b of thread.querySelectorAll(".msg.user[data-status]")) window.__pending.push(b.textContent);
    }).observe(thread, { subtree: true, childList: true, attributes: true });
  });
  await killServer();
  await ana.w.locator(".panel[data-state=offline]").waitFor({ timeout: WAIT });
  const text = "list my plans, please";
  await say(ana.w, text);
  await ana.w.locator(".msg.user[data-status=queued]").waitFor({ timeout: WAIT });
  await other.waitForTimeout(6000); // past a heartbeat: the other tab looks for orphaned queues
  await restartOnSamePort();
  await answered(ana.page, text);
  await w2.locator(".panel[data-state=online]").waitFor({ timeout: WAIT });
  assert.equal(await serverCopies(ana.page, "ana-e2e", text), 1);
  assert.deepEqual(await other.evaluate((t) => window.__pending.filter((x) => x.includes(t)), text), [],
    "the other tab never took the message over");
  await other.close();
  assert.deepEqual(ana.problems, []);
});

test("a second tab sees the question, the streamed answer and the plan change of a message sent in the first", async () => {
  const other = await ana.context.newPage();
  other.on("pageerror", (e) => ana.problems.push(e.message));
  await other.goto(`${base}/?user=ana-e2e`);
  const w2 = other.locator("#steward-widget");
  await w2.locator(".panel[data-state=online]").waitFor({ timeout: WAIT });
  const text = "show me my onboarding plan";
  await say(ana.w, text);
  await answered(ana.page, text);
  // The other tab shows the question once, then the answer and the card,
  // without a reload.
  await answered(other, text);
  await w2.locator(".thread > *").last().locator(".plan-card").waitFor({ timeout: WAIT });
  const items = await threadText(w2);
  const asked = items.findIndex((i) => i === `msg.user:${text}`);
  assert.ok(asked >= 0, items.join("\n"));
  assert.equal(items.filter((i) => i === `msg.user:${text}`).length, 1, items.join("\n"));
  assert.ok(items[asked + 1].startsWith("msg.assistant:Onboard Ana Souza"), items.join("\n"));
  await other.close();
  assert.deepEqual(ana.problems, []);
});

test("axe finds no WCAG 2.1 A/AA problems in the chat (with cards), My plans and Settings", async () => {
  const { w, page } = ana;
  for (const view of ["Chat", "My plans", "Settings"]) {
    await w.getByRole("tab", { name: view }).click();
    if (view === "Settings") await w.getByRole("button", { name: "Save" }).waitFor({ timeout: WAIT });
    if (view === "My plans") await w.locator("#steward-view-plans .plan-card").first().waitFor({ timeout: WAIT });
    // Evaluated through the DevTools protocol: the page's CSP (this origin's
    // scripts only) rightly refuses an inline script tag.
    await page.evaluate(AXE);
    const violations = await page.evaluate(async () => {
      const result = await window.axe.run(document, { runOnly: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"] });
      return result.violations.map((v) => `${v.id}: ${v.nodes.map((n) => n.target.join(" ")).join(", ")}`);
    });
    assert.deepEqual(violations, [], `${view}: ${violations.join("; ")}`);
  }
  await w.getByRole("tab", { name: "Chat" }).click();
});

test("a second user in another browser context sees none of the first user's plans", async () => {
  const bob = await openDemo("bob-e2e");
  const { w, page } = bob;
  assert.equal(await w.locator(".thread .plan-card, .thread .proposal-card, .thread .msg").count(), 0);
  await w.getByRole("tab", { name: "My plans" }).click();
  await w.getByText("No plans yet").waitFor({ timeout: WAIT });
  // While Bob watches, Ana changes her plan: nothing of it reaches Bob.
  await w.getByRole("tab", { name: "Chat" }).click();
  await say(ana.w, "done with create email, chat and code accounts");
  await ana.w.locator(".thread .plan-card .plan-state").getByText(/^2 \/ \d+ done$/).waitFor({ timeout: WAIT });
  await page.waitForTimeout(500);
  assert.equal(await w.locator(".thread .plan-card, .thread .proposal-card, .thread .msg").count(), 0);
  const plans = await (await page.request.get(`${base}/api/plans?user=bob-e2e&include_closed=true`)).json();
  assert.deepEqual(plans, { plans: [] });
  await bob.context.close();
});

test("Markdown and HTML in step titles and messages show as text", async () => {
  const eve = await openDemo("eve-e2e");
  const { w, page } = eve;
  await page.evaluate(() => { window.__owned = false; });
  await say(w, "help me onboard Eve Stone, she starts December 1");
  const proposal = w.locator(".proposal-card");
  await proposal.waitFor({ timeout: WAIT });
  // A typed yes answers the proposal like the button.
  await say(w, "yes");
  await proposal.locator(".outcome").getByText("Confirmed").waitFor({ timeout: WAIT });
  await w.locator(".thread .plan-card").waitFor({ timeout: WAIT });
  const hostile = "<img src=x onerror=\"window.__owned=true\"> **bold** [click](javascript:alert(1))";
  await say(w, `add a step: ${hostile} by Dec 3`);
  const title = w.locator(".thread .plan-card .step-title", { hasText: "<img" });
  await title.waitFor({ timeout: WAIT });
  assert.ok((await title.textContent()).includes("<img src=x"), "the title is shown as typed");
  const card = w.locator(".thread .plan-card");
  // Exact text: the card's "Next: <strong>title</strong>" holds the whole
  // title as text (the new step is next when the plan's dates fall later).
  assert.equal(await card.locator("img, strong:text-is('bold'), a").count(), 0, "no markup in the card");
  assert.equal(await w.locator(".thread img, .thread a[href^=javascript], .thread [onerror]").count(), 0,
    "model text is Markdown at most: no HTML, no script links");
  await say(w, "<script>window.__owned=true</script> hello **there**");
  await w.locator(".msg.user", { hasText: "<script>" }).waitFor({ timeout: WAIT });
  assert.equal(await page.evaluate(() => window.__owned), false);
  assert.equal(await w.locator(".thread script").count(), 0);
  assert.deepEqual(eve.problems, []);

  // A proposal the plan has moved past shows that, not live buttons.
  await say(w, "move the orientation to December 2");
  const move = w.locator(".proposal-card").last();
  await move.getByRole("button", { name: "Confirm" }).waitFor({ timeout: WAIT });
  assert.ok((await move.locator(".change.moved").count()) >= 1, "a moved date reads as a move");
  await say(w, "done with order laptop");
  await w.locator(".thread .plan-card .plan-state").getByText(/^1 \/ \d+ done$/).waitFor({ timeout: WAIT });
  await move.getByRole("button", { name: "Confirm" }).click();
  await move.locator(".outcome").getByText(/Out of date/).waitFor({ timeout: WAIT });
  assert.equal(await move.getByRole("button").count(), 0);
  await eve.context.close();
});

test("notifications arrive in the thread and as an unread badge while the panel is closed", async () => {
  const { w, page } = ana;
  await w.getByRole("button", { name: "Close chat" }).first().click();
  assert.equal(await w.locator(".panel").isHidden(), true);
  await page.evaluate(() => window.Steward.send("remind me in 1 minute to call the IT desk"));
  // Steward.send opens the panel; close it again so the badge counts.
  await w.locator(".msg.assistant", { hasText: /remind/i }).last().waitFor({ timeout: WAIT });
  await page.evaluate(() => window.Steward.close());
  await w.locator(".badge:not([hidden])").waitFor({ timeout: 90000 });
  assert.equal(await w.locator(".badge").textContent(), "1");
  assert.match(await w.locator(".launcher").getAttribute("aria-label"), /1 unread notification/);
  await shot(page, "08-badge");
  await w.locator(".launcher").click();
  await w.locator(".msg.notification", { hasText: /IT desk/ }).waitFor({ timeout: WAIT });
  assert.equal(await w.locator(".badge").isHidden(), true);
  await shot(page, "09-notification");
  // After a reload it is still there, once.
  await page.reload();
  await w.locator(".panel[data-state=online]").waitFor({ timeout: WAIT });
  await w.locator(".msg.notification", { hasText: /IT desk/ }).waitFor({ timeout: WAIT });
  const copies = await w.locator(".thread .md").evaluateAll((nodes) =>
    nodes.filter((n) => n.textContent.trim() === "Reminder: call the IT desk").length);
  assert.equal(copies, 1, "the reminder is in the thread once");
});

test("settings: the detected time zone, email, quiet hours and digest are saved; bad input is explained", async () => {
  const context = await browser.newContext({ timezoneId: "Europe/Berlin", viewport: { width: 1180, height: 820 } });
  const page = await context.newPage();
  await page.goto(`${base}/?user=settings-e2e`);
  const w = page.locator("#steward-widget");
  await w.locator(".panel[data-state=online]").waitFor({ timeout: WAIT });
  await w.getByRole("tab", { name: "Settings" }).click();
  await w.getByRole("button", { name: /Use this device's zone \(Europe\/Berlin\)/ }).click();
  await w.getByLabel("Address").fill("settings@example.com");
  await w.getByLabel("Quiet hours", { exact: true }).check();
  await w.getByLabel("How often").selectOption("weekly");
  await w.getByLabel("Digest day").selectOption("friday");
  await w.getByLabel("Digest time").fill("17:30");
  await w.getByRole("button", { name: "Save" }).click();
  await w.getByText(/^Saved\./).waitFor({ timeout: WAIT });
  await shot(page, "10-settings");
  const prefs = await (await page.request.get(`${base}/api/preferences?user=settings-e2e`)).json();
  assert.equal(prefs.time_zone, "Europe/Berlin");
  assert.equal(prefs.email, "settings@example.com");
  assert.deepEqual(prefs.quiet_hours, { start: "22:00", end: "07:00" });
  assert.equal(prefs.digest.frequency, "weekly");
  assert.equal(prefs.digest.time, "17:30");

  await w.getByLabel("Time zone").fill("Mars/Olympus_Mons");
  await w.getByRole("button", { name: "Save" }).click();
  await w.getByText(/Not saved: .*time_zone/).waitFor({ timeout: WAIT });
  const after = await (await page.request.get(`${base}/api/preferences?user=settings-e2e`)).json();
  assert.equal(after.time_zone, "Europe/Berlin", "a refused update changes nothing");
  await context.close();
});

test("“Get notified” registers the service worker and a push subscription", async () => {
  // Chromium's push service is Google's, unreachable here; the browser's
  // PushManager.subscribe is replaced by one returning a subscription at a
  // loopback endpoint. Everything on steward's side is real.
  const context = await browser.newContext({ viewport: { width: 1180, height: 820 } });
  await context.grantPermissions(["notifications"], { origin: base });
  await context.addInitScript(() => {
    if (!self.PushManager) return;
    PushManager.prototype.getSubscription = async () => null;
    PushManager.prototype.subscribe = async function () {
      return { toJSON: () => ({ endpoint: "http://127.0.0.1:9/push/abc", keys: {
        p256dh: "BIljijQNHySUnRf_NenrHk6iU-M4d2e8cgPQJn10mY5uIERkJUgIvFWC17D-OAsVFNWhkdjRYugchBt72UhIixY",
        auth: "-ltpHFHuK8lE9pcVRfyU2w" } }) };
    };
  });
  const page = await context.newPage();
  await page.goto(`${base}/?user=push-e2e`);
  const w = page.locator("#steward-widget");
  await w.locator(".panel[data-state=online]").waitFor({ timeout: WAIT });
  await w.getByRole("tab", { name: "Settings" }).click();
  await w.getByRole("button", { name: "Get notified in this browser" }).click();
  await w.getByText("Browser notifications are on for this device.").waitFor({ timeout: WAIT });
  const registered = await page.evaluate(async () => (await navigator.serviceWorker.getRegistration())?.active?.scriptURL);
  assert.equal(registered, `${base}/sw.js`);
  await context.close();
});

test("the widget embeds on another site's page with one script tag and talks to steward cross-origin", async () => {
  // A host page on its own origin (another loopback port).
  const hostPage = createServer((_, res) => {
    res.writeHead(200, { "content-type": "text/html" });
    res.end(`<!doctype html><title>Acme intranet</title><h1>Acme intranet</h1>
      <script src="${base}/widget.js" data-user="carol-e2e" data-title="Acme helper"></script>`);
  });
  await new Promise((r) => hostPage.listen(0, "127.0.0.1", r));
  const hostUrl = `http://127.0.0.1:${hostPage.address().port}/`;
  const context = await browser.newContext({ viewport: { width: 1180, height: 820 } });
  const page = await context.newPage();
  const failures = [];
  page.on("requestfailed", (r) => failures.push(r.url()));
  await page.goto(hostUrl);
  const w = page.locator("#steward-widget");
  await w.getByRole("button", { name: "Open chat with Acme helper" }).click();
  await w.locator(".panel[data-state=online]").waitFor({ timeout: WAIT });
  await say(w, "list my plans");
  await w.locator(".msg.assistant:not(.streaming)").waitFor({ timeout: WAIT });
  await w.getByRole("tab", { name: "My plans" }).click();
  await w.getByText("No plans yet").waitFor({ timeout: WAIT });
  assert.deepEqual(failures, []);
  await shot(page, "11-embedded");
  await context.close();
  await new Promise((r) => hostPage.close(r));
});

test("with signed tokens the widget works from an allowed origin (CORS preflight included) and not from another", async () => {
  const serve = (html) => {
    const server = createServer((_, res) => { res.writeHead(200, { "content-type": "text/html" }); res.end(html()); });
    return new Promise((r) => server.listen(0, "127.0.0.1", () => r(server)));
  };
  let steward2 = null;
  const page = (token, title) => () => `<!doctype html><title>${title}</title><h1>${title}</h1>
    <script src="${steward2}/widget.js" data-token="${token}" data-title="${title}"></script>`;
  let token = "";
  const allowed = await serve(() => page(token, "Allowed")());
  const other = await serve(() => page(token, "Other")());
  const allowedOrigin = `http://127.0.0.1:${allowed.address().port}`;
  const dir = mkdtempSync(join(tmpdir(), "steward-e2e-auth-"));
  const configPath = join(dir, "steward.toml");
  writeFileSync(configPath, `auth_secret = "e2e-secret-0123456789abcdef0123456789"\nallowed_origins = ["${allowedOrigin}"]\n`);
  const started = await startServer("127.0.0.1:0", { data: join(dir, "data"), args: ["--config", configPath] });
  steward2 = started.url;
  token = execFileSync(BIN, ["token", "--user", "carol", "--config", configPath], { cwd: ROOT }).toString().trim();
  const context = await browser.newContext({ viewport: { width: 1180, height: 820 } });
  try {
    const p1 = await context.newPage();
    await p1.goto(allowedOrigin + "/");
    const w = p1.locator("#steward-widget");
    await w.getByRole("button", { name: "Open chat with Allowed" }).click();
    await w.locator(".panel[data-state=online]").waitFor({ timeout: WAIT });
    // PUT with JSON and a bearer header: the browser sends a preflight first.
    await w.getByRole("tab", { name: "Settings" }).click();
    await w.getByLabel("Time zone").fill("Asia/Tokyo");
    await w.getByRole("button", { name: "Save" }).click();
    await w.getByText(/^Saved\./).waitFor({ timeout: WAIT });
    const prefs = await (await p1.request.get(`${steward2}/api/preferences`, { headers: { authorization: `Bearer ${token}` } })).json();
    assert.equal(prefs.time_zone, "Asia/Tokyo");

    const p2 = await context.newPage();
    await p2.goto(`http://127.0.0.1:${other.address().port}/`);
    const w2 = p2.locator("#steward-widget");
    await w2.getByRole("button", { name: "Open chat with Other" }).click();
    // The server refuses the socket (403) and CORS hides REST from the page.
    await w2.locator(".status", { hasText: /retrying/ }).waitFor({ timeout: WAIT });
    await p2.waitForTimeout(2500);
    assert.notEqual(await w2.locator(".panel").getAttribute("data-state"), "online");
    assert.equal(await w2.locator(".thread .msg").count(), 0);
  } finally {
    await context.close();
    started.child.kill("SIGKILL");
    allowed.close();
    other.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test("when its token expires the socket closes, the page hears of it, and a fresh token reconnects", async () => {
  let steward2 = null;
  let token = "";
  const host = createServer((_, res) => {
    res.writeHead(200, { "content-type": "text/html" });
    res.end(`<!doctype html><title>Expiring</title><h1>Expiring</h1>
      <script>window.expired = 0; addEventListener("steward:token-expired", () => { window.expired += 1; });</script>
      <script src="${steward2}/widget.js" data-token="${token}" data-title="Expiring"></script>`);
  });
  await new Promise((r) => host.listen(0, "127.0.0.1", r));
  const origin = `http://127.0.0.1:${host.address().port}`;
  const dir = mkdtempSync(join(tmpdir(), "steward-e2e-expiry-"));
  const configPath = join(dir, "steward.toml");
  writeFileSync(configPath, `auth_secret = "e2e-secret-0123456789abcdef0123456789"\nauth_leeway_secs = 0\nallowed_origins = ["${origin}"]\n`);
  const started = await startServer("127.0.0.1:0", { data: join(dir, "data"), args: ["--config", configPath] });
  steward2 = started.url;
  const issue = (ttl) => execFileSync(BIN, ["token", "--user", "dana", "--ttl-secs", String(ttl), "--config", configPath], { cwd: ROOT }).toString().trim();
  token = issue(3);
  const context = await browser.newContext({ viewport: { width: 1180, height: 820 } });
  try {
    const page = await context.newPage();
    await page.goto(origin + "/");
    const w = page.locator("#steward-widget");
    await w.getByRole("button", { name: "Open chat with Expiring" }).click();
    await w.locator(".panel[data-state=online]").waitFor({ timeout: WAIT });
    await w.locator(".status", { hasText: /session expired/ }).waitFor({ timeout: WAIT });
    assert.equal(await page.evaluate(() => window.expired), 1);
    await page.evaluate((t) => window.Steward.setToken(t), issue(600));
    await w.locator(".panel[data-state=online]").waitFor({ timeout: WAIT });
    await w.getByRole("textbox", { name: "Message" }).fill("hello again");
    await w.getByRole("textbox", { name: "Message" }).press("Enter");
    await w.locator(".thread .msg.assistant").first().waitFor({ timeout: WAIT });
  } finally {
    await context.close();
    started.child.kill("SIGKILL");
    host.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test("keyboard only: open, type, send, switch views and close", async () => {
  const context = await browser.newContext({ viewport: { width: 1180, height: 820 } });
  const page = await context.newPage();
  await page.goto(`${base}/?user=keys-e2e`);
  const w = page.locator("#steward-widget");
  await w.locator(".panel[data-state=online]").waitFor({ timeout: WAIT });
  // The panel opened on the demo page; Escape closes it and focus returns to the launcher.
  await w.getByRole("textbox", { name: "Message" }).focus();
  await page.keyboard.press("Escape");
  assert.equal(await w.locator(".panel").isHidden(), true);
  assert.equal(await page.evaluate(() => document.querySelector("#steward-widget").shadowRoot.activeElement?.className), "launcher");
  await page.keyboard.press("Enter");
  assert.equal(await page.evaluate(() => document.querySelector("#steward-widget").shadowRoot.activeElement?.tagName), "TEXTAREA");
  await page.keyboard.type("list my plans");
  await page.keyboard.press("Enter");
  await w.locator(".msg.assistant:not(.streaming)").waitFor({ timeout: WAIT });
  // The finished answer is announced once, through the polite status region.
  await page.waitForFunction(() => document.querySelector("#steward-widget").shadowRoot
    .querySelector(".announcer").textContent.includes("plans"), null, { timeout: WAIT });
  // A proposal answered from the keyboard: Shift+Tab from the message box
  // reaches Decline, then Confirm; focus lands on the outcome.
  await page.keyboard.type("help me onboard Kim Lee, she starts December 1");
  await page.keyboard.press("Enter");
  await w.locator(".proposal-card .confirm").waitFor({ timeout: WAIT });
  await page.keyboard.press("Shift+Tab");
  await page.keyboard.press("Shift+Tab");
  const active = () => page.evaluate(() => document.querySelector("#steward-widget").shadowRoot.activeElement?.textContent);
  assert.equal(await active(), "Confirm");
  await page.keyboard.press("Enter");
  await w.locator(".proposal-card .outcome").waitFor({ timeout: WAIT });
  assert.equal(await page.evaluate(() => document.querySelector("#steward-widget").shadowRoot.activeElement?.className), "outcome",
    "focus stays in the card, on its outcome");
  await w.getByRole("tab", { name: "Chat" }).focus();
  await page.keyboard.press("ArrowRight");
  assert.equal(await w.getByRole("tab", { name: "My plans" }).getAttribute("aria-selected"), "true");
  assert.equal(await w.locator("[role=log]").count(), 1);
  await context.close();
});

test("on a phone the panel fills the screen", async () => {
  const context = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
  const page = await context.newPage();
  await page.goto(`${base}/?user=ana-e2e`);
  const w = page.locator("#steward-widget");
  await w.locator(".panel[data-state=online]").waitFor({ timeout: WAIT });
  await w.locator(".thread .plan-card").waitFor({ timeout: WAIT });
  const box = await w.locator(".panel").boundingBox();
  assert.deepEqual([box.x, box.y, box.width, box.height], [0, 0, 390, 844]);
  await say(w, "show my onboarding plan");
  await page.waitForFunction(() => {
    const root = document.querySelector("#steward-widget").shadowRoot;
    const last = [...root.querySelectorAll(".thread > *")].pop();
    return last && last.querySelector(".plan-card");
  }, null, { timeout: WAIT });
  const card = await w.locator(".thread .plan-card").boundingBox();
  assert.ok(card.width <= 390 && card.x >= 0, "the card fits the screen");
  await shot(page, "12-mobile");
  await context.close();
});
