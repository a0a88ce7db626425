// Parse Mermaid files with the real mermaid package (run by tests/testing/mermaid.py).
// usage: node mermaid_parse.mjs INSTALL_DIR FILE...   (INSTALL_DIR holds node_modules/mermaid and jsdom)
import { createRequire } from 'module';
import { pathToFileURL } from 'url';
import fs from 'fs';
import path from 'path';

const [dir, ...files] = process.argv.slice(2);
const require = createRequire(path.join(path.resolve(dir), 'package.json'));
const { JSDOM } = require('jsdom');
const dom = new JSDOM('<!doctype html><html><body></body></html>');
globalThis.window = dom.window;
globalThis.document = dom.window.document;
globalThis.DOMParser = dom.window.DOMParser;
globalThis.Element = dom.window.Element;
const entry = require.resolve('mermaid').replace(/mermaid\.core\.mjs$|mermaid\.js$/, 'mermaid.core.mjs');
const { default: mermaid } = await import(pathToFileURL(entry).href);
mermaid.initialize({ startOnLoad: false });
let bad = 0;
for (const f of files) {
  try {
    await mermaid.parse(fs.readFileSync(f, 'utf8'));
    console.log(JSON.stringify({ file: f, ok: true }));
  } catch (e) {
    bad++;
    console.log(JSON.stringify({ file: f, ok: false, error: String(e.message || e).split('\n').slice(0, 4).join(' | ') }));
  }
}
process.exit(bad ? 1 : 0);
