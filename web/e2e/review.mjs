// The review worklist as a secretary works it (issue #20, items 1, 2, 4, 5,
// 6). Run by web/browser_review_test.go (TestBrowserReview) with, besides
// lib.mjs's variables, the delivery ids MSSD_MARTIN and MSSD_MARTIN_ONCO
// (two known addresses), MSSD_INCONNU (a letter without any address), MSSD_CLAIRE and MSSD_CLAIRE_LETTER (held
// by the rule « Relire la cardio »), MSSD_DELAYED (the rule « Délai onco »
// holds it a day). alice is a secretary.
import assert from "node:assert/strict";
import { accepting, env, flash, launch, login, narrow, shot, submit } from "./lib.mjs";

const martin = env("MSSD_MARTIN");
const inconnu = env("MSSD_INCONNU");
const claire = env("MSSD_CLAIRE");
const claireLetter = env("MSSD_CLAIRE_LETTER");
const delayed = env("MSSD_DELAYED");
const martinOnco = env("MSSD_MARTIN_ONCO");
const browser = await launch();

try {
  for (const [viewport, suffix] of [[narrow, "narrow"], [undefined, "wide"]]) {
    const page = await login(browser, "alice", { viewport });
    const row = (id) => page.locator(`#row-${id}`);
    if (suffix === "narrow") {
      // At 800 px, every action of the rows within reach.
      for (const id of [martin, inconnu, claire, claireLetter, martinOnco]) {
        for (const button of await row(id).locator(".row-actions button, .row-actions a").all()) {
          const box = await button.boundingBox();
          assert.ok(box && box.x >= 0 && box.x + box.width <= 800, `row ${id}: ${await button.innerText()} within 800 px`);
        }
      }
      await shot(page, "review-narrow");
      await page.context().close();
      continue;
    }
    await shot(page, "review-worklist");

    // Martin: the directory knows two addresses; one click sends to one.
    assert.equal(await row(martin).getByRole("button", { name: /^Approuver/ }).count(), 0, "nothing to approve yet");
    await submit(page, row(martin).getByRole("button", { name: "Envoyer à jean.martin@ch-demo.mssante.fr" }));
    await flash(page, "Envoi à jean.martin@ch-demo.mssante.fr approuvé.");
    assert.equal(await row(martin).count(), 0, "the row left the list");

    // Claire is held by the CME's rule, and the row says so.
    assert.match(await row(claire).innerText(), /Retenu par la règle « Relire la cardio » \(version 1\)/);

    // The unknown doctor's letter: no button that cannot succeed, the address to complete.
    assert.equal(await row(inconnu).getByRole("button").count(), 0, "nothing to approve without an address");
    assert.match(await row(inconnu).getByRole("link", { name: "Compléter l'adresse" }).getAttribute("href"),
      new RegExp(`\\?edit=${inconnu}#delivery-${inconnu}$`));

    // Martin, for the ONCO report: a letter to the address the directory knows, named before it goes.
    await accepting(page, row(martinOnco).getByRole("button", { name: "Envoyer par courrier" }),
      /^Envoyer par courrier à .+\d{5} .+ \?$/);
    await flash(page, /^Envoi papier créé \(n° \d+\)\.$/);

    // Claire's email and letter, ticked, approved at once.
    await row(claire).getByRole("checkbox").check();
    await row(claireLetter).getByRole("checkbox").check();
    await page.getByLabel("Pour les lignes cochées").selectOption("approve");
    await submit(page, page.getByRole("button", { name: "Appliquer" }));
    await flash(page, "2 envoi(s) approuvé(s).");
    await shot(page, "review-after-selection");

    // The delayed one says when it leaves; sending it now asks, naming the rule.
    await page.goto(page.url().replace(/\/worklists\/.*/, "/worklists/scheduled"));
    assert.match(await row(delayed).innerText(), /Part le \d\d\/\d\d\/\d{4} à \d\d:\d\d/);
    assert.match(await row(delayed).innerText(), /Retenu par la règle « Délai onco » \(version 1\) : envoi différé de 24 h/);
    await shot(page, "review-scheduled");
    await accepting(page, row(delayed).getByRole("button", { name: "Envoyer maintenant" }),
      /La règle « Délai onco » \(version 1\) retient cet envoi jusqu'au \d\d\/\d\d\/\d{4} à \d\d:\d\d\. L'envoyer maintenant \?/);
    await flash(page, "Envoyé sans attendre la fin du délai de la règle.");
    await page.context().close();
  }
  console.log("review browser test: ok");
} finally {
  await browser.close();
}
