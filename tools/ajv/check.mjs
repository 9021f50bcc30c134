// Independent strict check of the carbonlabel JSON Schemas and examples with ajv (Draft 2020-12).
//
// Run: cd tools/ajv && npm ci --silent && node check.mjs
//
// 1. Compiles label, statement and envelope schemas with {strict: true, allErrors: true}: any
//    strict-mode complaint (unknown keyword, missing type, tuple rules...) is a compile error.
// 2. Every schemas/examples/valid/*.json must validate against the statement schema.
// 3. Every schemas/examples/invalid/*.json must fail validation.
// Prints one line per file; exits 1 on any surprise.

import { readFileSync, readdirSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

import Ajv2020 from "ajv/dist/2020.js";
import addFormats from "ajv-formats";

const here = dirname(fileURLToPath(import.meta.url));
const schemasDir = resolve(here, "..", "..", "schemas");
const examplesDir = join(schemasDir, "examples");
const SCHEMA_FILES = ["label.schema.json", "statement.schema.json", "envelope.schema.json"];
const STATEMENT_ID = "urn:carbonlabel:statement:v1";

const readJson = (path) => JSON.parse(readFileSync(path, "utf8"));

const ajv = new Ajv2020({ strict: true, allErrors: true });
addFormats(ajv);

let failures = 0;

// Register all three first (the statement schema refers to the label schema by $id), then compile.
const ids = new Map();
for (const file of SCHEMA_FILES) {
  const schema = readJson(join(schemasDir, file));
  ids.set(file, schema.$id);
  ajv.addSchema(schema);
}
for (const [file, id] of ids) {
  try {
    if (!ajv.getSchema(id)) throw new Error(`no schema registered as ${id}`);
    console.log(`ok       schema  ${file} (${id}) compiles in strict mode`);
  } catch (err) {
    failures += 1;
    console.log(`FAIL     schema  ${file}: ${err.message}`);
  }
}

let validate;
try {
  validate = ajv.getSchema(STATEMENT_ID);
} catch {
  validate = undefined;
}
if (!validate) {
  console.log(`FAIL     cannot compile ${STATEMENT_ID}; examples not checked`);
  process.exit(1);
}

const listJson = (dir) =>
  readdirSync(dir)
    .filter((name) => name.endsWith(".json"))
    .sort();

const summary = (errors) =>
  (errors ?? [])
    .slice(0, 3)
    .map((e) => `${e.instancePath || "/"} ${e.message}`)
    .join("; ");

for (const [kind, mustPass] of [
  ["valid", true],
  ["invalid", false],
]) {
  const dir = join(examplesDir, kind);
  const files = listJson(dir);
  if (files.length === 0) {
    failures += 1;
    console.log(`FAIL     ${kind}: no examples in ${dir}`);
  }
  for (const name of files) {
    const rel = `${kind}/${name}`;
    let doc;
    try {
      doc = readJson(join(dir, name));
    } catch (err) {
      failures += 1;
      console.log(`FAIL     ${rel}: not JSON: ${err.message}`);
      continue;
    }
    const ok = validate(doc);
    if (ok === mustPass) {
      const detail = ok ? "valid" : `rejected: ${summary(validate.errors)}`;
      console.log(`ok       ${rel}: ${detail}`);
    } else {
      failures += 1;
      const detail = ok ? "accepted but must be rejected" : `rejected: ${summary(validate.errors)}`;
      console.log(`FAIL     ${rel}: ${detail}`);
    }
  }
}

if (failures > 0) {
  console.log(`${failures} surprise(s)`);
  process.exit(1);
}
console.log("all schemas compile in strict mode; all examples behave as expected");
