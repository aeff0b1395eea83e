// Loads the dashboard and the static spend report in headless Chromium (Debian's, via playwright-core) and
// reports, per page, each chart's data points, visible marks and visible target lines (an SLO), console
// errors, failed or external requests; saves a full-page screenshot of each. The pytest wrapper (test_dashboard_browser.py) judges.
//
//   node tests/browser/dashboard.mjs CHROMIUM DASHBOARD_URL REPORT_FILE SCREENSHOT_DIR
import { pathToFileURL } from "node:url";
import { chromium } from "playwright-core";

const [executablePath, dashboardUrl, reportFile, screenshots] = process.argv.slice(2);
const FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
  "--disable-component-update", "--disable-sync", "--no-first-run"];
const local = new Set([new URL(dashboardUrl).origin]);

const browser = await chromium.launch({ executablePath, args: FLAGS });
const results = [];
try {
  for (const [name, url] of [["dashboard", dashboardUrl], ["report", pathToFileURL(reportFile).href]]) {
    const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    const problems = [];
    page.on("console", (message) => {
      if (message.type() === "error") problems.push(`console error: ${message.text()}`);
    });
    page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
    page.on("requestfailed", (request) => problems.push(`request failed: ${request.url()}`));
    page.on("request", (request) => {
      const target = new URL(request.url());
      if (!["file:", "data:"].includes(target.protocol) && !local.has(target.origin)) {
        problems.push(`external request: ${request.url()}`);
      }
    });
    const response = await page.goto(url, { waitUntil: "load" });
    const charts = await page.$$eval("[data-chart]", (sections) => sections.map((section) => ({
      chart: section.dataset.chart,
      points: Number(section.dataset.points),
      marks: [...section.querySelectorAll(".mark")].filter((mark) => {
        const box = mark.getBoundingClientRect();
        return box.width > 0 && box.height > 0;
      }).length,
      targets: [...section.querySelectorAll(".target")].filter((line) => line.getBoundingClientRect().height > 0).length,
    })));
    await page.screenshot({ path: `${screenshots}/${name}.png`, fullPage: true });
    results.push({ page: name, status: response ? response.status() : null, charts, problems });
    await page.close();
  }
} finally {
  await browser.close();
}
console.log(JSON.stringify(results));
