// A print batch as a secretary handles it: prepare the batches, open the
// day's batch, find each letter's patient, see that a letter the DPI sent
// twice is printed once, print, mark the batch posted; then the same page
// in a narrow window. Run by web/browser_paperbatch_test.go
// (TestBrowserPaperBatch): the DPI sent one report twice, with Claire
// DUPONT-DEMO (a paper copy) and Paul LEGRAND (known by name and postal
// address only, so listed anew by the second message). alice is a secretary.
import assert from "node:assert/strict";
import { base, flash, launch, login, narrow, shot, submit } from "./lib.mjs";

const patient = /DUPONT Marie\s+née le 15\/01\/1980 · IPP IPP0012345/;
const browser = await launch();

// checkLetters checks the letters of the batch page: the recipient, the
// patient (to find the letter in the printed pile) and the status of each,
// Paul Legrand's second letter grouped with his first.
async function checkLetters(page, status) {
  const rows = page.locator("main table tbody tr");
  assert.equal(await rows.count(), 3, "two letters printed, one duplicate");
  const cells = async (i) => (await rows.nth(i).locator("td").allInnerTexts()).map((s) => s.trim());
  const [claire, legrand, again] = [await cells(0), await cells(1), await cells(2)];
  for (const row of [claire, legrand, again]) assert.match(row[2], patient, "each letter shows its patient");
  assert.equal(claire[0], "1");
  assert.match(claire[1], /^Claire DUPONT-DEMO\s+BORDEAUX$/);
  assert.equal(claire[4], status);
  assert.equal(legrand[0], "2");
  assert.match(legrand[1], /^Paul LEGRAND\s+Bordeaux$/i);
  assert.equal(legrand[4], status);
  assert.equal(again[0], "", "the duplicate has no place in the pile");
  assert.match(again[1], /^Paul LEGRAND/);
  assert.equal(again[3], "", "nor pages");
  assert.equal(again[4], "Doublon du n° 2: non imprimé");
  assert.match(await page.locator("#duplicates").innerText(), /^1 doublon\(s\) regroupé\(s\)/);
  assert.equal(await page.locator("main > p", { hasText: /· 2 courriers, \d+ pages ·/ }).count(), 1, "2 letters to post");
}

try {
  const page = await login(browser, "alice");
  await page.getByRole("link", { name: /^Courrier papier/ }).click();
  await page.getByRole("link", { name: "voir les lots à imprimer" }).click();
  await submit(page, page.getByRole("button", { name: "Préparer les lots maintenant" }));
  await flash(page, "Préparation des lots demandée: ils apparaissent ici dans quelques instants.");
  const batch = page.getByRole("link", { name: /^n° \d+$/ });
  for (let i = 0; (await batch.count()) === 0; i++) {
    assert.ok(i < 60, "the batch is made within 30 s");
    await page.waitForTimeout(500);
    await page.reload();
  }
  assert.match(await page.locator("main tbody tr").first().innerText(), /\b2\s+\+ 1 doublon\(s\) non imprimé\(s\)/);
  await shot(page, "paperbatch-1366-batches");
  await batch.click();
  await page.waitForURL(/\/paper\/batches\/\d+$/);
  const url = page.url();
  await checkLetters(page, "À imprimer");
  await shot(page, "paperbatch-1366-batch");

  // Print: the PDF opens.
  const pdf = await page.request.get(base + await page.getByRole("link", { name: "Ouvrir le PDF à imprimer" }).getAttribute("href"));
  assert.equal(pdf.status(), 200);
  assert.equal(pdf.headers()["content-type"], "application/pdf");

  // Post: the two letters printed are posted, the duplicate stays aside.
  page.once("dialog", (d) => d.accept());
  await submit(page, page.getByRole("button", { name: "Marquer le lot posté" }));
  await flash(page, /^Lot n° \d+ posté \(2 courrier\(s\)\)\.$/);
  await checkLetters(page, "Posté");
  await shot(page, "paperbatch-1366-posted");

  // The same page in a narrow window: every column fits.
  const small = await login(browser, "alice", { viewport: narrow });
  await small.goto(url);
  await checkLetters(small, "Posté");
  const width = await small.evaluate(() => document.documentElement.scrollWidth);
  assert.ok(width <= narrow.width, `the page is ${width} px wide at ${narrow.width} px`);
  const status = await small.locator("main table tbody tr").nth(2).locator("td").nth(4).boundingBox();
  assert.ok(status.x + status.width <= narrow.width, "the duplicate's status is in the window");
  await shot(small, "paperbatch-800-batch");
  console.log("paper batch browser test: ok");
} finally {
  await browser.close();
}
