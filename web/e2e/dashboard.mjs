// Browser test of the secretaries' dashboard, in Debian's headless Chromium
// driven by playwright-core. web/browser_test.go serves the dashboard over a
// real database, creates the users and a report, then runs this script with:
//   MSSD_URL         the dashboard's base URL
//   MSSD_PASSWORD    the password of the users alice (secretary) and root (admin)
//   MSSD_REPORT      the report's id
//   MSSD_MARTIN      the id of its delivery in review (a doctor with two addresses)
//   MSSD_SCREENSHOTS the folder where the screenshots go
//   CHROMIUM         the browser (default /usr/bin/chromium)
// It exits non-zero at the first failed check.
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { chromium } from "playwright-core";

const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
};
const base = env("MSSD_URL");
const password = env("MSSD_PASSWORD");
const report = env("MSSD_REPORT");
const martin = env("MSSD_MARTIN");
const shots = env("MSSD_SCREENSHOTS");
mkdirSync(shots, { recursive: true });

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync"],
});
const shot = (page, name) => page.screenshot({ path: join(shots, name + ".png"), fullPage: true });

async function login(username) {
  const context = await browser.newContext({ viewport: { width: 1366, height: 768 }, locale: "fr-FR" });
  const page = await context.newPage();
  page.on("pageerror", (err) => { throw new Error("page script error: " + err.message); });
  await page.goto(base + "/worklists/review");
  assert.match(page.url(), /\/login\?next=/, "a logged-out user is sent to the login page");
  await page.getByLabel("Identifiant").fill(username);
  await page.getByLabel("Mot de passe").fill(password);
  if (username === "alice") await shot(page, "01-login");
  await page.getByRole("button", { name: "Se connecter" }).click();
  await page.waitForURL(/\/worklists\/review$/);
  return page;
}

// submit clicks a button that posts a form and waits for the page it leads to.
const submit = (page, button) => Promise.all([page.waitForNavigation(), button.click()]);

// flash checks the page's message: a string is the whole text, a RegExp matches it.
const flash = async (page, want) => {
  const f = page.locator(".flash").first();
  await f.waitFor();
  const text = (await f.innerText()).trim();
  if (want instanceof RegExp) assert.match(text, want);
  else assert.equal(text, want);
};

try {
  // The review worklist, its count, then the report.
  const page = await login("alice");
  const count = page.getByRole("link", { name: /À vérifier/ }).locator(".count");
  assert.equal(await count.innerText(), "2", "two deliveries to review");
  const row = page.locator(`#row-${martin}`);
  assert.match(await row.innerText(), /DURAND Léa/);
  await shot(page, "02-worklist-review");
  await row.getByRole("link", { name: "Ouvrir" }).click();
  await page.waitForURL(new RegExp(`/reports/${report}`));
  await page.locator("object.pdf").waitFor();
  await shot(page, "03-report");

  // Edit the recipient: search the directory, pick the hospital address.
  const delivery = () => page.locator(`#delivery-${martin}`);
  await delivery().getByRole("link", { name: "Modifier le destinataire" }).click();
  await delivery().getByLabel("Chercher dans l'annuaire (nom, RPPS)").fill("martin jean");
  await submit(page, delivery().getByRole("button", { name: "Chercher" }));
  await delivery().getByLabel(/jean\.martin@ch-demo\.mssante\.fr/).check();
  await shot(page, "04-edit-recipient");
  await submit(page, delivery().getByRole("button", { name: "Enregistrer l'adresse" }));
  await flash(page, "Destinataire modifié.");
  assert.match(await delivery().innerText(), /jean\.martin@ch-demo\.mssante\.fr/);

  // Approve: the email is queued (or already sent).
  await submit(page, delivery().getByRole("button", { name: "Approuver l'envoi" }));
  await flash(page, "Envoi approuvé.");
  assert.match(await delivery().locator(".status").first().innerText(), /En file d'envoi|Envoyé/);

  // Add a recipient with the type-ahead, then send him a letter instead.
  await page.getByText("Ajouter un destinataire").click();
  await page.getByLabel("Chercher dans l'annuaire").fill("leroux");
  const option = page.locator("#add-address-list option");
  await option.first().waitFor({ state: "attached" });
  const address = await option.first().getAttribute("value");
  assert.match(address, /leroux@medecin-demo\.mssante\.fr/i);
  await page.getByLabel("Adresse MSSanté").fill(address);
  await page.getByLabel("Adresse MSSanté").dispatchEvent("change");
  assert.equal(await page.getByLabel("Nom", { exact: true }).inputValue(), "LEROUX", "the type-ahead fills the name");
  await submit(page, page.getByRole("button", { name: "Ajouter (à approuver ensuite)" }));
  await flash(page, /^Destinataire ajouté \(envoi n° \d+, à approuver\)\.$/);
  const added = page.locator(".recipient", { hasText: "LEROUX" });
  await submit(page, added.getByRole("button", { name: "Envoyer par courrier" }));
  await flash(page, /^Envoi papier créé \(n° \d+\)\.$/);
  const leroux = page.locator(".recipient", { hasText: "LEROUX" });
  assert.match(await leroux.innerText(), /MSSanté · Annulé/);
  assert.match(await leroux.innerText(), /Papier · À vérifier/);

  // The timeline says who did what.
  const timeline = await page.locator(".timeline").innerText();
  for (const want of ["Destinataire modifié", "Approuvé", "Passé en papier", "par alice"]) {
    assert.ok(timeline.includes(want), `the timeline shows ${want}`);
  }
  await shot(page, "05-report-after-actions");

  await page.goto(base + "/worklists/all?patient=durand");
  assert.ok((await page.locator("tbody tr").count()) >= 4);
  await shot(page, "06-all-deliveries");
  for (const [path, name] of [["/worklists/failed", "07-failed"], ["/worklists/paper", "08-paper"],
    ["/stats", "09-stats"], ["/campaign", "10-campaign"], ["/rules", "11-rules"], ["/directory?q=martin", "12-directory"],
    ["/quarantine", "13-quarantine"]]) {
    const resp = await page.goto(base + path);
    assert.equal(resp.status(), 200, path);
    await shot(page, name);
  }
  const admin = await login("root");
  const resp = await admin.goto(base + "/audit");
  assert.equal(resp.status(), 200);
  assert.match(await admin.locator("main").innerText(), /alice/, "the audit log shows alice's login");
  await shot(admin, "14-audit");
  await admin.goto(base + "/admin/users");
  await shot(admin, "15-users");
  const secretaryAudit = await page.goto(base + "/audit");
  assert.equal(secretaryAudit.status(), 403, "a secretary has no audit log");
  console.log("dashboard browser test: ok");
} finally {
  await browser.close();
}
