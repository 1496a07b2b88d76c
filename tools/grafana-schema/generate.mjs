// Generate JSON schemas for Grafana dashboards from @grafana/schema's TypeScript types.
//
//   node generate.mjs OUT.json
//
// OUT.json is one bundle:
//   { "grafanaSchemaVersion": "<@grafana/schema version>",
//     "dashboard": <schema of the classic Dashboard JSON (raw/dashboard/x)>,
//     "panels": { "<panel type>": { "options": <schema>, "fieldConfig": <schema> } } }
//
// "dashboard" is what file-provisioned dashboards are (schemaVersion 3x/4x).
// Panel "options" and "fieldConfig.defaults.custom" are typed per panel plugin
// (raw/composable/<plugin>/panelcfg/x); the tests validate each panel against
// its plugin's schema. Objects get "additionalProperties": false, so a
// misspelt key is an error, as it would be silently ignored by Grafana.
import { createGenerator } from "ts-json-schema-generator";
import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const here = path.dirname(new URL(import.meta.url).pathname);
const schemaPkg = path.dirname(require.resolve("@grafana/schema/package.json", { paths: [here] }));
const raw = path.join(schemaPkg, "dist", "types", "raw");

// The file layout inside the package changes between releases
// (x/types.gen.d.ts, x/dashboard_types.gen.d.ts, x/TimeSeriesPanelCfg_types.gen.d.ts):
// find the declaration file in a folder that exports `name`.
function declaring(dir, name) {
  const pattern = new RegExp(`export (interface|type) ${name}\\b`);
  const files = fs.existsSync(dir) ? fs.readdirSync(dir).filter((f) => f.endsWith(".d.ts")) : [];
  const found = files.map((f) => path.join(dir, f)).find((f) => pattern.test(fs.readFileSync(f, "utf8")));
  return found ?? null;
}

// The newest dashboard schemaVersion this release writes (its defaultDashboard).
function latestSchemaVersion() {
  const dir = path.join(schemaPkg, "dist", "esm", "raw", "dashboard", "x");
  for (const f of fs.readdirSync(dir).filter((f) => f.endsWith(".mjs"))) {
    const m = fs.readFileSync(path.join(dir, f), "utf8").match(/schemaVersion: (\d+)/);
    if (m) return Number(m[1]);
  }
  throw new Error(`no schemaVersion default under ${dir}`);
}

// Panel plugins our dashboards may use (plugin id -> panelcfg directory).
const PANELS = {
  timeseries: "timeseries",
  stat: "stat",
  piechart: "piechart",
  bargauge: "bargauge",
  table: "table",
  text: "text",
};

function generate(file, type) {
  const generator = createGenerator({
    path: file,
    type,
    skipTypeCheck: true,
    expose: "export",
    topRef: true,
    jsDoc: "none",
    additionalProperties: false,
  });
  return generator.createSchema(type);
}

const out = process.argv[2];
if (!out) {
  console.error("usage: node generate.mjs OUT.json");
  process.exit(2);
}
const started = Date.now();
const bundle = {
  grafanaSchemaVersion: JSON.parse(fs.readFileSync(path.join(schemaPkg, "package.json"), "utf8")).version,
  latestSchemaVersion: latestSchemaVersion(),
  dashboard: null,
  panels: {},
};
const dashboardFile = declaring(path.join(raw, "dashboard", "x"), "Dashboard");
if (!dashboardFile) throw new Error(`no Dashboard type under ${raw}/dashboard/x`);
bundle.dashboard = generate(dashboardFile, "Dashboard");
for (const [plugin, dir] of Object.entries(PANELS)) {
  const folder = path.join(raw, "composable", dir, "panelcfg", "x");
  const entry = {};
  for (const [key, type] of [["options", "Options"], ["fieldConfig", "FieldConfig"]]) {
    const file = declaring(folder, type);
    if (file) entry[key] = generate(file, type);
  }
  if (!entry.options) throw new Error(`no Options type for panel plugin ${plugin} under ${folder}`);
  bundle.panels[plugin] = entry;
}
fs.mkdirSync(path.dirname(path.resolve(out)), { recursive: true });
const tmp = `${out}.${process.pid}.tmp`;
fs.writeFileSync(tmp, JSON.stringify(bundle, null, 1) + "\n");
fs.renameSync(tmp, out);
console.error(`wrote ${out} (@grafana/schema ${bundle.grafanaSchemaVersion}) in ${Date.now() - started} ms`);
