// What every browser scenario of the dashboard shares. web/browser_test.go
// (runScenario) serves the dashboard over a real database, prepares the data,
// then runs a scenario with, besides its own variables:
//   MSSD_URL         the dashboard's base URL
//   MSSD_PASSWORD    the password of the users the Go test created
//   MSSD_SCREENSHOTS the folder where the screenshots go
//   CHROMIUM         the browser (default /usr/bin/chromium)
// A scenario exits non-zero at its first failed check.
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { chromium } from "playwright-core";

// env returns the environment variable name, which must be set.
export const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
};

export const base = env("MSSD_URL");
const password = env("MSSD_PASSWORD");
const shots = env("MSSD_SCREENSHOTS");
mkdirSync(shots, { recursive: true });

// The screens the dashboard is made for: a hospital's 1366×768 laptop, and a
// narrow window (800 px) beside the DPI.
export const wide = { width: 1366, height: 768 };
export const narrow = { width: 800, height: 768 };

// launch starts Chromium; close it when done (browser.close()).
export const launch = () => chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync"],
});

// shot saves a full-page screenshot of page as name.png.
export const shot = (page, name) => page.screenshot({ path: join(shots, name + ".png"), fullPage: true });

// login opens a page at viewport, signs in as username through the login
// form (the worklist "À vérifier" is the landing page), and returns it; a
// script error on the page fails the scenario. before, when given, is called
// with the login page before signing in (to screenshot it).
export async function login(browser, username, { viewport = wide, before } = {}) {
  const context = await browser.newContext({ viewport, locale: "fr-FR" });
  const page = await context.newPage();
  page.on("pageerror", (err) => { throw new Error("page script error: " + err.message); });
  await page.goto(base + "/worklists/review");
  assert.match(page.url(), /\/login\?next=/, "a logged-out user is sent to the login page");
  await page.getByLabel("Identifiant").fill(username);
  await page.getByLabel("Mot de passe").fill(password);
  if (before) await before(page);
  await page.getByRole("button", { name: "Se connecter" }).click();
  await page.waitForURL(/\/worklists\/review$/);
  return page;
}

// submit clicks a button that posts a form and waits for the page it leads to.
export const submit = (page, button) => Promise.all([page.waitForNavigation(), button.click()]);

// flash checks the page's message: a string is the whole text, a RegExp matches it.
export const flash = async (page, want) => {
  const f = page.locator(".flash").first();
  await f.waitFor();
  const text = (await f.innerText()).trim();
  if (want instanceof RegExp) assert.match(text, want);
  else assert.equal(text, want);
};

// accepting clicks button, expects the confirmation (data-confirm) whose
// text matches want, accepts it and waits for the page the form leads to.
export async function accepting(page, button, want) {
  let asked = "";
  page.once("dialog", (d) => { asked = d.message(); d.accept(); });
  await submit(page, button);
  assert.match(asked, want);
}
