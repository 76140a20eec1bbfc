// The secretaries' dashboard, the tour: log in, the review worklist, edit a
// recipient, approve, add one and send him a letter, the timeline, then a
// screenshot of each main screen. Run by web/browser_test.go
// (TestBrowserDashboard) with, besides lib.mjs's variables:
//   MSSD_REPORT      the report's id
//   MSSD_MARTIN      the id of its delivery in review (a doctor with two addresses)
// alice is a secretary, root an admin.
import assert from "node:assert/strict";
import { accepting, base, env, flash, launch, login as signIn, shot, submit } from "./lib.mjs";

const report = env("MSSD_REPORT");
const martin = env("MSSD_MARTIN");
const browser = await launch();
const login = (username) => signIn(browser, username, { before: username === "alice" ? (p) => shot(p, "01-login") : undefined });

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
  await accepting(page, added.getByRole("button", { name: "Envoyer par courrier (adresse à compléter)" }), /adresse postale est inconnue/);
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
