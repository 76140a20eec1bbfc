// The rules screen as a member of the CME uses it (issue #20, item 11): a
// rule for a type of document written with the form, previewed and saved;
// the mistakes of the text all listed, each taking her to its line; a rule
// renamed changes nothing for anyone; a rule edited with the form. Run by
// web/browser_rules_test.go (TestBrowserRules); dr-cme is of the CME, the
// service received a "Lettre de liaison de sortie" (LOINC 11490-0).
import assert from "node:assert/strict";
import { base, flash, launch, login, narrow, shot, submit } from "./lib.mjs";

const name = "Lettres de sortie différées";
const browser = await launch();

// selected returns the text selected in the editor.
const selected = (page) => page.locator("#rules-source").evaluate((t) => t.value.slice(t.selectionStart, t.selectionEnd));
// lineOf returns the line (from 1) of the editor's text that contains s.
const lineOf = async (page, s) => (await page.locator("#rules-source").inputValue()).split("\n").findIndex((l) => l.includes(s)) + 1;
// noScrollbar checks that the page fits the width of the window.
const noScrollbar = async (page, what) => {
  const [scroll, width] = await page.evaluate(() => [document.documentElement.scrollWidth, window.innerWidth]);
  assert.ok(scroll <= width, `${what}: ${scroll} px wide in a ${width} px window`);
};

try {
  const page = await login(browser, "dr-cme");
  await page.goto(base + "/rules");
  await noScrollbar(page, "the rules screen");
  await shot(page, "rules-screen");

  // The form: a type of document she picks by its title, held 48 h, never to the patient.
  const form = page.locator("#rule-form");
  assert.equal(await page.locator('#document-types option[value="11490-0"]').textContent(), "Lettre de liaison de sortie");
  await form.getByLabel("Nom de la règle").fill(name);
  await form.getByLabel("Type de document (code LOINC)").fill("11490-0");
  await form.getByRole("group", { name: "Envoi" }).getByRole("radio", { name: "différé de" }).check();
  await form.getByLabel("Délai en heures").fill("48");
  await form.getByRole("group", { name: "Copie au patient" }).getByRole("radio", { name: "jamais" }).check();
  // Enter in the form writes the rule into the text and previews it.
  await Promise.all([page.waitForNavigation(), form.getByLabel("Délai en heures").press("Enter")]);
  assert.match(page.url(), /\/rules\/form#dry-run$/);
  await flash(page, /^La règle « Lettres de sortie différées » est écrite dans le texte, ligne 2\. Rien n'est enregistré/);
  const text = await page.locator("#rules-source").inputValue();
  assert.ok(text.startsWith(`rules:\n  - name: ${name}\n    match:\n      document_codes: ["11490-0"]\n    action:\n      send: delay\n      delay_hours: 48\n      patient: never\n`), text);
  assert.ok(text.indexOf("name: défaut") > text.indexOf(name), "before the rule for every document");
  const preview = page.locator(".dry-run");
  assert.match(await preview.innerText(), /[1-9]\d* envoi\(s\) changeraient pour leur destinataire/);
  assert.match(await preview.locator("tbody").innerText(), /Programmé 48 h après la réception/);
  assert.equal(await form.locator(".document-title").innerText(), "Lettre de liaison de sortie", "the type by its title");
  await page.getByRole("link", { name: "ligne 2" }).click();
  assert.equal(await selected(page), `  - name: ${name}`, "the link selects the rule in the text");
  await shot(page, "rules-form-written");

  // Saved as the text is: a new version.
  await page.getByLabel("Commentaire de la version").fill("CME du 12 mars");
  await submit(page, page.getByRole("button", { name: "Enregistrer une nouvelle version" }));
  await flash(page, "Règles enregistrées: version 1, appliquée aux comptes rendus reçus dès maintenant.");

  // Two mistakes typed in the text: both listed, each at its line.
  const editor = page.locator("#rules-source");
  await editor.fill((await editor.inputValue()).replace("delay_hours: 48", "delay_hours: 900").replace("patient: never", "patient: jamais"));
  await submit(page, page.getByRole("button", { name: "Prévisualiser", exact: true }));
  const mistakes = page.locator(".mistakes li");
  assert.equal(await mistakes.count(), 2, await page.locator("#rules-error").innerText());
  assert.match(await page.locator("#rules-error").innerText(), /2 erreurs à corriger dans le texte/);
  for (const [i, wrong] of [[0, "delay_hours: 900"], [1, "patient: jamais"]]) {
    const line = await lineOf(page, wrong);
    assert.match(await mistakes.nth(i).innerText(), new RegExp(`^ligne ${line}, règle 1 « ${name} »`));
    await mistakes.nth(i).getByRole("link").click();
    assert.equal((await selected(page)).trim(), wrong, `mistake ${i + 1} takes her to its line`);
  }
  await shot(page, "rules-mistakes");

  // The rules in force renamed: nothing changes for anyone. (Enter in a
  // field of the editor previews: it neither moves a rule nor saves.)
  await page.goto(base + "/rules");
  await editor.fill((await editor.inputValue()).replace(name, "Lettres de liaison, 48 h"));
  await Promise.all([page.waitForNavigation(), page.getByLabel("Commentaire de la version").press("Enter")]);
  assert.match(page.url(), /\/rules\/dry-run$/);
  assert.match(await page.locator(".dry-run").innerText(), /aucun envoi ne changerait pour son destinataire/);
  assert.match(await page.locator("ol.rules").innerText(), /^Lettres de liaison, 48 h/, "the rules in their order");

  // A rule edited with the form: filled with it, written in its place.
  await page.goto(base + "/rules");
  await submit(page, page.getByRole("button", { name: `Modifier la règle ${name} avec le formulaire` }));
  assert.match(await page.locator("#h-form").innerText(), /Modifier la règle « Lettres de sortie différées »/);
  assert.equal(await form.getByLabel("Type de document (code LOINC)").inputValue(), "11490-0");
  assert.ok(await form.getByRole("radio", { name: "différé de" }).isChecked());
  assert.equal(await form.getByLabel("Délai en heures").inputValue(), "48");
  await form.getByRole("radio", { name: "après vérification par le secrétariat" }).check();
  await submit(page, form.getByRole("button", { name: "Écrire la règle dans le texte et prévisualiser" }));
  const edited = await editor.inputValue();
  assert.ok(edited.includes("      send: review\n      patient: never\n"), edited);
  assert.ok(!edited.includes("delay_hours"), "no delay left");
  assert.equal(edited.split(`name: ${name}`).length, 2, "one rule of that name");
  assert.match(await page.locator(".dry-run tbody").innerText(), /À vérifier/);
  await page.context().close();

  // At 800 px beside the DPI: the same screen, nothing out of reach.
  const small = await login(browser, "dr-cme", { viewport: narrow });
  await small.goto(base + "/rules");
  await submit(small, small.getByRole("button", { name: `Modifier la règle ${name} avec le formulaire` }));
  await noScrollbar(small, "the form at 800 px");
  const write = small.locator("#rule-write");
  const box = await write.boundingBox();
  assert.ok(box && box.x >= 0 && box.x + box.width <= 800, "the button that writes the rule within 800 px");
  await small.locator("#rule-form").getByRole("radio", { name: "automatique" }).check();
  await submit(small, write);
  assert.ok((await small.locator("#rules-source").inputValue()).includes("      send: auto\n"));
  assert.equal(await small.getByLabel("Délai en heures").inputValue(), "", "the form says what the text now says");
  assert.match(await small.locator(".dry-run").innerText(), /changerai/);
  await shot(small, "rules-narrow");
  await small.context().close();
  console.log("rules browser test: ok");
} finally {
  await browser.close();
}
