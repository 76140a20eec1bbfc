// Reading the letter and finding a correspondent, as a secretary does on a
// 1366×768 laptop and in an 800 px window beside the DPI: the PDF at page
// width beside the recipients, the directory's type-ahead typed slowly and
// picked with the keyboard, the worklists' actions within reach at 800 px,
// the delay chart's axis in readable units. Run by
// web/browser_reading_test.go (TestBrowserReading) with, besides lib.mjs's
// variables:
//   MSSD_REPORT      the report's id
//   MSSD_MARTIN      the id of its delivery to Jean Martin (no address yet)
// alice is a secretary.
import assert from "node:assert/strict";
import { base, env, flash, launch, login, narrow, shot, submit, wide } from "./lib.mjs";

const report = env("MSSD_REPORT");
const martin = env("MSSD_MARTIN");
const browser = await launch();

// box is the bounding box of locator, which must be displayed.
const box = async (locator) => {
  const b = await locator.boundingBox();
  assert.ok(b, "displayed: " + locator);
  return b;
};

// typeSlowly types text in field one key at a time, slower than the
// type-ahead's pause, so that suggestions arrive while she types.
const typeSlowly = async (field, text) => {
  await field.click();
  await field.pressSequentially(text, { delay: 350 });
};

// pickWithKeyboard moves down the suggestions of field until the highlighted
// one matches want, then presses Enter.
const pickWithKeyboard = async (page, field, want) => {
  const options = page.locator("#" + (await field.getAttribute("aria-controls")) + " [role=option]");
  await options.first().waitFor({ state: "attached" });
  const n = await options.count();
  for (let i = 0; i < n; i++) {
    await field.press("ArrowDown");
    const active = page.locator("#" + (await field.getAttribute("aria-activedescendant")));
    assert.equal(await active.getAttribute("aria-selected"), "true");
    if (want.test(await active.innerText())) {
      await field.press("Enter");
      return;
    }
  }
  assert.fail(`no suggestion matches ${want}`);
};

// The action links and buttons of every row of a worklist are within the
// window, and the page does not scroll sideways.
const actionsWithinWindow = async (page, width) => {
  const rows = page.locator("tbody tr");
  assert.ok((await rows.count()) >= 3, "the worklist has rows");
  for (const row of await rows.all()) {
    const actions = row.locator("td").last().locator("a, button");
    assert.ok((await actions.count()) >= 1);
    for (const a of await actions.all()) {
      const b = await box(a);
      assert.ok(b.x >= 0 && b.x + b.width <= width, `"${await a.innerText()}" within the window: ${JSON.stringify(b)}`);
    }
  }
  assert.ok(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth), "no sideways scroll");
  for (const name of ["Patient", "Destinataire", "Statut", "Action"]) {
    await assert.doesNotReject(page.getByRole("columnheader", { name, exact: true }).waitFor({ state: "visible", timeout: 1000 }),
      `the column ${name} is shown`);
  }
};

try {
  // At 1366×768: the letter at page width, beside the recipients, larger.
  const page = await login(browser, "alice", { viewport: wide });
  await page.goto(`${base}/reports/${report}`);
  const pdf = page.locator("object.pdf");
  assert.match(await pdf.getAttribute("data"), new RegExp(`^/reports/${report}/document\\.pdf#view=FitH&navpanes=0$`),
    "the PDF opens at page width, without the thumbnails");
  const doc = await box(pdf), recipients = await box(page.locator("#recipients"));
  assert.ok(doc.width > recipients.width * 1.3, `the document has the larger share: ${doc.width} vs ${recipients.width}`);
  assert.ok(doc.x > recipients.x + recipients.width && doc.y < recipients.y + recipients.height, "the document is beside the recipients");
  assert.ok(doc.height >= 600, `the document fills the screen's height: ${doc.height}`);
  await shot(page, "reading-report-1366");

  // Add a recipient: "leroux" typed slowly stays in the search, nothing
  // lands elsewhere; the keyboard picks the suggestion, which fills the form.
  await page.getByText("Ajouter un destinataire").click();
  const search = page.getByLabel("Chercher dans l'annuaire", { exact: true });
  const address = page.getByLabel("Adresse MSSanté");
  const family = page.getByLabel("Nom", { exact: true });
  const given = page.getByLabel("Prénom");
  await typeSlowly(search, "leroux");
  assert.equal(await search.inputValue(), "leroux", "the search holds the whole word");
  for (const field of [address, family, given]) assert.equal(await field.inputValue(), "", "no other field got characters");
  assert.ok(await search.evaluate((el) => el === document.activeElement), "the focus stays in the search");
  const list = page.getByRole("listbox", { name: "Suggestions de l'annuaire" });
  await list.waitFor();
  assert.match(await list.innerText(), /LEROUX Paul/);
  await shot(page, "reading-typeahead-1366");
  const scrolled = await box(pdf), history = await box(page.locator(".timeline"));
  assert.ok(scrolled.x >= history.x + history.width, "the letter stays beside the history as the page scrolls, never over it");
  await search.press("Escape");
  await list.waitFor({ state: "hidden" });
  assert.ok(await search.evaluate((el) => el === document.activeElement), "Escape closes the list, the focus stays");
  const url = page.url();
  await pickWithKeyboard(page, search, /LEROUX/);
  assert.equal(page.url(), url, "Enter picks, it does not submit the form");
  assert.match(await address.inputValue(), /^paul\.leroux@medecin-demo\.mssante\.fr$/i);
  assert.equal(await family.inputValue(), "LEROUX", "the pick fills the name");
  assert.equal(await given.inputValue(), "Paul");
  assert.ok(await address.evaluate((el) => el === document.activeElement), "the focus moves to the address once picked");
  await submit(page, page.getByRole("button", { name: "Ajouter (à approuver ensuite)" }));
  await flash(page, /^Destinataire ajouté \(envoi n° \d+, à approuver\)\.$/);
  assert.match(await page.locator(".recipient", { hasText: "LEROUX" }).innerText(), /paul\.leroux@medecin-demo\.mssante\.fr/i);

  // Edit a recipient: the same type-ahead in the directory search.
  await page.goto(`${base}/reports/${report}?edit=${martin}#delivery-${martin}`);
  const delivery = page.locator(`#delivery-${martin}`);
  const q = delivery.getByLabel("Chercher dans l'annuaire (nom, RPPS)");
  const addr = delivery.getByLabel("Adresse MSSanté");
  await typeSlowly(q, "martin");
  assert.equal(await q.inputValue(), "martin");
  assert.equal(await addr.inputValue(), "", "the address field got nothing");
  await pickWithKeyboard(page, q, /ch-demo/);
  assert.equal(await addr.inputValue(), "jean.martin@ch-demo.mssante.fr");
  await shot(page, "reading-edit-1366");
  await submit(page, delivery.getByRole("button", { name: "Enregistrer l'adresse" }));
  await flash(page, "Destinataire modifié.");
  assert.match(await delivery.innerText(), /jean\.martin@ch-demo\.mssante\.fr/);

  // The worklists at 1366: every column.
  await page.goto(base + "/worklists/all");
  await actionsWithinWindow(page, wide.width);
  for (const name of ["Créé le", "Document", "Service", "Canal"]) {
    assert.ok(await page.getByRole("columnheader", { name, exact: true }).isVisible(), `${name} shown at 1366`);
  }
  await shot(page, "reading-worklist-1366");

  // The delay chart: each tick of its axis says something different.
  for (const viewport of [wide, narrow]) {
    await page.setViewportSize(viewport);
    await page.goto(base + "/stats");
    const ticks = await page.getByRole("img", { name: /^Délai de la validation à la remise, MSSanté/ }).locator("text.tick").allTextContents();
    assert.ok(ticks.length >= 3, "the delay chart has an axis");
    assert.equal(new Set(ticks).size, ticks.length, `no repeated tick: ${ticks}`);
    assert.match(ticks.at(-1), /^\d+(,\d+)?\u00a0(s|min|h|j)$/);
    await shot(page, `reading-stats-${viewport.width}`);
  }

  // At 800 px: the worklists' actions within reach, the letter below the recipients.
  const small = await login(browser, "alice", { viewport: narrow });
  await actionsWithinWindow(small, narrow.width);
  await shot(small, "reading-worklist-review-800");
  await small.goto(base + "/worklists/all");
  await actionsWithinWindow(small, narrow.width);
  await shot(small, "reading-worklist-800");
  await small.goto(`${base}/reports/${report}`);
  const stackedDoc = await box(small.locator("object.pdf")), stackedRecipients = await box(small.locator("#recipients"));
  assert.ok(stackedDoc.y >= stackedRecipients.y + stackedRecipients.height, "the document comes below the recipients");
  assert.ok(stackedDoc.x + stackedDoc.width <= narrow.width && stackedDoc.width >= narrow.width * 0.9, "the document spans the window");
  await shot(small, "reading-report-800");
  console.log("reading browser test: ok");
} finally {
  await browser.close();
}
