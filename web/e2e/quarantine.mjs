// The quarantine, as a secretary of cardiology acts on it: on a 1366×768
// laptop she reads each refused message (when, from which application,
// about whom and what, why, whom to call), processes again a replacement
// whose original the DPI sent since and opens its report; in an 800 px
// window beside the DPI she processes again a message still wrong, reads
// its technical details for the DPI's interface team, then sets it aside
// saying why. Run by web/browser_quarantine_test.go (TestBrowserQuarantine)
// with, besides lib.mjs's variables:
//   MSSD_REPLACEMENT the row of the replacement refused before its original
//   MSSD_WRONG       the row of a message whose INS does not match its CDA
//   MSSD_OTHER       the row of a message of pneumology
// alice is a secretary of cardiology.
import assert from "node:assert/strict";
import { base, env, flash, launch, login, narrow, shot, submit } from "./lib.mjs";

const replacement = env("MSSD_REPLACEMENT");
const wrong = env("MSSD_WRONG");
const other = env("MSSD_OTHER");
const browser = await launch();

// openQuarantine follows the menu to the quarantine.
const openQuarantine = async (page) => {
  await submit(page, page.getByRole("link", { name: "Quarantaine" }));
  assert.match(page.url(), /\/quarantine$/);
};

// fitsIn checks that the page does not scroll sideways at width and that
// locator, a control she needs, is within the window.
const fitsIn = async (page, width, locator) => {
  const scroll = await page.evaluate(() => document.documentElement.scrollWidth);
  assert.ok(scroll <= width, `the page fits in ${width} px (${scroll})`);
  const b = await locator.boundingBox();
  assert.ok(b && b.x >= 0 && b.x + b.width <= width, `${locator} within the window: ${JSON.stringify(b)}`);
};

try {
  // At 1366×768: what each message is, and what to do.
  const page = await login(browser, "alice");
  await openQuarantine(page);
  const row = (id) => page.locator(`#q-${id}`);
  const first = await row(replacement).innerText();
  assert.match(first, /\d\d\/\d\d\/\d{4} \d\d:\d\d/, "when it arrived");
  assert.match(first, /DPI_TEST \(CH_TEST\)/, "from which application");
  assert.match(first, /Service CARDIO/);
  assert.match(first, /DUPONT Marie · né\(e\) le 15\/01\/1980 · IPP IPP0012345/, "about whom");
  assert.match(first, /Lettre de sortie du 12\/03\/2024/, "and what");
  assert.match(first, /le document .* est inconnu de ce service/, "why, in French");
  assert.match(first, /À corriger dans le DPI : contactez l'équipe d'interface du DPI\./, "whom to call");
  const pneumo = await row(other).innerText();
  assert.match(pneumo, /service non autorisé/, "another service's message keeps its patient data");
  assert.doesNotMatch(pneumo, /DUPONT|Lettre de sortie/);
  assert.match(pneumo, /Message d'un service que vous ne voyez pas : son secrétariat s'en occupe\./);
  assert.equal(await row(other).getByRole("button").count(), 0, "and offers her no action");
  await shot(page, "quarantine-wide");

  // The original came since: "Retraiter" makes it a report, reached from its row.
  await submit(page, row(replacement).getByRole("button", { name: "Retraiter" }));
  await flash(page, /^Message accepté : compte rendu n° \d+\.$/);
  assert.match(await row(replacement).innerText(), /Accepté le .* par alice : compte rendu n° \d+/);
  await shot(page, "quarantine-accepted");
  await submit(page, row(replacement).getByRole("link", { name: /compte rendu n° \d+/ }));
  assert.match(page.url(), /\/reports\/\d+$/);
  assert.match(await page.locator("main").innerText(), /DUPONT/, "the report of the message");

  // At 800 px: processed again, still refused; then set aside.
  const side = await login(browser, "alice", { viewport: narrow });
  await openQuarantine(side);
  const wrongRow = side.locator(`#q-${wrong}`);
  assert.equal(await side.locator(`#q-${replacement}`).count(), 0, "the accepted one is no longer to deal with");
  await fitsIn(side, narrow.width, wrongRow.getByRole("button", { name: "Retraiter" }));
  await submit(side, wrongRow.getByRole("button", { name: "Retraiter" }));
  await flash(side, "Toujours refusé : le motif affiché est celui d'aujourd'hui.");
  assert.match(await wrongRow.innerText(), /l'INS de PID-3, 299127512300012 .* n'est pas celui/);
  assert.match(await wrongRow.innerText(), /par alice : toujours refusé\./);
  await wrongRow.getByText("Détails techniques").click();
  assert.match(await wrongRow.innerText(), /Identifiant du message \(MSH-10\) : INS-B/, "what the interface team asks for");
  await wrongRow.getByText("Écarter…").click();
  await fitsIn(side, narrow.width, wrongRow.getByRole("button", { name: "Écarter le message" }));
  await wrongRow.getByLabel("Pourquoi l'écarter ?").fill("Renvoyé corrigé par le DPI");
  await shot(side, "quarantine-narrow");
  await submit(side, wrongRow.getByRole("button", { name: "Écarter le message" }));
  await flash(side, "Message écarté.");
  assert.equal(await side.locator(`#q-${wrong}`).count(), 0);
  await submit(side, side.getByRole("link", { name: "Voir aussi les messages retraités ou écartés" }));
  assert.match(await side.locator(`#q-${wrong}`).innerText(), /Écarté le .* par alice : « Renvoyé corrigé par le DPI »/);
  assert.match(await side.locator(`#q-${replacement}`).innerText(), /Accepté/);
  await shot(side, "quarantine-dealt-with");
  console.log("quarantine browser test: ok");
} finally {
  await browser.close();
}
